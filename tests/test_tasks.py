"""The real-data tasks: splits and models."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
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


def test_the_test_tasks_are_fixed_splits_of_generated_or_shipped_data():
  from benchmarks import tasks
  from benchmarks.tasks import finetune, friedman, prose, sorting
  for module in (friedman, sorting, prose, finetune):
    a, b = module.load(), module.load()
    for x, y in ((a.x_train, a.y_train), (a.x_val, a.y_val), (a.x_test, a.y_test)):
      assert len(x) == len(y) > 0
    np.testing.assert_array_equal(a.x_test, b.x_test)  # Deterministic.
  splits = {name: t.split for name, t in tasks.TASKS.items()}
  assert splits == {"mnist1d": "tuning", "charlm": "tuning", "digits": "tuning",
                    "mnist1d-adam": "tuning", "digits-adam": "tuning",
                    "friedman": "test", "sorting": "test", "prose": "test",
                    "finetune": "test"}


def test_the_adam_tuning_tasks_are_the_sgd_tuning_tasks_on_adam():
  from benchmarks import tasks
  for name in ("mnist1d", "digits"):
    sgd, adam = tasks.TASKS[name], tasks.TASKS[f"{name}-adam"]
    assert (sgd.optimizer, adam.optimizer) == ("sgd", "adam")
    assert adam._replace(name=name, optimizer="sgd", description=sgd.description) == sgd


def test_sorting_targets_are_the_sorted_inputs():
  from benchmarks.tasks import sorting
  data = sorting.load()
  np.testing.assert_array_equal(data.y_val, np.sort(data.x_val, axis=1))
  logits = sorting.Sorter(rngs=nnx.Rngs(0))(jnp.asarray(data.x_val[:3]))
  assert logits.shape == (3, sorting.LENGTH, sorting.VOCAB)


def test_prose_targets_are_the_byte_after_the_context():
  from benchmarks.tasks import prose
  data = np.frombuffer(prose.text(), dtype=np.uint8)
  x, y = prose._examples(data[:1000], stride=1)  # pylint: disable=protected-access
  np.testing.assert_array_equal(x[1:, -1], y[:-1])  # The next example's context ends with it.
  np.testing.assert_array_equal(x[0], data[:prose.CONTEXT])


def test_friedman_scores_the_mean_squared_error_in_the_targets_units():
  from benchmarks import tasks
  from benchmarks.tasks import friedman
  task = tasks.TASKS["friedman"]
  predictions = jnp.asarray([[1.0], [3.0]])
  assert float(task.loss(predictions, jnp.asarray([2.0, 5.0]))) == pytest.approx((1 + 4) / 2)
  assert task.test_metric(1.25, float("nan")) == 1.25
  assert friedman.MLP(rngs=nnx.Rngs(0))(jnp.ones((4, 10))).shape == (4, 1)


def test_finetune_starts_from_a_model_pretrained_on_other_digits_and_scores_shifted_ones():
  from benchmarks.tasks import digits, finetune
  source, target = digits.load(), finetune.load()
  assert len(target.x_train) == finetune.NUM_TARGET_TRAIN
  # The target's images are the first training images, shifted: the mean of
  # each and of itself moved one pixel right.
  image = source.x_train[0].reshape(8, 8)
  expected = 0.5 * (image + np.pad(image, ((0, 0), (1, 0)))[:, :8])
  np.testing.assert_allclose(target.x_train[0], expected.reshape(64))
  np.testing.assert_array_equal(target.y_val, source.y_val)
  # Pretrained on the source's other images: far below chance on the source,
  # and above its source loss on the shifted target. Each call is a fresh copy.
  model, again = finetune.pretrained_mlp(0), finetune.pretrained_mlp(0)
  assert model is not again
  loss = lambda m, d: float(optax.softmax_cross_entropy_with_integer_labels(
      m(jnp.asarray(d.x_val)), jnp.asarray(d.y_val)).mean())
  assert loss(model, source) < 0.2 < loss(model, target) < 1.0
  fresh = digits.MLP(rngs=nnx.Rngs(0))
  assert loss(fresh, target) > 2.0
