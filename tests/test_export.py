"""Exporting the schedule AutoLRS applied: the kept calls, JSON, replay, stretching."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import autolrs_jax

CURVATURES = jnp.geomspace(0.05, 4.0, 12)


def noisy_quadratic(params, key):
  target = 0.05 * jax.random.normal(key, CURVATURES.shape)
  return 0.5 * jnp.sum(CURVATURES * (params - target) ** 2)


def recorded_run(tx, steps):
  """``(recorder, per-call (lr, phase, stage, restored))`` of a jitted run."""
  params = 1.0 / jnp.sqrt(CURVATURES)
  state = tx.init(params)

  @jax.jit
  def step(params, state, key):
    loss, grads = jax.value_and_grad(noisy_quadratic)(params, key)
    updates, new_state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), new_state

  recorder = autolrs_jax.ScheduleRecorder()
  calls = []
  for key in jax.random.split(jax.random.key(0), steps):
    params, new_state = step(params, state, key)
    recorder.record(state, new_state)
    s, after = autolrs_jax.find_state(state), autolrs_jax.find_state(new_state)
    calls.append((float(s.learning_rate), int(s.phase), int(s.stage), bool(after.restored)))
    state = new_state
  return recorder, calls


# The budget's run goes on past its 400 calls, at LR 0: the export holds 0
# there, after an anneal that ends at its first 0.
PAST_BUDGET = 40


@pytest.fixture(scope="module", params=["linear", "1-sqrt"])
def budget_run(request):
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0,
                           total_steps=400, warmup_steps=10, warmup_lr=0.05,
                           budget=autolrs_jax.BudgetPlan(anneal_shape=request.param))
  return recorded_run(tx, 400 + PAST_BUDGET)


@pytest.fixture(scope="module")
def paper_run():
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0, tau=20,
                           tau_probe=4, num_trials=3, tau_max=40)
  return recorded_run(tx, 3 * 4 + 20 + 6 * 8 + 40)


def test_paper_mode_exports_exactly_the_exploited_lrs_and_lengths(paper_run):
  recorder, calls = paper_run
  found = recorder.export()
  exploit = [(lr, stage) for lr, phase, stage, _ in calls if phase == autolrs_jax.EXPLOIT]
  assert not any(r for *_, r in calls if _[1] == autolrs_jax.EXPLOIT)  # No rollback here.
  want = []
  for lr, stage in exploit:  # One held segment per stage: its LR and its length.
    if want and want[-1][2] == stage:
      want[-1][0] += 1
    else:
      want.append([1, lr, stage])
  assert [(s.steps, s.start_lr, s.end_lr) for s in found.segments] == [
      (n, lr, lr) for n, lr, _ in want]
  assert found.total_steps == len(exploit) >= 20 + 40  # Stage 2 may start exploiting early.


def test_budget_mode_keeps_its_kept_probe_and_ends_in_the_anneal(budget_run, request):
  recorder, calls = budget_run
  found = recorder.export()
  phases = np.asarray([c[1] for c in calls])
  kept = autolrs_jax._export.kept_calls(phases, np.asarray([c[2] for c in calls]),
                                        np.asarray([c[3] for c in calls]))
  assert found.total_steps == kept.sum() < len(calls)
  assert np.all(kept[phases != autolrs_jax.PROBE])  # No rollback on this problem.
  # AutoLRS's warm-up, the exploitation's own (from the snapshot over 5% of 400 calls, to
  # its LR at the 21st), the held LR, the anneal, the calls past the budget at 0.
  warmup, ramp, held, anneal, past = found.segments
  assert warmup.steps == 10 and ramp.steps == 21 and anneal.end_lr == 0.0
  assert past == autolrs_jax.Segment(PAST_BUDGET, 0.0, 0.0)
  assert ramp.end_lr == held.start_lr == held.end_lr == anneal.start_lr
  plan = autolrs_jax.BudgetPlan()
  assert anneal.steps == round(plan.anneal_fraction * 400)
  assert (warmup.shape, ramp.shape, held.shape) == ("linear",) * 3
  assert anneal.shape == request.node.callspec.params["budget_run"]


def test_the_paper_mode_s_replay_under_jit_matches_its_kept_lrs_step_for_step(paper_run):
  assert_replay_matches_kept_lrs(*paper_run)


def test_the_budget_mode_s_replay_under_jit_matches_its_kept_lrs_step_for_step(budget_run):
  assert_replay_matches_kept_lrs(*budget_run)


def assert_replay_matches_kept_lrs(recorder, calls):
  found = recorder.export()
  lrs, phases, stages, restored = (np.asarray(c) for c in zip(*calls))
  want = lrs[autolrs_jax._export.kept_calls(phases, stages, restored)].astype(np.float32)
  got = jax.jit(jax.vmap(found.schedule()))(jnp.arange(found.total_steps))
  # Held LRs bit for bit; the warm-ups linear and the anneal in its shape, as
  # AutoLRS ramps them, to float32 rounding.
  held = np.concatenate([np.full(seg.steps, seg.start_lr == seg.end_lr)
                         for seg in found.segments])
  np.testing.assert_array_equal(np.asarray(got)[held], want[held])
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)


def test_json_round_trips_bit_exactly(tmp_path, budget_run):
  found = budget_run[0].export()
  path = tmp_path / "schedule.json"
  found.save(path)
  assert autolrs_jax.FoundSchedule.load(path) == found
  assert autolrs_jax.FoundSchedule.from_json(found.to_json()) == found
  data = json.loads(found.to_json())
  assert data["format"] == "autolrs_jax.schedule" and data["version"] == 2


def test_a_version_1_file_reads_as_linear_segments():
  text = json.dumps({"format": "autolrs_jax.schedule", "version": 1, "total_steps": 11,
                     "segments": [{"steps": 1, "start_lr": 0.1, "end_lr": 0.1},
                                  {"steps": 10, "start_lr": 0.1, "end_lr": 0.0}]})
  found = autolrs_jax.FoundSchedule.from_json(text)
  assert [s.shape for s in found.segments] == ["linear", "linear"]
  np.testing.assert_allclose(jax.vmap(found.schedule())(jnp.arange(11))[1:],
                             0.1 * (1 - np.arange(10) / 9), rtol=1e-6, atol=1e-8)


def test_closest_shape_tells_a_linear_ramp_from_a_1_sqrt_one():
  u = np.arange(50) / 49
  assert autolrs_jax._export.closest_shape(0.3 * (1 - u)) == "linear"
  assert autolrs_jax._export.closest_shape(0.3 * (1 - np.sqrt(u))) == "1-sqrt"
  assert autolrs_jax._export.closest_shape([0.3]) == "linear"


def test_stretching_keeps_the_segment_proportions():
  found = autolrs_jax.FoundSchedule((autolrs_jax.Segment(30, 0.1, 0.1),
                                     autolrs_jax.Segment(60, 0.5, 0.5),
                                     autolrs_jax.Segment(10, 0.5, 0.0)))
  for total in (1000, 50, 333):
    lrs = np.asarray(jax.vmap(found.schedule(total))(jnp.arange(total)))
    first_half = round(0.3 * total)
    assert np.all(lrs[:first_half] == np.float32(0.1))
    assert np.all(lrs[first_half:round(0.9 * total)] == np.float32(0.5))
    assert lrs[-1] == 0.0 and np.all(np.diff(lrs[round(0.9 * total):]) < 0)
  assert float(found.schedule(1000)(5000)) == 0.0  # Past the end: the last LR.


@pytest.mark.parametrize("text,match", [
    ("not json", "not a schedule"),
    (json.dumps({"format": "other", "version": 1}), "format"),
    (json.dumps({"format": "autolrs_jax.schedule", "version": 3, "segments": []}), "version 3"),
    (json.dumps({"format": "autolrs_jax.schedule", "version": 2, "total_steps": 1,
                 "segments": [{"steps": 1, "start_lr": 0.1, "end_lr": 0.1}]}), "keys"),
    (json.dumps({"format": "autolrs_jax.schedule", "version": 2, "total_steps": 1,
                 "segments": [{"steps": 1, "start_lr": 0.1, "end_lr": 0.1,
                               "shape": "cosine"}]}), "shape"),
    (json.dumps({"format": "autolrs_jax.schedule", "version": 1, "segments": []}), "at least one"),
    (json.dumps({"format": "autolrs_jax.schedule", "version": 1, "total_steps": 1,
                 "segments": [{"steps": 0, "start_lr": 0.1, "end_lr": 0.1}]}), "steps"),
    (json.dumps({"format": "autolrs_jax.schedule", "version": 1, "total_steps": 1,
                 "segments": [{"steps": 1, "start_lr": float("nan"), "end_lr": 0.1}]}), "finite"),
    (json.dumps({"format": "autolrs_jax.schedule", "version": 1, "total_steps": 5,
                 "segments": [{"steps": 1, "start_lr": 0.1, "end_lr": 0.1}]}), "sum"),
])
def test_an_invalid_file_gives_a_clear_value_error(text, match):
  with pytest.raises(ValueError, match=match):
    autolrs_jax.FoundSchedule.from_json(text)
