"""The real-data tasks: splits and models."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks.tasks import charlm
from benchmarks.tasks import mnist1d


def test_charlm_splits_are_fixed_shifted_windows():
  a = charlm.load(context=16, max_bytes=50_000)
  b = charlm.load(context=16, max_bytes=50_000)
  for x, y in ((a.x_train, a.y_train), (a.x_val, a.y_val), (a.x_test, a.y_test)):
    assert x.shape[1] == 16 and x.shape == y.shape
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # Targets are the next byte.
  np.testing.assert_array_equal(a.x_test, b.x_test)  # Deterministic split.
  total = sum(len(x) for x in (a.x_train, a.x_val, a.x_test)) * 16
  assert 0.95 * 50_000 < total <= 50_000
  assert len(a.x_train) > 15 * len(a.x_val)


def test_char_transformer_is_causal():
  model = charlm.CharTransformer(context=16, dim=16, heads=2, layers=1, rngs=nnx.Rngs(0))
  x = jnp.arange(16)[None] % 7
  y = x.at[0, 10].set(100)  # Changing byte 10 must not change predictions before it.
  out_x, out_y = model(x), model(y)
  np.testing.assert_allclose(out_x[0, :10], out_y[0, :10], atol=1e-6)
  assert not np.allclose(out_x[0, 10:], out_y[0, 10:])


def test_mnist1d_splits():
  data = mnist1d.load(num_samples=1000, num_val=100)
  assert data.x_train.shape == (700, 40, 1) and data.x_val.shape == (100, 40, 1)
  assert data.x_test.shape == (200, 40, 1)
  # Standardised by the statistics of the generated training part (train + val).
  assert abs(float(np.concatenate([data.x_train, data.x_val]).mean())) < 1e-3
  logits = mnist1d.CNN(rngs=nnx.Rngs(0))(jnp.asarray(data.x_test[:5]))
  assert logits.shape == (5, 10)
