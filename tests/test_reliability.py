"""Reliability: divergence, bad input, low precision, donation, properties."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import given, settings, strategies as st

import autolrs_jax
from autolrs_jax import bo
from autolrs_jax import forecast
from benchmarks import training
from benchmarks.tasks import charlm
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss


def small_tx(**kw):
  kw = dict(min_lr=1e-3, max_lr=1e-1, tau=10, tau_probe=3, num_trials=2, tau_max=20) | kw
  return autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), **kw)


def quadratic_step(tx):
  def step(params, state):
    loss, grads = jax.value_and_grad(
        lambda p: sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(p)))(params)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state
  return step


# --- Divergence -------------------------------------------------------------


@pytest.mark.slow
def test_mnist1d_with_max_lr_10_stays_finite_and_near_the_sane_range():
  data = mnist1d.load(num_samples=6000, num_val=500)
  results = {}
  for max_lr in (1.0, 10.0):
    graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(0)), nnx.Param)
    loss = model_loss(graphdef)
    tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=max_lr,
                             tau=200, num_trials=5, tau_max=400)
    params, _, history = training.train(params, tx, loss, data, steps=3000, seed=0,
                                        stop_after_stage=2)
    for leaf in jax.tree.leaves(params):
      assert np.all(np.isfinite(np.asarray(leaf)))
    # Every step after a restore starts from finite params: no NaN loss outside probes.
    assert np.all(np.isfinite(history.loss[history.phase == autolrs_jax.EXPLOIT]))
    results[max_lr] = float(loss(params, data.x_val, data.y_val))
  # Measured 0.244 (max_lr 10) vs 0.269 (max_lr 1) with seed 0; 1.37x worse
  # with seed 1. The bound is what the search can promise: no collapse.
  assert results[10.0] <= 1.5 * results[1.0], results


@pytest.mark.slow
def test_char_lm_with_max_lr_10_stays_finite_and_near_the_sane_range():
  data = charlm.load(context=32, max_bytes=500_000)
  results = {}
  for max_lr in (0.1, 10.0):  # Adam's sane range ends near 0.1.
    graphdef, params = nnx.split(charlm.CharTransformer(context=32, dim=32, rngs=nnx.Rngs(0)),
                                 nnx.Param)
    loss = model_loss(graphdef)
    tx = autolrs_jax.autolrs(optax.adam(1.0), min_lr=1e-4, max_lr=max_lr, tau=100,
                             num_trials=5, tau_max=200)
    params, _, history = training.train(params, tx, loss, data, steps=2000, batch_size=32,
                                        seed=0, stop_after_stage=1)
    for leaf in jax.tree.leaves(params):
      assert np.all(np.isfinite(np.asarray(leaf)))
    assert np.all(np.isfinite(history.loss[history.phase == autolrs_jax.EXPLOIT]))
    results[max_lr] = float(loss(params, data.x_val[:256], data.y_val[:256])) / math.log(2.0)
  # Two short stages (about 450 calls): measured 5.50 (max_lr 10) vs 4.91 bits
  # per byte; uniform guessing is 8.
  assert results[10.0] <= 1.25 * results[0.1] and results[10.0] < 7.0, results


def test_exploded_finite_probe_is_flagged():
  t = np.arange(40)
  growing = (1.0 + 0.2 * t).astype(np.float32)  # Ends at 8.8x its start.
  falling = (2.0 * np.exp(-t / 10) + 0.5).astype(np.float32)
  spiky = falling.copy()
  spiky[5::7] = 50.0  # Spikes are not an explosion.
  mask = np.ones(40, bool)
  assert bool(forecast.exploded(growing, mask))
  assert not bool(forecast.exploded(falling, mask))
  assert not bool(forecast.exploded(spiky, mask))


def test_a_probe_whose_loss_did_not_fall_stalled():
  t = np.arange(40)
  rng = np.random.default_rng(0)
  at_chance = (2.3 + 0.02 * rng.normal(size=40)).astype(np.float32)
  at_chance[:10] = 2.28  # A hair below the rest: its loss did not fall.
  falling = (2.0 * np.exp(-t / 10) + 0.5).astype(np.float32)
  spiky = falling.copy()
  spiky[-9::3] = 50.0  # Spikes near the end: the median of the end still fell.
  mask = np.ones(40, bool)
  assert bool(forecast.stalled(at_chance, mask))
  assert not bool(forecast.stalled(falling, mask)) and not bool(forecast.stalled(spiky, mask))
  # Only the observed points count, and fewer than four say nothing.
  assert not bool(forecast.stalled(np.where(t < 20, falling, 9.0), t < 20))
  assert not bool(forecast.stalled(at_chance, t < 3))


def test_nan_value_on_an_exploit_step_skips_the_step():
  # A non-finite loss: nothing is applied, and the base optimizer is fed a
  # zero gradient instead of the step's (its momentum decays, nothing is added).
  tx = small_tx(warmup_steps=3)
  params = {"w": jnp.ones(3)}
  grads = {"w": jnp.ones(3)}
  update = jax.jit(lambda s, v: tx.update(grads, s, params, value=v))
  _, state = update(tx.init(params), jnp.float32(1.0))
  old = autolrs_jax.find_state(state).live_base_state
  updates, new_state = update(state, jnp.float32(jnp.inf))
  np.testing.assert_array_equal(updates["w"], 0.0)
  new = autolrs_jax.find_state(new_state)
  _, want = optax.sgd(1.0, momentum=0.9).update({"w": jnp.zeros(3)}, old, params)
  np.testing.assert_array_equal(want[0].trace["w"], 0.9 * jnp.ones(3))
  for a, b in zip(jax.tree.leaves(new.live_base_state), jax.tree.leaves(want)):
    np.testing.assert_array_equal(a, b)
  assert int(new.count) == 2  # The step still counts.


def test_a_diverged_lr_rules_out_larger_ones_for_the_stage():
  # Curvature 1: LRs above 2 diverge. kappa = 1e6 would otherwise go to the ends.
  tx = autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-2, max_lr=100.0, tau=10, tau_probe=5,
                           num_trials=6, tau_max=10, kappa=1e6, seed=3)
  params = {"w": jnp.ones(4)}
  state = tx.init(params)
  step = jax.jit(quadratic_step(tx))
  for _ in range(6 * 5):
    params, state = step(params, state)
  s = autolrs_jax.find_state(state)
  lrs, diverged = np.asarray(s.trial_lrs), np.asarray(s.trial_diverged)
  assert diverged.any()
  first = int(np.argmax(diverged))
  assert np.all(lrs[first + 1:] < lrs[first])


# --- Bad input ----------------------------------------------------------------


def test_params_with_another_tree_are_refused():
  tx = small_tx()
  state = tx.init({"w": jnp.ones(2)})
  with pytest.raises(ValueError, match="tree structure"):
    tx.update({"v": jnp.ones(2)}, state, {"v": jnp.ones(2)}, value=jnp.float32(1.0))


# --- Precision and donation -----------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_params_work_and_controller_stays_float32(dtype):
  tx = small_tx()
  params = {"w": jnp.linspace(1.0, 2.0, 8).astype(dtype), "b": jnp.ones(2, jnp.float32)}
  state = tx.init(params)
  step = jax.jit(quadratic_step(tx))
  snapshot = params
  for i in range(2 * 3 + 5):
    params, state = step(params, state)
    if i == 2:  # Last step of the first probe: params are back at the snapshot.
      for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(snapshot)):
        np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))
  assert params["w"].dtype == dtype and params["b"].dtype == jnp.float32
  s = autolrs_jax.find_state(state)
  for field in ("learning_rate", "trial_lrs", "trial_scores", "probe_losses"):
    assert getattr(s, field).dtype == jnp.float32, field
  assert s.snapshot_params["w"].dtype == dtype
  assert np.all(np.isfinite(np.asarray(params["w"], np.float32)))


def test_donated_params_and_state_give_the_same_run():
  tx = small_tx()
  init = lambda: {"w": jnp.linspace(1.0, 2.0, 8), "b": jnp.ones(2)}
  plain = jax.jit(quadratic_step(tx))
  donated = jax.jit(quadratic_step(tx), donate_argnums=(0, 1))
  runs = []
  for step in (plain, donated):
    params = init()
    state = tx.init(params)
    for _ in range(2 * (2 * 3 + 10)):
      params, state = step(params, state)
    runs.append((params, autolrs_jax.find_state(state)))
  for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
      a, b = jax.random.key_data(a), jax.random.key_data(b)
    np.testing.assert_array_equal(a, b)


# --- Properties -------------------------------------------------------------------

finite_losses = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_forecast_is_finite_for_any_finite_curve(data):
  n = data.draw(st.integers(2, 64), label="length")
  kind = data.draw(st.sampled_from(["any", "constant", "increasing", "noisy", "spiky"]))
  if kind == "any":
    y = np.asarray(data.draw(st.lists(finite_losses, min_size=n, max_size=n)), np.float32)
  else:
    level = data.draw(st.floats(0.01, 100.0))
    t = np.arange(n, dtype=np.float32)
    y = np.full(n, level, np.float32)
    if kind == "increasing":
      y = y + level * t / n
    elif kind in ("noisy", "spiky"):
      rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
      y = (level * np.exp(-3 * t / n) + level * 0.1 * rng.normal(size=n)).astype(np.float32)
      if kind == "spiky":
        y[rng.integers(0, n, max(1, n // 8))] *= 20
  buffer = np.zeros(64, np.float32)
  buffer[:n] = y
  value, diverged = FORECAST(buffer, np.arange(64) < n, n, 10 * n)
  assert np.isfinite(float(value)) and not bool(diverged)


FORECAST = jax.jit(forecast.forecast)
GRID = bo.search_grid(64)
PROPOSE = jax.jit(lambda x, y, m: bo.propose(x, y, m, GRID, kappa=2.0)[0])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), finite_losses), min_size=1, max_size=6,
                unique_by=lambda p: p[0]))
def test_bo_proposal_is_inside_the_range_and_new(observations):
  x = np.zeros(6, np.float32)
  y = np.zeros(6, np.float32)
  mask = np.zeros(6, bool)
  for i, (index, value) in enumerate(observations):
    x[i], y[i], mask[i] = GRID[index], value, True
  proposal = float(PROPOSE(x, y, mask))
  assert 0.0 <= proposal <= 1.0
  assert np.min(np.abs(x[mask] - proposal)) > 1e-6


valid_config = st.fixed_dictionaries({
    "min_lr": st.floats(1e-6, 1.0),
    "ratio": st.floats(1.01, 1e4),
    "tau": st.integers(3, 5000),
    "num_trials": st.integers(1, 20),
    "kappa": st.floats(0.0, 1e6),
    "acquisition": st.sampled_from(["lcb", "ei"]),
})


@settings(max_examples=50, deadline=None)
@given(valid_config, st.data())
def test_random_valid_configurations_construct(cfg, data):
  tau_probe = data.draw(st.integers(2, cfg["tau"] - 1))
  autolrs_jax.autolrs(optax.sgd(1.0), min_lr=cfg["min_lr"], max_lr=cfg["min_lr"] * cfg["ratio"],
                      tau=cfg["tau"], tau_probe=tau_probe, num_trials=cfg["num_trials"],
                      tau_max=cfg["tau"] * data.draw(st.integers(1, 16)),
                      kappa=cfg["kappa"], acquisition=cfg["acquisition"])


@settings(max_examples=50, deadline=None)
@given(valid_config, st.sampled_from(["min_lr", "max_lr", "tau_probe_small", "tau_probe_big",
                                      "num_trials", "acquisition", "kappa", "tau_max"]))
def test_random_invalid_configurations_raise_naming_the_argument(cfg, broken):
  kw = dict(min_lr=cfg["min_lr"], max_lr=cfg["min_lr"] * cfg["ratio"], tau=cfg["tau"],
            tau_probe=2, num_trials=cfg["num_trials"], kappa=cfg["kappa"],
            acquisition=cfg["acquisition"], tau_max=cfg["tau"])
  name = broken
  if broken == "min_lr":
    kw["min_lr"] = -cfg["min_lr"]
  elif broken == "max_lr":
    kw["max_lr"] = cfg["min_lr"] / cfg["ratio"]
  elif broken == "tau_probe_small":
    kw["tau_probe"], name = 1, "tau_probe"
  elif broken == "tau_probe_big":
    kw["tau_probe"], name = cfg["tau"], "tau_probe"
  elif broken == "num_trials":
    kw["num_trials"] = 0
  elif broken == "acquisition":
    kw["acquisition"] = "pi"
  elif broken == "kappa":
    kw["kappa"] = -1.0 - cfg["kappa"]
  else:
    kw["tau_max"] = cfg["tau"] - 1
  with pytest.raises(ValueError, match=name):
    autolrs_jax.autolrs(optax.sgd(1.0), **kw)


def test_an_exploitation_that_blows_up_restarts_from_the_snapshot_at_a_smaller_lr():
  # Scripted losses: 1.0 through the probes, then 10.0 (10x the stage's start)
  # from the fifth exploitation step on.
  tx = autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, tau=20, tau_probe=3,
                           num_trials=3, kappa=1e6)
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  grads = {"w": jnp.full(3, 0.1)}
  update = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
  snapshot = params
  while autolrs_jax.describe(state)["phase"] != "exploit":
    updates, state = update(grads, state, params, jnp.float32(1.0))
    params = optax.apply_updates(params, updates)
  np.testing.assert_array_equal(params["w"], snapshot["w"])  # Probes restored.
  before = autolrs_jax.find_state(state)
  failed_lr = float(before.learning_rate)
  events = []
  for i in range(30):
    loss = 1.0 if i < 4 else 10.0
    updates, state = update(grads, state, params, jnp.float32(loss))
    params = optax.apply_updates(params, updates)
    events.append(autolrs_jax.describe(state))
    if events[-1]["phase_step"] == 0:
      break
  d = events[-1]
  assert d["phase"] == "exploit" and d["phase_step"] == 0, events
  assert len(events) < 15  # Caught within a few steps of the average.
  np.testing.assert_array_equal(params["w"], snapshot["w"])  # Rolled back, bit for bit.
  after = autolrs_jax.find_state(state)
  assert float(after.learning_rate) < failed_lr
  lrs, diverged = np.asarray(after.trial_lrs), np.asarray(after.trial_diverged)
  assert diverged[lrs >= failed_lr].all()
  assert np.all(np.isfinite(params["w"]))


def test_a_noisy_but_sound_exploitation_is_not_rolled_back():
  tx = autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, tau=20, tau_probe=3,
                           num_trials=3)
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  update = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
  rng = np.random.default_rng(0)
  for i in range(9 + 20):
    # Minibatch spikes up to 1.7x the typical loss, whose level slowly falls:
    # noisy, not diverging (a rollback asks the ten-step average for 1.5x the
    # start, or a first exploitation to end no lower than it started).
    loss = jnp.float32((1.0 - 0.02 * i) * (0.8 + 0.9 * rng.random() ** 4))
    updates, state = update({"w": jnp.full(3, 0.01)}, state, params, loss)
    params = optax.apply_updates(params, updates)
  assert autolrs_jax.describe(state)["stage"] == 1  # The exploitation ran its 20 steps.


SGD_MOMENTUM = lambda lr: optax.sgd(lr, momentum=0.9)


@pytest.mark.slow
@pytest.mark.parametrize("base,control", [
    (optax.adam, lambda tx: autolrs_jax.autolrs(tx, min_lr=1e-3, max_lr=1.0, total_steps=1000)),
    (SGD_MOMENTUM, lambda tx: autolrs_jax.autolrs(tx, min_lr=1e-3, max_lr=1.0, tau=100)),
    (optax.adam, autolrs_jax.exptest),
])
def test_a_step_keeps_no_params_sized_temporaries_beyond_the_bare_optimizers(base, control):
  # A controller's restore, skip or snapshot must not make XLA materialise the
  # base update, the stepped base state or a copy of it: each would be a
  # params-sized buffer written and read at every step (on CPU also page
  # faults). XLA's temporaries for a donated step show whether it did: the
  # controller's own (the GP's, the forecaster's) do not grow with the params.
  def temporaries(tx, width, kw):
    params = {"w": jnp.zeros((width, width)), "b": jnp.zeros(width)}
    def step(params, state, x):
      loss, grads = jax.value_and_grad(lambda p: jnp.mean((x @ p["w"] + p["b"]) ** 2))(params)
      updates, state = tx.update(grads, state, params, **kw(loss))
      return optax.apply_updates(params, updates), state
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(
        params, tx.init(params), jnp.ones((8, width))).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  tx = control(base(1.0))
  extra = [temporaries(tx, width, lambda loss: {"value": loss})
           - temporaries(base(0.1), width, lambda loss: {}) for width in (100, 400)]
  growth = 4 * (400 * 400 + 400 - 100 * 100 - 100)  # Bytes of params added.
  assert extra[1] - extra[0] <= 0.05 * growth
