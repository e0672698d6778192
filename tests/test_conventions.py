"""The conventions of optax and Flax that the controllers keep: float64 under
``jax_enable_x64``, msgpack serialisation of their states, ``inject_hyperparams``
of their float hyper-parameters, and ``optax.MultiSteps``."""

import inspect
import os
import pathlib
import subprocess
import sys

import flax.serialization

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import autolrs_jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
CURVATURES = jnp.geomspace(0.05, 4.0, 8)


def quadratic(params, key):
  target = 0.05 * jax.random.normal(key, CURVATURES.shape, params.dtype)
  return 0.5 * jnp.sum(CURVATURES.astype(params.dtype) * (params - target) ** 2)


def controllers():
  return {
      "autolrs": autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0,
                                     tau=20, tau_probe=4, num_trials=3, tau_max=40),
      "autolrs-budget": autolrs_jax.autolrs(optax.adam(1.0), min_lr=1e-3, max_lr=1.0,
                                            total_steps=200),
      "exptest": autolrs_jax.exptest(optax.sgd(1.0, momentum=0.9), window=8),
  }


def trajectory(tx, params, state, keys):
  """Losses and LRs of a jitted run from ``(params, state)`` over ``keys``."""
  @jax.jit
  def step(params, state, key):
    loss, grads = jax.value_and_grad(quadratic)(params, key)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state, loss

  losses, lrs = [], []
  for key in keys:
    params, state, loss = step(params, state, key)
    losses.append(loss)
    lrs.append(optax.tree.get(state, "learning_rate"))
  return params, state, np.asarray(losses), np.asarray(lrs)


X64_SCRIPT = """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np, sys
sys.path.insert(0, {tests!r})
import test_conventions as t
for dtype in (jnp.float32, jnp.float64):
  for name, tx in t.controllers().items():
    params = jnp.ones(t.CURVATURES.shape, dtype) / jnp.sqrt(t.CURVATURES).astype(dtype)
    keys = jax.random.split(jax.random.key(0), 120)
    final, state, losses, lrs = t.trajectory(tx, params, tx.init(params), keys)
    assert final.dtype == dtype, (name, final.dtype)
    assert np.isfinite(losses).all() and np.all(lrs > 0), name
    assert losses[-10:].mean() < 0.5 * losses[:10].mean(), (name, dtype, losses[:10], losses[-10:])
    print("trained", name, np.dtype(dtype).name)
"""


