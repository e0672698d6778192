"""The AutoLRS state machine: schedule, restores, compilation, composition."""

import collections
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import autolrs_jax
from autolrs_jax import autolrs

TAU, TAU_PROBE, K, TAU_MAX = 10, 3, 2, 20


def expected_schedule(num_steps, tau=TAU, tau_probe=TAU_PROBE, k=K, tau_max=TAU_MAX):
  """(stage, phase, trial, phase_step) of each step, written out from the paper."""
  rows, stage = [], 0
  while len(rows) < num_steps:
    rows += [(stage, "probe", j, i) for j in range(k) for i in range(tau_probe)]
    rows += [(stage, "exploit", k, i) for i in range(tau)]
    stage += 1
    if 2 * tau <= tau_max:
      tau, tau_probe = 2 * tau, 2 * tau_probe
  return rows[:num_steps]


def quadratic_loss(params):
  return 0.5 * jnp.sum(params["w"] ** 2) + 0.5 * jnp.sum(params["b"] ** 2)


def make_run(tx, num_steps, params=None, loss_fn=quadratic_loss):
  """Runs ``num_steps`` jitted updates; returns per-step records."""
  # Strong dtypes: a weakly typed leaf would retrace once, AutoLRS or not.
  params = params or {"w": jnp.linspace(1.0, 2.0, 5), "b": jnp.array(1.5, jnp.float32)}
  state = tx.init(params)
  traces = []

  @jax.jit
  def step(params, state):
    traces.append(1)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state, updates, grads

  records = []
  for _ in range(num_steps):
    before = autolrs_jax.describe(state)
    new_params, new_state, updates, grads = step(params, state)
    records.append(dict(before=before, params=params, state=state, updates=updates,
                        grads=grads, new_params=new_params, new_state=new_state))
    params, state = new_params, new_state
  return records, len(traces)


def small_tx(**kw):
  # The bound for a whole probe: these tests pin the paper's stages, and
  # probes of a few calls pass a bound per call at their first steps.
  kw = dict(min_lr=1e-3, max_lr=1e-2, tau=TAU, tau_probe=TAU_PROBE, num_trials=K,
            tau_max=TAU_MAX, kappa=2.0, drift_per_call=None) | kw
  return autolrs(optax.sgd(1.0, momentum=0.9), **kw)


@pytest.fixture(scope="module")
def run():
  return make_run(small_tx(), 6 + 10 + 12 + 20 + 12 + 20 + 5)


def test_schedule_matches_the_algorithm_step_by_step(run):
  records, _ = run
  got = [(r["before"]["stage"], r["before"]["phase"], r["before"]["trial"],
          r["before"]["phase_step"]) for r in records]
  assert got == expected_schedule(len(records))


def test_one_compilation_through_stages_and_tau_doublings(run):
  records, traces = run
  assert records[-1]["before"]["stage"] == 3  # Stages 0..3: two doublings, then a cap.
  assert traces == 1


def test_restores_put_back_snapshot_and_base_state_bit_for_bit(run):
  records, _ = run
  snapshot = None
  restores = 0
  for r in records:
    b = r["before"]
    if b["phase"] == "probe" and b["trial"] == 0 and b["phase_step"] == 0:
      snapshot = (r["params"], autolrs_jax.find_state(r["state"]).live_base_state)
    elif b["phase_step"] == 0 and snapshot is not None:  # First step after a restore.
      restores += 1
      for got, want in zip(jax.tree.leaves(r["params"]), jax.tree.leaves(snapshot[0])):
        np.testing.assert_array_equal(got, want)
      # The state that the base optimizer's next update starts from.
      base = autolrs_jax.find_state(r["state"]).live_base_state
      for got, want in zip(jax.tree.leaves(base), jax.tree.leaves(snapshot[1])):
        np.testing.assert_array_equal(got, want)
  assert restores >= 6


def test_restore_step_does_not_apply_its_gradient(run):
  records, _ = run
  r = records[TAU_PROBE - 1]  # Last step of the first probe.
  snap = records[0]["params"]
  for u, p, s in zip(*(jax.tree.leaves(t) for t in (r["updates"], r["params"], snap))):
    np.testing.assert_array_equal(u, s - p)


def test_every_probe_step_runs_at_its_own_lr(run):
  # No stale LR after a restore: the first step of each probe is the base
  # update from the snapshot's base state, times the LR that BO recorded for
  # that trial.
  records, _ = run
  base = optax.sgd(1.0, momentum=0.9)
  checked = 0
  for r in records:
    b = r["before"]
    if b["phase"] == "probe" and b["phase_step"] == 0 and b["trial"] > 0:
      st = autolrs_jax.find_state(r["state"])
      lr = float(st.trial_lrs[b["trial"]])
      assert lr == pytest.approx(b["learning_rate"])
      want, _ = base.update(r["grads"], st.snapshot_base_state, r["params"])
      np.testing.assert_allclose(r["updates"]["w"], lr * want["w"], rtol=1e-6)
      checked += 1
  assert checked >= 3


