"""Data parallelism: the same decisions on 1, 4 and 8 devices, pmap and jit+sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import autolrs_jax

GLOBAL_BATCH = 64
STEPS = 2 * (4 * 3 + 12) + 6  # Two stages and a bit.


def make_tx(axis_name=None):
  return autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0, tau=12,
                             tau_probe=3, num_trials=4, tau_max=12, kappa=2.0,
                             axis_name=axis_name)


def data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(STEPS, GLOBAL_BATCH, 8)).astype(np.float32)
  w_true = rng.normal(size=(8, 1)).astype(np.float32)
  y = np.tanh(x @ w_true) + 0.1 * rng.normal(size=(STEPS, GLOBAL_BATCH, 1)).astype(np.float32)
  return x, y


def init_params():
  return {"w": jnp.zeros((8, 1), jnp.float32), "b": jnp.zeros((1,), jnp.float32)}


def loss_fn(params, x, y):
  return jnp.mean((jnp.tanh(x @ params["w"] + params["b"]) - y) ** 2)


def run_pmap(num_devices, local_loss_offset=None):
  """pmap over ``num_devices``; returns (LRs per step, final params)."""
  devices = jax.devices()[:num_devices]
  tx = make_tx(axis_name="batch")
  params = jax.tree.map(lambda a: jnp.stack([a] * num_devices), init_params())
  state = jax.pmap(tx.init, devices=devices)(params)
  offset = jnp.zeros(num_devices) if local_loss_offset is None else local_loss_offset

  def step(params, state, x, y, off):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    grads = jax.lax.pmean(grads, "batch")
    # The loss handed to AutoLRS is deliberately *not* averaged here.
    updates, state = tx.update(grads, state, params, value=loss + off)
    return optax.apply_updates(params, updates), state, state.learning_rate

  step = jax.pmap(step, axis_name="batch", devices=devices)
  x, y = data()
  lrs = []
  for t in range(STEPS):
    xs = x[t].reshape(num_devices, -1, 8)
    ys = y[t].reshape(num_devices, -1, 1)
    params, state, lr = step(params, state, xs, ys, offset)
    lrs.append(np.asarray(lr))
  return np.stack(lrs), jax.tree.map(lambda a: np.asarray(a[0]), params), state


@pytest.fixture(scope="module")
def single():
  lrs, params, _ = run_pmap(1)
  return lrs[:, 0], params


@pytest.mark.parametrize("num_devices", [4, 8])
def test_pmap_decisions_match_one_device(single, num_devices):
  lrs, params, _ = run_pmap(num_devices)
  # Every replica, every step, the same LR as on one device, exactly.
  assert np.all(lrs == single[0][:, None])
  # Params to float32 rounding: the mean over 8 replicas sums in another
  # order than one device does, and weights reach ~15 here (atol ~ 1e-6 * 15).
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(single[1])):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pmap_replicas_with_different_local_losses_agree():
  offsets = jnp.linspace(-0.5, 0.5, 4)  # Mean zero: the mean loss is unchanged.
  lrs, _, state = run_pmap(4, local_loss_offset=offsets)
  assert np.all(lrs == lrs[:, :1])
  forecasts = np.asarray(state.trial_scores)
  assert np.all(forecasts == forecasts[:1])


def test_jit_with_sharding_keeps_every_state_leaf_sharding():
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  replicated = NamedSharding(mesh, P())
  # A parameter sharded along its first axis: its snapshot must be sharded alike.
  params = {"w": jax.device_put(jnp.ones((16, 4), jnp.float32), NamedSharding(mesh, P("data"))),
            "b": jax.device_put(jnp.zeros((4,), jnp.float32), replicated)}
  tx = make_tx()
  # Eager init, as with any optax optimizer: under jit(init) the compiler may
  # replicate zeros that optax's own base states then shard at the first update.
  state = tx.init(params)
  x = jax.device_put(jnp.ones((32, 16), jnp.float32), NamedSharding(mesh, P("data")))

  @jax.jit
  def step(params, state, x):
    loss, grads = jax.value_and_grad(lambda p: jnp.mean((x @ p["w"] + p["b"]) ** 2))(params)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state

  before = jax.tree.map(lambda a: a.sharding, state)
  snapshot = autolrs_jax.find_state(state).snapshot_params
  assert snapshot["w"].sharding == params["w"].sharding
  assert autolrs_jax.find_state(state).learning_rate.sharding == replicated
  for _ in range(4 * 3 + 2):  # Through probes, restores and into exploitation.
    params, state = step(params, state, x)
  after = jax.tree.map(lambda a: a.sharding, state)
  for (path, b), a in zip(jax.tree_util.tree_leaves_with_path(before), jax.tree.leaves(after)):
    assert a == b, jax.tree_util.keystr(path)