@pytest.mark.slow
def test_float32_and_float64_params_train_under_x64():
  env = {**os.environ, "JAX_ENABLE_X64": "1"}
  out = subprocess.run([sys.executable, "-c", X64_SCRIPT.format(tests=str(ROOT / "tests"))],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.count("trained") == 2 * len(controllers())


@pytest.mark.parametrize("name", sorted(controllers()))
def test_msgpack_round_trip_continues_the_run_bit_identically(name):
  tx = controllers()[name]
  params = 1.0 / jnp.sqrt(CURVATURES)
  keys = jax.random.split(jax.random.key(1), 60)
  mid_params, mid_state, _, _ = trajectory(tx, params, tx.init(params), keys[:25])
  restored = flax.serialization.from_bytes(tx.init(params),
                                           flax.serialization.to_bytes(mid_state))
  chex_equal = jax.tree.map(lambda a, b: np.array_equal(a, b), mid_state, restored)
  assert all(jax.tree.leaves(chex_equal))
  want = trajectory(tx, mid_params, mid_state, keys[25:])
  got = trajectory(tx, mid_params, restored, keys[25:])
  np.testing.assert_array_equal(got[0], want[0])
  np.testing.assert_array_equal(got[2], want[2])
  np.testing.assert_array_equal(got[3], want[3])


@pytest.mark.parametrize("name", sorted(controllers()))
def test_the_controller_is_a_few_leaves_and_reads_back_from_them(name):
  tx = controllers()[name]
  params = 1.0 / jnp.sqrt(CURVATURES)
  _, state, _, _ = trajectory(tx, params, tx.init(params), jax.random.split(jax.random.key(2), 30))
  trees = {f: getattr(state, f) for f in ("snapshot_params", "snapshot_base_state", "base_state")
           if f in state._fields}
  # A jitted step pays for each leaf at every call: the scalars are packed.
  assert len(jax.tree.leaves(state)) - len(jax.tree.leaves(trees)) <= 10
  controller = state.controller
  repacked = autolrs_jax._common.pack(type(state), controller, **trees)
  jax.tree.map(np.testing.assert_array_equal, repacked, state)
  assert int(state.count) == 30 and state.phase.shape == ()
  # A stacked state reads as a stack, field by field.
  stacked = jax.tree.map(lambda x: jnp.stack([x, x]), state)
  np.testing.assert_array_equal(stacked.count, [30, 30])
  # A value of another kind is refused, not cast: 2.5 among the counters would pack as 2.
  with pytest.raises(TypeError, match="count is float32, but it is packed as int32"):
    autolrs_jax._common.pack(type(state), controller._replace(count=jnp.float32(2.5)), **trees)


def test_the_packed_layout_a_checkpoint_holds_is_pinned():
  # Each entry's place is its field's order in the controller: a reordering
  # would read an older checkpoint's counters as other counters.
  from autolrs_jax import _autolrs, _exptest
  layout = lambda state_type: {f: names for f, (_, names) in state_type.packed_scalars.items()}
  assert layout(_autolrs.AutoLRSState) == {
      "counters": ("count", "stage", "phase", "trial", "phase_step", "quiet_calls"),
      "reals": ("stage_loss", "exploit_loss", "exploit_best", "probe_path", "snapshot_norm",
                "lr_ceiling", "exploit_lr", "probe_peak", "last_loss", "loss_before_last",
                "probe_jitter", "stage_loss_square"),
      "flags": ("wants_validation", "restored", "resume_from_snapshot", "drift_bounded")}
  assert layout(_exptest.ExpTestState) == {
      "counters": ("count", "phase", "block_size", "block_step", "window_step", "windows",
                   "outcome", "decay_streak", "bad_windows", "num_decreases", "num_cuts",
                   "quiet_calls"),
      "reals": ("statistic", "p_value", "drop", "best_drop", "smoothed_loss",
                "best_smoothed_loss")}


# The integers that fix shapes stay static, as optax keeps ``rank`` static.
STATIC = {
    "autolrs": ("tau", "tau_probe", "num_trials", "tau_max", "total_steps", "warmup_steps",
                "grid_size", "validation_points", "validation_from_stage", "seed"),
    "exptest": ("window", "confirm_windows", "patience", "max_block_size"),
}
INJECTABLE = {
    "autolrs": (autolrs_jax.autolrs, dict(min_lr=1e-3, max_lr=1.0, kappa=1000.0,
                                          max_probe_drift=2.0, tau=20, tau_probe=4,
                                          num_trials=3, tau_max=40)),
    "exptest": (autolrs_jax.exptest, dict(search_start_lr=1e-4, alpha=0.05, growth_factor=2.0,
                                          backoff_factor=4.0, window=8)),
}


@pytest.mark.parametrize("name", sorted(INJECTABLE))
def test_float_hyperparameters_can_be_injected(name):
  factory, kwargs = INJECTABLE[name]
  base = optax.sgd(1.0, momentum=0.9)
  tx = factory(base, **kwargs)
  injected = optax.inject_hyperparams(factory, static_args=STATIC[name])(base, **kwargs)
  params = 1.0 / jnp.sqrt(CURVATURES)
  keys = jax.random.split(jax.random.key(2), 60)
  want = trajectory(tx, params, jax.jit(tx.init)(params), keys)
  got = trajectory(injected, params, jax.jit(injected.init)(params), keys)
  floats = {k for k, v in kwargs.items() if isinstance(v, float)}
  assert floats <= set(got[1].hyperparams)
  np.testing.assert_allclose(got[3], want[3], rtol=1e-5)
  np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)