def test_exploits_the_argmin_of_the_forecasts(run):
  records, _ = run
  r = records[K * TAU_PROBE]  # First exploitation step.
  st = autolrs_jax.find_state(r["state"])
  assert float(st.learning_rate) == float(st.trial_lrs[jnp.argmin(st.trial_scores)])
  obs = autolrs_jax.bo_observations(r["state"])
  assert obs["learning_rates"].shape == (K,)
  assert np.all((obs["learning_rates"] >= 1e-3 * 0.999) & (obs["learning_rates"] <= 1e-2 * 1.001))


def test_warmup_is_linear_then_search_starts():
  tx = small_tx(warmup_steps=4, warmup_lr=0.008)
  records, _ = make_run(tx, 6)
  lrs = [r["before"]["learning_rate"] for r in records[:4]]
  np.testing.assert_allclose(lrs, [0.002, 0.004, 0.006, 0.008], rtol=1e-6)
  assert [r["before"]["phase"] for r in records] == ["warmup"] * 4 + ["probe"] * 2
  assert records[4]["before"]["stage"] == 0


def test_validation_steps_are_flagged_only_in_validation_stages():
  tx = small_tx(validation_points=3)
  records, _ = make_run(tx, 120)
  for r in records:
    b = r["before"]
    stage_tau_probe = TAU_PROBE * 2 ** min(b["stage"], 1)
    want = (b["phase"] == "probe" and b["stage"] >= 2
            and b["phase_step"] % (stage_tau_probe // 3) == stage_tau_probe // 3 - 1)
    assert b["wants_validation"] == want, b
  assert any(r["before"]["wants_validation"] for r in records)


def test_validation_from_stage_zero_flags_probes_of_every_stage():
  tx = small_tx(validation_points=3, validation_from_stage=0)
  records, _ = make_run(tx, 60)
  flagged = {(r["before"]["stage"], r["before"]["phase"])
             for r in records if r["before"]["wants_validation"]}
  probed = {(r["before"]["stage"], "probe") for r in records if r["before"]["phase"] == "probe"}
  assert len(probed) == 3  # Stages 0, 1 and 2, none of them a validation stage by default.
  assert flagged == probed


def test_validation_value_scores_probes_in_validation_stages():
  # The validation loss handed in is 5x the training loss: the probes of
  # validation stages record it at their validation points, those of earlier
  # stages record the training loss.
  tx = small_tx(validation_points=3)
  params = {"w": jnp.linspace(1.0, 2.0, 5), "b": jnp.array(1.5, jnp.float32)}
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    loss, grads = jax.value_and_grad(quadratic_loss)(params)
    wants = autolrs_jax.find_state(state).wants_validation
    val = jax.lax.cond(wants, lambda: 5.0 * loss, lambda: jnp.float32(jnp.nan))
    updates, state = tx.update(grads, state, params, value=loss, validation_value=val)
    return optax.apply_updates(params, updates), state, loss

  # Per stage: (probe loss recorded / training loss, whether the call validated).
  recorded = collections.defaultdict(list)
  for _ in range(2 * (6 + 10) + 2 * (12 + 20) + 12):
    before = autolrs_jax.find_state(state)
    params, state, loss = step(params, state)
    after = autolrs_jax.find_state(state)
    if int(before.phase) == autolrs_jax.PROBE and int(after.phase_step) > 0:  # Not its last.
      stored = float(after.probe_losses[int(before.phase_step)])
      recorded[int(before.stage)].append((stored / float(loss), bool(before.wants_validation)))
  for stage in (0, 1):  # Training losses only.
    assert recorded[stage] and all(r == pytest.approx(1.0) and not v for r, v in recorded[stage])
  # From stage 2 (the first at tau_max) the validation points record the
  # validation loss; the calls between them are not scored.
  validated = [r for r, v in recorded[2] if v]
  assert validated and all(r == pytest.approx(5.0) for r in validated)


def test_diverging_probes_are_contained():
  # max_lr = 10 on a curvature-1 quadratic: LRs above 2 diverge.
  tx = small_tx(min_lr=1e-2, max_lr=10.0, kappa=1e6, num_trials=4)
  records, _ = make_run(tx, 4 * 3 + 10 + 12 * 2)
  for r in records:
    for leaf in jax.tree.leaves(r["new_params"]):
      assert np.all(np.isfinite(leaf))
    st = autolrs_jax.find_state(r["new_state"])
    assert np.all(np.isfinite(st.trial_scores))
  st = autolrs_jax.find_state(records[4 * 3]["state"])  # First exploit step of stage 0.
  assert bool(np.any(st.trial_diverged))
  assert float(st.learning_rate) < 2.0


def test_nan_loss_ends_the_probe_and_restores():
  tx = small_tx()
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  grads = {"w": jnp.ones(3)}
  _, state = tx.update(grads, state, params, value=jnp.float32(1.0))
  updates, state = tx.update(grads, state, params, value=jnp.float32(jnp.nan))
  s = autolrs_jax.find_state(state)
  assert int(s.trial) == 1 and int(s.phase_step) == 0
  assert bool(s.trial_diverged[0]) and np.isfinite(float(s.trial_scores[0]))
  np.testing.assert_array_equal(updates["w"], 0.0)  # Params were the snapshot.


def test_nonfinite_gradient_outside_probes_skips_the_step():
  # A finite loss with a non-finite update: nothing is applied, and the base
  # optimizer, whose new state the gradient has spoiled, goes on from the
  # snapshot's state.
  tx = small_tx(warmup_steps=3)
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  updates, new_state = tx.update({"w": jnp.full(3, jnp.inf)}, state, params, value=jnp.float32(1.0))
  np.testing.assert_array_equal(updates["w"], 0.0)
  new = autolrs_jax.find_state(new_state)
  assert bool(new.resume_from_snapshot)
  for a, b in zip(jax.tree.leaves(new.live_base_state), jax.tree.leaves(new.snapshot_base_state)):
    np.testing.assert_array_equal(a, b)
  assert np.isfinite(np.asarray(new.live_base_state[0].trace["w"])).all()


def test_a_probe_ends_when_its_path_would_exceed_the_drift_limit():
  # Steps of norm 1 back and forth: the params end where they started, but a
  # probe's drift is bounded by its path, |snapshot| * max_probe_drift = 2.
  tx = small_tx(max_probe_drift=1.0)
  params = {"w": jnp.array([2.0, 0.0, 0.0, 0.0])}
  state = tx.init(params)
  lr = float(autolrs_jax.find_state(state).learning_rate)
  update = jax.jit(lambda g, s, p: tx.update(g, s, p, value=jnp.float32(1.0)))
  ended = []
  for i in range(3):
    grads = {"w": jnp.array([(-1.0) ** i / lr, 0.0, 0.0, 0.0])}
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
    s = autolrs_jax.find_state(state)
    ended.append((int(s.trial), bool(s.restored)))
  # Momentum 0.9: steps of norm 1, 0.1 (-1 + 0.9), 0.91: the third would take
  # the path to 2.01 > 2, so the probe ends there, restored and diverged.
  assert ended == [(0, False), (0, False), (1, True)]
  assert bool(autolrs_jax.find_state(state).trial_diverged[0])
  np.testing.assert_array_equal(params["w"], [2.0, 0.0, 0.0, 0.0])


def test_the_paper_mode_s_drift_bound_is_per_probe_call_by_default():
  # Per call, 1 / TAU_PROBE of the whole probe's bound of 1: the same probe
  # (a path of 1, 1.1, 2.01 against a snapshot norm of 2) ends at the same
  # (third) step; twice as tight (a path of 1 allowed), at its second.
  params = {"w": jnp.array([2.0, 0.0, 0.0, 0.0])}

  def ends(tx):
    state = tx.init(params)
    lr = float(autolrs_jax.find_state(state).learning_rate)
    update = jax.jit(lambda g, s, p: tx.update(g, s, p, value=jnp.float32(1.0)))
    p = params
    for i in range(3):
      updates, state = update({"w": jnp.array([(-1.0) ** i / lr, 0.0, 0.0, 0.0])}, state, p)
      p = optax.apply_updates(p, updates)
      if bool(autolrs_jax.find_state(state).restored):
        return i
    return None

  assert inspect.signature(autolrs).parameters["drift_per_call"].default == 0.027
  assert ends(small_tx(max_probe_drift=1.0)) == 2
  assert ends(small_tx(drift_per_call=1.0 / TAU_PROBE)) == 2
  assert ends(small_tx(drift_per_call=0.5 / TAU_PROBE)) == 1


def test_noisy_quadratic_lrs_are_within_stable_range():
  # Curvatures in [0.01, L], each direction starting with the same loss, and a
  # minibatch-like noisy optimum: the loss keeps falling for thousands of
  # steps, noise keeps every direction excited (so LRs above 2/L blow up
  # visibly), and the chosen LRs must land in (0.05/L, 2/L).
  curvature = 4.0
  h = jnp.geomspace(0.01, curvature, 20)
  tx = autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=10.0, tau=100, tau_probe=10,
               num_trials=8, tau_max=200, kappa=2.0)

  @jax.jit
  def step(params, state, key):
    target = 0.01 * jax.random.normal(key, (20,))
    loss_fn = lambda p: 0.5 * jnp.sum(h * (p["w"] - target) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state

  params = {"w": 1.0 / jnp.sqrt(h)}
  state = tx.init(params)
  chosen = {}
  for key in jax.random.split(jax.random.key(0), 3 * (80 + 200)):
    info = autolrs_jax.describe(state)
    if info["phase"] == "exploit":
      chosen[info["stage"]] = info["learning_rate"]
    params, state = step(params, state, key)
  assert len(chosen) == 3
  for lr in chosen.values():
    assert 0.05 / curvature < lr < 2.0 / curvature, chosen


@pytest.mark.parametrize("kw,name", [
    (dict(min_lr=0.0), "min_lr"), (dict(min_lr=-1.0), "min_lr"),
    (dict(min_lr=1.0, max_lr=0.5), "max_lr"), (dict(min_lr=0.1, max_lr=0.1), "max_lr"),
    (dict(tau_probe=1), "tau_probe"), (dict(tau_probe=10), "tau_probe"),
    (dict(num_trials=0), "num_trials"), (dict(acquisition="ucb"), "acquisition"),
    (dict(tau_max=5), "tau_max"), (dict(warmup_steps=-1), "warmup_steps"),
    (dict(kappa=-1.0), "kappa"), (dict(max_probe_drift=0.0), "max_probe_drift"),
    (dict(validation_from_stage=-1), "validation_from_stage"),
])
def test_bad_hyperparameters_raise_naming_the_argument(kw, name):
  with pytest.raises(ValueError, match=name):
    small_tx(**kw)


def test_bad_value_is_refused_at_trace_time():
  tx = small_tx()
  params = {"w": jnp.ones(2)}
  state = tx.init(params)
  with pytest.raises(TypeError, match="value="):
    tx.update(params, state, params)
  with pytest.raises(ValueError, match="scalar"):
    tx.update(params, state, params, value=jnp.ones(2))
  with pytest.raises(ValueError, match="floating"):
    tx.update(params, state, params, value=jnp.int32(1))
  with pytest.raises(ValueError, match="params"):
    tx.update(params, state, None, value=jnp.float32(1.0))


def test_inside_optax_chain_after_clipping():
  tx = optax.chain(optax.clip_by_global_norm(0.1), small_tx())
  records, traces = make_run(tx, K * TAU_PROBE + 2)
  assert traces == 1
  first = records[0]
  assert optax.tree.norm(first["updates"]) <= 0.1 * 1e-2 * 1.0001  # Clipped, times lr <= max_lr.
  assert autolrs_jax.describe(records[-1]["new_state"])["phase"] == "exploit"


def test_through_nnx_optimizer_update():
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, small_tx(), wrt=nnx.Param)
  x, y = jnp.ones((8, 3)), jnp.zeros((8, 1))

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads, value=loss)
    return loss

  kernel0 = model.kernel[...].copy()
  losses = [float(step(model, optimizer)) for _ in range(K * TAU_PROBE)]
  # After both probes the model is back at its snapshot, exactly.
  np.testing.assert_array_equal(model.kernel[...], kernel0)
  assert autolrs_jax.describe(optimizer.opt_state)["phase"] == "exploit"
  for _ in range(TAU):
    losses.append(float(step(model, optimizer)))
  assert losses[-1] < losses[0]


def test_optax_tree_get_reads_the_learning_rate_in_a_chain_and_an_nnx_optimizer():
  tx = optax.chain(optax.clip_by_global_norm(1.0), small_tx())
  params = {"w": jnp.ones(3), "b": jnp.float32(0.5)}
  state = tx.init(params)
  step = jax.jit(lambda s: tx.update(params, s, params, value=jnp.float32(1.0))[1])
  for _ in range(TAU_PROBE + 1):  # Into the second probe, at a BO-proposed LR.
    state = step(state)
  want = autolrs_jax.find_state(state).learning_rate
  assert optax.tree.get(state, "learning_rate") == want
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, small_tx(), wrt=nnx.Param)
  got = optax.tree.get(nnx.as_pure(optimizer.opt_state), "learning_rate")
  assert got == autolrs_jax.find_state(optimizer.opt_state).learning_rate