# Each integer argument, given a value, through inject_hyperparams without
# listing it in static_args: those that fix a shape or the stage plan raise a
# ValueError that names them; the others run as without injection.
_PAPER = dict(min_lr=1e-3, max_lr=1.0, tau=20, tau_probe=4, num_trials=3, tau_max=40)
_BUDGET = dict(min_lr=1e-3, max_lr=1.0, total_steps=120)
INTEGERS = {
    ("autolrs", "tau"): _PAPER, ("autolrs", "tau_probe"): _PAPER,
    ("autolrs", "num_trials"): _PAPER, ("autolrs", "tau_max"): _PAPER,
    ("autolrs", "total_steps"): _BUDGET,
    ("autolrs", "warmup_steps"): dict(_BUDGET, warmup_steps=5),
    ("autolrs", "grid_size"): dict(_PAPER, grid_size=64),
    ("autolrs", "validation_points"): dict(_PAPER, validation_points=2),
    ("autolrs", "validation_from_stage"): dict(_PAPER, validation_from_stage=1),
    ("autolrs", "seed"): dict(_PAPER, seed=3),
    ("exptest", "window"): dict(search_start_lr=1e-4, window=8),
    ("exptest", "confirm_windows"): dict(search_start_lr=1e-4, window=8, confirm_windows=3),
    ("exptest", "patience"): dict(search_start_lr=1e-4, window=8, patience=3),
    ("exptest", "max_block_size"): dict(search_start_lr=1e-4, window=8, max_block_size=4),
}
TRACEABLE_INTEGERS = {("autolrs", "seed"), ("exptest", "confirm_windows"),
                      ("exptest", "patience"), ("exptest", "max_block_size")}


def test_every_integer_argument_is_listed_here():
  for name, (factory, _) in INJECTABLE.items():
    ints = {p.name for p in inspect.signature(factory).parameters.values()
            if "int" in str(p.annotation) and p.name != "base_optimizer"}
    assert ints == {arg for f, arg in INTEGERS if f == name}


@pytest.mark.parametrize("name,arg", sorted(INTEGERS))
def test_an_injected_integer_runs_or_asks_for_static_args(name, arg):
  factory, kwargs = INJECTABLE[name][0], INTEGERS[name, arg]
  base = optax.sgd(1.0, momentum=0.9)
  static = tuple(a for f, a in INTEGERS if f == name and a != arg)
  injected = optax.inject_hyperparams(factory, static_args=static)(base, **kwargs)
  params = 1.0 / jnp.sqrt(CURVATURES)
  keys = jax.random.split(jax.random.key(2), 40)
  if (name, arg) not in TRACEABLE_INTEGERS:
    with pytest.raises(ValueError, match=f"{arg}.*static_args"):
      trajectory(injected, params, injected.init(params), keys)
    return
  tx = factory(base, **kwargs)
  want = trajectory(tx, params, tx.init(params), keys)
  got = trajectory(injected, params, jax.jit(injected.init)(params), keys)
  assert arg in got[1].hyperparams
  np.testing.assert_allclose(got[3], want[3], rtol=1e-5)
  np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arg", ["min_lr", "max_lr"])
def test_with_a_budget_the_range_is_static(arg):
  static = tuple(a for f, a in INTEGERS if f == "autolrs")
  other = {"min_lr": "max_lr", "max_lr": "min_lr"}[arg]
  injected = optax.inject_hyperparams(autolrs_jax.autolrs, static_args=static + (other,))(
      optax.sgd(1.0), **_BUDGET)
  with pytest.raises(ValueError, match=f"{arg}.*ladder.*static_args"):
    injected.init(jnp.ones(3))
  static += ("min_lr", "max_lr")
  optax.inject_hyperparams(autolrs_jax.autolrs, static_args=static)(
      optax.sgd(1.0), **_BUDGET).init(jnp.ones(3))


def test_an_injected_hyperparameter_changes_the_run():
  factory, kwargs = INJECTABLE["autolrs"]
  injected = optax.inject_hyperparams(factory, static_args=STATIC["autolrs"])(
      optax.sgd(1.0), **kwargs)
  params = 1.0 / jnp.sqrt(CURVATURES)
  state = injected.init(params)
  state.hyperparams["max_lr"] = jnp.asarray(1e-2)
  keys = jax.random.split(jax.random.key(3), 60)
  _, _, _, lrs = trajectory(injected, params, state, keys)
  # Stage 0 (3 probes of 4 steps, 20 exploiting) still had the first LR that
  # init drew; from stage 1 on, every LR is in the new range.
  later = lrs[32:]
  assert later.max() <= 1e-2 * (1 + 1e-5) and later.min() >= 1e-3 * (1 - 1e-5)
  assert later.max() > 1e-3


def test_concrete_bad_values_are_still_refused_through_inject_hyperparams():
  factory, kwargs = INJECTABLE["autolrs"]
  injected = optax.inject_hyperparams(factory, static_args=STATIC["autolrs"])(
      optax.sgd(1.0), **{**kwargs, "min_lr": -1.0})
  with pytest.raises(ValueError, match="min_lr"):
    injected.init(jnp.ones(3))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["autolrs", "exptest"])
def test_multi_steps_shows_the_controller_the_mean_loss_of_its_micro_batches(name):
  k = 4
  tx = controllers()[name]
  accumulated = autolrs_jax.multi_steps(controllers()[name], every_k_schedule=k)
  params = 1.0 / jnp.sqrt(CURVATURES)
  keys = jax.random.split(jax.random.key(4), 40 * k).reshape(40, k)

  @jax.jit
  def micro_steps(params, state, keys):
    losses = []
    for key in keys:  # k calls: the last one applies the mean of the k gradients.
      loss, grads = jax.value_and_grad(quadratic)(params, key)
      updates, state = accumulated.update(grads, state, params, value=loss)
      losses.append(loss)
    return optax.apply_updates(params, updates), state, jnp.stack(losses)

  @jax.jit
  def one_step(params, state, keys):
    losses, grads = jax.vmap(jax.value_and_grad(quadratic), (None, 0))(params, keys)
    grads = jnp.mean(grads, axis=0)
    updates, state = tx.update(grads, state, params, value=jnp.mean(losses))
    return optax.apply_updates(params, updates), state

  p_acc, s_acc, p_one, s_one = params, accumulated.init(params), params, tx.init(params)
  for ks in keys:
    p_acc, s_acc, _ = micro_steps(p_acc, s_acc, ks)
    p_one, s_one = one_step(p_one, s_one, ks)
    np.testing.assert_allclose(optax.tree.get(s_acc, "learning_rate"),
                               optax.tree.get(s_one, "learning_rate"), rtol=1e-5)
  np.testing.assert_allclose(p_acc, p_one, rtol=1e-4, atol=1e-6)
  assert autolrs_jax.find_state(s_acc, kind=None).count == len(keys)


def test_plain_multi_steps_shows_only_the_last_micro_batch():
  # Why multi_steps exists: optax.MultiSteps passes the last call's value.
  seen = []
  probe = optax.GradientTransformationExtraArgs(
      lambda p: optax.EmptyState(),
      lambda u, s, p=None, *, value=None, **kw: (jax.debug.callback(seen.append, value), (u, s))[1])
  tx = optax.MultiSteps(probe, every_k_schedule=2)
  state = tx.init(jnp.zeros(1))
  for v in (1.0, 3.0):
    _, state = tx.update(jnp.zeros(1), state, jnp.zeros(1), value=jnp.float32(v))
  mean = autolrs_jax.multi_steps(probe, every_k_schedule=2)
  state = mean.init(jnp.zeros(1))
  for v in (1.0, 3.0):
    _, state = mean.update(jnp.zeros(1), state, jnp.zeros(1), value=jnp.float32(v))
  assert [float(v) for v in seen] == [1.0, 3.0, 1.0, 2.0]
