"""AutoLRS with a budget: the plan, the ladder, the anneal, the trust region, the kept probe."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import autolrs_jax
from autolrs_jax import _budget
from autolrs_jax import _stages
from autolrs_jax import forecast as forecast_lib

CURVATURES = jnp.geomspace(0.05, 4.0, 12)
TOTAL = 600
# Three stages searched by BO, later ones in a trust region, a linear anneal
# over the last 20%: the mechanisms that the default (one stage, a ladder, the
# 1 - sqrt anneal over 35%) does not use, pinned all the same.
MULTI = autolrs_jax.BudgetPlan(stage_weights=(1.0, 2.0, 4.0), first_search="bo",
                               probe_fraction=0.15, prefer_larger=0.0,
                               anneal_fraction=0.2, anneal_shape="linear")


def noisy_quadratic(params, key):
  target = 0.05 * jax.random.normal(key, CURVATURES.shape)
  return 0.5 * jnp.sum(CURVATURES * (params["w"] - target) ** 2)


def run(tx, steps):
  """Per-call records of a jitted run, and how often the step was traced."""
  params = {"w": 1.0 / jnp.sqrt(CURVATURES)}
  state = tx.init(params)
  traces = []

  @jax.jit
  def step(params, state, key):
    traces.append(1)
    loss, grads = jax.value_and_grad(noisy_quadratic)(params, key)
    before = autolrs_jax.find_state(state)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state, updates, before

  records = []
  for key in jax.random.split(jax.random.key(0), steps):
    new_params, state, updates, before = step(params, state, key)
    records.append(dict(params=params, updates=updates, before=jax.device_get(before)))
    params = new_params
  return records, len(traces), state


@pytest.fixture(scope="module")
def budget_run():
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0,
                           total_steps=TOTAL, warmup_steps=10,
                           warmup_lr=0.05, budget=MULTI)
  return run(tx, TOTAL + 5)


@pytest.fixture(scope="module")
def default_run():
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0,
                           total_steps=TOTAL)
  return run(tx, TOTAL)


def column(records, field):
  return np.asarray([getattr(r["before"], field) for r in records])


@pytest.mark.parametrize("plan", [autolrs_jax.BudgetPlan(), MULTI])
def test_planned_stages_fill_the_budget_exactly(plan):
  for total in range(200, 30_000, 97):
    for warmup in (0, total // 20):
      s = _stages.budget_schedule(total, plan, warmup, 16, None)
      lengths = [k * p + e for k, p, e in zip(s.num_trials, s.probe_steps, s.exploit_steps)]
      assert warmup + sum(lengths) + s.anneal_steps == total == s.total_steps
      assert s.stage_ends[-1] == total - s.anneal_steps
      assert min(s.exploit_steps) >= 1 and min(s.probe_steps) >= plan.min_probe_steps
      probes = sum(k * p for k, p in zip(s.num_trials, s.probe_steps))
      assert probes <= 0.25 * total, (total, s)


@pytest.mark.parametrize("plan,total", [(None, 20), (MULTI, 30)])
def test_a_budget_too_small_to_plan_is_refused(plan, total):
  with pytest.raises(ValueError, match="total_steps"):
    autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, total_steps=total,
                        budget=plan)


@pytest.mark.parametrize("kw,name", [
    (dict(tau=100), "tau"), (dict(num_trials=3), "num_trials"),
    (dict(budget=autolrs_jax.BudgetPlan(later_trials=1)), "later_trials"),
    (dict(budget=autolrs_jax.BudgetPlan(anneal_fraction=1.0)), "anneal_fraction"),
    (dict(budget=autolrs_jax.BudgetPlan(anneal_shape="cosine")), "anneal_shape"),
    (dict(budget=autolrs_jax.BudgetPlan(trust_region=1.0)), "trust_region"),
    (dict(budget=autolrs_jax.BudgetPlan(first_search="grid")), "first_search"),
    (dict(budget=autolrs_jax.BudgetPlan(ladder_factor=1.0)), "ladder_factor"),
    (dict(budget=autolrs_jax.BudgetPlan(ladder_plateau=-0.1)), "ladder_plateau"),
    (dict(budget=autolrs_jax.BudgetPlan(ladder_overrun=0.5)), "ladder_overrun"),
    (dict(budget=autolrs_jax.BudgetPlan(keep_lower_probe=True)), "keep_lower_probe"),
    (dict(budget=autolrs_jax.BudgetPlan(probe_warmup=1.0)), "probe_warmup"),
    (dict(budget=autolrs_jax.BudgetPlan(probe_spike=1.0)), "probe_spike"),
    (dict(budget=autolrs_jax.BudgetPlan(spike_window=2)), "spike_window"),
    (dict(budget=autolrs_jax.BudgetPlan(probe_warmup=0.5, score="cooldown",
                                        cooldown_fraction=0.5)), "probe_warmup"),
])
def test_budget_hyperparameters_are_checked(kw, name):
  with pytest.raises(ValueError, match=name):
    autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, total_steps=1000, **kw)
  with pytest.raises(ValueError, match="budget"):
    autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0,
                        budget=autolrs_jax.BudgetPlan())


def test_budget_run_compiles_once_and_ends_in_the_anneal(budget_run):
  records, traces, _ = budget_run
  assert traces == 1
  phase = column(records, "phase")
  plan = _stages.budget_schedule(TOTAL, MULTI, 10, 16, None)
  anneal_start = plan.stage_ends[-1]
  assert np.all(phase[:10] == autolrs_jax.WARMUP)
  assert np.all(phase[anneal_start:] == autolrs_jax.ANNEAL)
  assert not np.any(phase[:anneal_start] == autolrs_jax.ANNEAL)
  assert np.mean(phase[:TOTAL] == autolrs_jax.PROBE) <= 0.25
  # Stage boundaries fall on the planned calls.
  stage = column(records, "stage")
  assert [int(np.argmax(stage == i)) for i in (1, 2)] == list(plan.stage_ends[:2])


def test_the_anneal_decays_linearly_to_zero_at_the_last_call(budget_run):
  records, _, _ = budget_run
  lr = column(records, "learning_rate")
  plan = _stages.budget_schedule(TOTAL, MULTI, 10, 16, None)
  start = plan.stage_ends[-1]
  peak = lr[start]
  assert peak > 0 and lr[start - 1] == peak  # Goes on from the exploitation's LR.
  want = peak * (TOTAL - 1 - np.arange(start, TOTAL)) / (TOTAL - 1 - start)
  np.testing.assert_allclose(lr[start:TOTAL], want, rtol=1e-4, atol=1e-7 * peak)
  assert lr[TOTAL - 1] == 0.0 and np.all(lr[TOTAL:] == 0.0)


@pytest.mark.parametrize("shape, fraction_left", [
    ("linear", lambda u: 1 - u),
    ("1-sqrt", lambda u: 1 - np.sqrt(u)),
])
def test_the_anneal_s_factors_compound_to_its_shape(shape, fraction_left):
  plan = autolrs_jax.BudgetPlan(anneal_shape=shape)
  total, anneal = 100, 21
  start = total - anneal
  lr, lrs = 1.0, []
  for count in range(start, total + 2):
    lrs.append(lr)
    lr *= float(_budget.anneal_factor(plan, total, anneal, jnp.asarray(count)))
  want = fraction_left(np.arange(anneal) / (anneal - 1))
  np.testing.assert_allclose(lrs[:anneal], want, rtol=1e-5, atol=1e-7)
  assert lrs[anneal - 1] == lrs[anneal] == lrs[anneal + 1] == 0.0


def test_later_stages_probe_only_within_the_trust_region(budget_run):
  records, _, _ = budget_run
  stage, phase = column(records, "stage"), column(records, "phase")
  lr = column(records, "learning_rate")
  factor = MULTI.trust_region
  checked = 0
  for s in (1, 2):
    incumbent = lr[(stage == s - 1) & (phase == autolrs_jax.EXPLOIT)][-1]
    probed = lr[(stage == s) & (phase == autolrs_jax.PROBE)]
    assert np.all(probed <= incumbent * factor * 1.02), (s, incumbent, probed)
    assert np.all(probed >= incumbent / factor / 1.02), (s, incumbent, probed)
    checked += len(probed)
  assert checked > 0


def probe_ends(records):
  """``(restored, lr_kept)`` of each stage's last probe step."""
  out = []
  for before, after in zip(records, records[1:]):
    b, a = before["before"], after["before"]
    if b.phase == autolrs_jax.PROBE and a.phase == autolrs_jax.EXPLOIT and a.stage == b.stage:
      restore = b.snapshot_params["w"] - before["params"]["w"]
      out.append((np.array_equal(before["updates"]["w"], restore),
                  a.learning_rate == b.learning_rate))
  return out


def test_a_kept_probe_is_not_restored_and_its_lr_is_exploited(budget_run):
  records, _, _ = budget_run
  ends = probe_ends(records)
  assert len(ends) == 3  # One per stage.
  kept = [lr_kept for restored, lr_kept in ends if not restored]
  assert kept and all(kept)  # Not restored: training goes on at that probe's LR.


def test_without_keeping_every_last_probe_restores():
  plan = MULTI._replace(keep_winning_probe=False)
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0,
                           total_steps=TOTAL, warmup_steps=10, warmup_lr=0.05,
                           budget=plan)
  records, _, _ = run(tx, 300)
  ends = probe_ends(records)
  assert ends and all(restored for restored, _ in ends)


def ladder_end(keep_lower_probe=None):
  """The default ladder on the quadratic: the records around its last probe's end."""
  plan = autolrs_jax.BudgetPlan(keep_lower_probe=keep_lower_probe)
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0,
                           total_steps=TOTAL, budget=plan)
  records, _, _ = run(tx, 200)
  ends = [(i, r) for i, r in enumerate(records[:-1])
          if r["before"].phase == autolrs_jax.PROBE
          and records[i + 1]["before"].phase == autolrs_jax.EXPLOIT]
  assert len(ends) == 1
  i, last = ends[0]
  return last, records[i + 1]["before"]


def test_a_lower_last_probe_goes_on_as_the_exploitation_at_the_chosen_lr():
  last, first_exploit = ladder_end(keep_lower_probe="hot")
  probe_lr = last["before"].trial_lrs[last["before"].trial]
  assert probe_lr < first_exploit.learning_rate  # The ladder's rung below the choice.
  # Not restored: the probe's update is applied, and the chosen LR at once.
  restore = last["before"].snapshot_params["w"] - last["params"]["w"]
  assert not np.allclose(last["updates"]["w"], restore)
  assert first_exploit.learning_rate == first_exploit.exploit_lr
  # 'warm': the same, warming up as from the snapshot.
  last, first_exploit = ladder_end(keep_lower_probe="warm")
  restore = last["before"].snapshot_params["w"] - last["params"]["w"]
  assert not np.allclose(last["updates"]["w"], restore)
  assert first_exploit.learning_rate < first_exploit.exploit_lr
  # Without it the same probe is restored and the exploitation warms up.
  last, first_exploit = ladder_end()
  restore = last["before"].snapshot_params["w"] - last["params"]["w"]
  np.testing.assert_array_equal(last["updates"]["w"], restore)
  assert first_exploit.learning_rate < first_exploit.exploit_lr


def test_cooldown_probes_decay_their_lr_linearly_over_their_last_steps():
  # The fixed drift bound: the bound per call ends this probe at 0.32 within a
  # few calls, and the whole probe's shape is what is pinned.
  plan = autolrs_jax.BudgetPlan(score="cooldown", cooldown_fraction=0.5, drift_per_call=None)
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0,
                           total_steps=TOTAL, budget=plan)
  records, _, _ = run(tx, 60)
  schedule = _stages.budget_schedule(TOTAL, plan, 0, 16, None)
  p = schedule.probe_steps[0]
  c = round(0.5 * p)
  first = [r["before"] for r in records
           if r["before"].phase == autolrs_jax.PROBE and r["before"].trial == 1]
  assert len(first) == p  # A whole probe, none of it diverged.
  nominal = first[0].trial_lrs[1]
  want = [nominal * min(1.0, (p - j) / (c + 1)) for j in range(p)]
  np.testing.assert_allclose([b.learning_rate for b in first], want, rtol=1e-6)
  assert want[-1] < nominal / c  # Near zero at its end.


def test_warmup_probes_ramp_their_lr_linearly_over_their_first_steps():
  plan = autolrs_jax.BudgetPlan(probe_warmup=0.25)
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0,
                           total_steps=TOTAL, budget=plan)
  records, _, _ = run(tx, 60)
  p = _stages.budget_schedule(TOTAL, plan, 0, 16, None).probe_steps[0]
  w = round(0.25 * p)
  for trial in (0, 1):  # The stage's first probe (set at init) and a later one.
    probe = [r["before"] for r in records
             if r["before"].phase == autolrs_jax.PROBE and r["before"].trial == trial]
    nominal = probe[0].trial_lrs[trial]
    want = [nominal * min(1.0, (j + 1) / (w + 1)) for j in range(len(probe))]
    np.testing.assert_allclose([b.learning_rate for b in probe], want, rtol=1e-6)


def first_stage_probes(records):
  """``[(lr, score, diverged)]`` of the first stage's probes, in order."""
  state = [r["before"] for r in records if r["before"].stage == 0]
  exploit = next(b for b in state if b.phase == autolrs_jax.EXPLOIT)
  n = int(exploit.trial)
  return list(zip(exploit.trial_lrs[:n], exploit.trial_scores[:n],
                  exploit.trial_diverged[:n]))


def test_the_ladder_descends_from_max_lr_and_stops_past_the_best(default_run):
  records, traces, _ = default_run
  assert traces == 1
  probes = first_stage_probes(records)
  plan = autolrs_jax.BudgetPlan()
  lrs = np.asarray([lr for lr, _, _ in probes])
  want = 10.0 / plan.ladder_factor ** np.arange(len(lrs))
  np.testing.assert_allclose(lrs, want, rtol=1e-5)
  assert probes[0][2]  # 10 diverges on this quadratic (SGD-momentum is stable below ~0.95).
  ok = [(lr, score) for lr, score, diverged in probes if not diverged]
  assert len(ok) >= 2
  # Each LR that did not diverge scored better than the ones above it, but
  # the last, where the descent stopped (unless it ran out of probes).
  scores = [score for _, score in ok]
  assert all(b < a for a, b in zip(scores[:-2], scores[1:-1]))
  if len(probes) < plan.first_trials:
    assert scores[-1] > min(scores[:-1])
  phase = column(records, "phase")
  exploited = column(records, "exploit_lr")[phase == autolrs_jax.EXPLOIT]
  assert exploited[0] == pytest.approx(ladder_choice(probes, plan), rel=1e-4)
  # From the snapshot, the exploitation warms up linearly to it over 5% of the budget.
  w = round(plan.exploit_warmup * TOTAL)
  lr = column(records, "learning_rate")[phase == autolrs_jax.EXPLOIT][:w + 3]
  want = exploited[0] * np.minimum(1.0, (np.arange(w + 3) + 1) / (w + 1))
  np.testing.assert_allclose(lr, want, rtol=1e-5)


def ladder_choice(probes, plan):
  """The ladder's choice, computed independently of the controller."""
  lrs, scores, diverged = (np.asarray(column) for column in zip(*probes))
  best = int(np.argmin(scores))
  # The largest LR scoring within prefer_larger of the best ...
  top = scores[best]
  choice = max(lr for lr, score, d in probes
               if not d and score <= top + plan.prefer_larger * abs(top))
  if 0 < best < len(lrs) - 1 and not diverged[best - 1:best + 2].any():
    # ... or, below it, the minimum of the parabola through the best rung and its neighbours.
    a, b, _ = np.polyfit(np.log(lrs[best - 1:best + 2]), scores[best - 1:best + 2], 2)
    choice = min(choice, np.exp(-b / (2 * a)))
  return choice


@pytest.mark.parametrize("refine", ["vertex", "halves"])
def test_a_refined_ladder_probes_between_its_rungs_and_holds_the_best_probe(refine):
  # With Adam on this quadratic the ladder from 1.0 scores 0.316 best and
  # passes it at 0.1: its best rung has two neighbours that trained.
  runs = {}
  for plan in (autolrs_jax.BudgetPlan(), autolrs_jax.BudgetPlan(refine=refine)):
    tx = autolrs_jax.autolrs(optax.adam(1.0), min_lr=1e-4, max_lr=1.0, total_steps=TOTAL,
                             budget=plan)
    runs[plan.refine] = run(tx, TOTAL)
  records, traces, _ = runs[refine]
  assert traces == 1
  ladder, probes = first_stage_probes(runs[None][0]), first_stage_probes(records)
  n = len(ladder)
  # The same rungs on the same minibatches, then the refinements.
  np.testing.assert_allclose([p[:2] for p in probes[:n]], [p[:2] for p in ladder], rtol=1e-6)
  lrs, scores, diverged = (np.asarray(c) for c in zip(*ladder))
  best = int(np.argmin(scores))
  assert 0 < best < n - 1 and not diverged[best - 1:best + 2].any()  # Refinable here.
  refined = [lr for lr, _, _ in probes[n:]]
  assert len(refined) == _stages.REFINE_PROBES[refine]
  if refine == "vertex":
    a, b, _ = np.polyfit(np.log(lrs[best - 1:best + 2]), scores[best - 1:best + 2], 2)
    assert refined == pytest.approx([np.exp(-b / (2 * a))], rel=1e-4)
  else:
    half = plan.ladder_factor ** 0.5
    assert refined == pytest.approx([lrs[best] * half, lrs[best] / half], rel=1e-5)
  # It holds the largest LR within 5% of the best score of all its probes.
  top = min(score for _, score, _ in probes)
  want = max(lr for lr, score, d in probes if not d and score <= top + 0.05 * abs(top))
  phase = column(records, "phase")
  assert column(records, "exploit_lr")[phase == autolrs_jax.EXPLOIT][0] == pytest.approx(want)


def test_a_rung_below_one_that_diverged_scores_its_noise_worse(default_run):
  # On this quadratic the rungs 10 .. 0.0316 diverge: 0.01 is the edge of stability.
  scores = {2.0: [score for _, score, _ in first_stage_probes(default_run[0])]}  # The default.
  for margin in (None, 1.0):
    tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0,
                             total_steps=TOTAL, budget=autolrs_jax.BudgetPlan(edge_margin=margin))
    probes = first_stage_probes(run(tx, TOTAL)[0])
    assert [lr for lr, _, _ in probes] == [lr for lr, _, _ in first_stage_probes(default_run[0])]
    scores[margin] = [score for _, score, _ in probes]
    diverged = [d for _, _, d in probes]
  edge = [i for i in range(1, len(diverged)) if not diverged[i] and diverged[i - 1]]
  assert edge == [6]
  added = {m: np.asarray(scores[m]) - np.asarray(scores[None]) for m in (1.0, 2.0)}
  for m in (1.0, 2.0):  # Only the edge rung's score moves, by the margin's multiple.
    np.testing.assert_array_equal(np.delete(added[m], edge), 0.0)
  assert added[1.0][6] > 0 and added[2.0][6] == pytest.approx(2 * added[1.0][6], rel=1e-4)


def test_the_default_plan_is_one_stage_then_the_anneal(default_run):
  records, _, _ = default_run
  phase, stage = column(records, "phase"), column(records, "stage")
  assert set(stage.tolist()) == {0}
  schedule = _stages.budget_schedule(TOTAL, autolrs_jax.BudgetPlan(), 0, 16, None)
  assert np.all(phase[schedule.stage_ends[0]:] == autolrs_jax.ANNEAL)
  assert np.mean(phase == autolrs_jax.PROBE) <= autolrs_jax.BudgetPlan().probe_fraction + 1e-9


def test_a_ladder_whose_first_rungs_diverge_goes_on_down_and_holds_an_lr_it_probed():
  # From max_lr = 1000 the rungs 1000 .. ~1 diverge on this quadratic (SGD-momentum
  # is stable below ~0.95): they end within a few calls and do not use up the
  # ladder's five probes, which go on to LRs that train.
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-4, max_lr=1000.0,
                           total_steps=TOTAL)
  records, traces, _ = run(tx, TOTAL)
  assert traces == 1
  probes = first_stage_probes(records)
  diverged = [lr for lr, _, d in probes if d]
  held = [lr for lr, _, d in probes if not d]
  assert len(diverged) >= 5 and len(held) >= 2
  assert max(held) < min(diverged)
  phase = column(records, "phase")
  exploited = column(records, "exploit_lr")[phase == autolrs_jax.EXPLOIT]
  # What it holds lies among the LRs it probed and saw train, not at min_lr.
  assert min(held) * (1 - 1e-5) <= exploited[0] <= max(held) * (1 + 1e-5)
  assert np.mean(phase == autolrs_jax.PROBE) <= 0.25
  # Counting diverged rungs (the old five-probe cap), the ladder ends on them
  # and the stage falls back to min_lr.
  old = autolrs_jax.BudgetPlan(count_diverged_rungs=True, ladder_overrun=1.0)
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-4, max_lr=1000.0,
                           total_steps=TOTAL, budget=old)
  records, _, _ = run(tx, TOTAL)
  exploited = column(records, "exploit_lr")[column(records, "phase") == autolrs_jax.EXPLOIT]
  assert exploited[0] == pytest.approx(1e-4)


@pytest.mark.parametrize("base,bound,bounded", [
    (optax.adam(1.0), "always", True),
    (optax.adam(1.0), "gradient-scaled", False),
    (optax.sgd(1.0, momentum=0.9), "gradient-scaled", True),
    (optax.adam(1.0), None, False),  # The default plan: 'gradient-scaled' (issue 26).
    (optax.sgd(1.0, momentum=0.9), None, True),
])
def test_the_drift_bound_ends_probes_of_gradient_scaled_steps_only(base, bound, bounded):
  # Adam's steps keep their size: on this quadratic its probes at the ladder's
  # top rungs travel farther than twice the start's norm while their loss
  # falls. 'gradient-scaled' leaves them to their loss; SGD's are still bounded.
  plan = autolrs_jax.BudgetPlan() if bound is None else autolrs_jax.BudgetPlan(drift_bound=bound)
  tx = autolrs_jax.autolrs(base, min_lr=1e-3, max_lr=1.0, total_steps=TOTAL, budget=plan)
  records, _, state = run(tx, TOTAL // 2)
  assert bool(autolrs_jax.find_state(state).drift_bounded) is bounded
  diverged = [d for _, _, d in first_stage_probes(records)]
  assert any(diverged) is bounded


def test_the_log_forecast_judges_a_probe_by_the_factor_its_loss_falls_by():
  # A steep fall, still falling at the probe's end: the plain forecast
  # extrapolates it to 0 (the floor of a loss never below 0); the log-loss's
  # stays above 0, scales with the loss and ranks the faster fall lower.
  steps = jnp.arange(16.0)
  observed = jnp.ones(16, bool)
  steep, slow = 200.0 * 0.8**steps, 200.0 * 0.95**steps
  plan = autolrs_jax.BudgetPlan(score="log-forecast")
  forecast = autolrs_jax.BudgetPlan(score="forecast")
  assert float(_budget.score(forecast, steep, observed, 16, 400)[0]) == 0.0
  value = float(_budget.score(plan, steep, observed, 16, 400)[0])
  assert 0.0 < value < float(steep[-1])
  np.testing.assert_allclose(float(_budget.score(plan, 10 * steep, observed, 16, 400)[0]),
                             10 * value, rtol=1e-4)
  assert value < float(_budget.score(plan, slow, observed, 16, 400)[0])
  # A loss at or below 0 has no log: the plain forecast scores it, and a NaN diverges.
  shifted = steep - 20.0
  np.testing.assert_array_equal(_budget.score(plan, shifted, observed, 16, 400),
                                _budget.score(forecast, shifted, observed, 16, 400))
  assert bool(_budget.score(plan, steep.at[5].set(jnp.nan), observed, 16, 400)[1])


def test_with_stalled_diverges_a_probe_whose_loss_did_not_fall_diverged():
  at_chance = jnp.full(16, 2.3).at[:4].set(2.29)
  falling = 2.3 * 0.9 ** jnp.arange(16.0)
  observed = jnp.ones(16, bool)
  for plan, want in ((autolrs_jax.BudgetPlan(), (False, False)),
                     (autolrs_jax.BudgetPlan(stalled_diverges=True), (True, False))):
    got = tuple(bool(_budget.score(plan, losses, observed, 16, 400)[1])
                for losses in (at_chance, falling))
    assert got == want


def test_the_drift_bound_per_call_grows_with_the_probe_s_length():
  fixed = autolrs_jax.BudgetPlan(drift_per_call=None)
  per_call = autolrs_jax.BudgetPlan(drift_per_call=0.05)
  for calls in (12, 24, 48):
    assert float(_budget.drift_limit(fixed.drift_per_call, 2.0, calls)) == 2.0
    assert float(_budget.drift_limit(per_call.drift_per_call, 2.0, calls)) == pytest.approx(
        0.05 * calls)
  # In a run: bounded per call as the fixed bound is over its probes' length,
  # the ladder's probes diverge alike; bounded tighter, more of them do.
  tx = lambda plan: autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=10.0,
                                        total_steps=TOTAL, budget=plan)
  probe_calls = _stages.budget_schedule(TOTAL, fixed, 0, 16, None).probe_steps[0]
  plans = [fixed] + [autolrs_jax.BudgetPlan(drift_per_call=d / probe_calls) for d in (2.0, 0.1)]
  as_fixed, as_same, as_tight = ([d for *_, d in first_stage_probes(run(tx(p), TOTAL // 2)[0])]
                                 for p in plans)
  assert as_same == as_fixed and sum(as_tight) > sum(as_fixed)


def test_the_factor_floor_keeps_a_steadily_falling_probe_above_zero():
  # Falling by 100 over its 16 calls, the exponential fit (whose decay must
  # halve per probe) forecasts another 100 per probe for the stage: below 0.
  steady = jnp.linspace(200.0, 100.0, 16)
  leveling = 1.0 + jnp.exp(-jnp.arange(16.0) / 3.0)
  observed = jnp.ones(16, bool)
  zero, factor = autolrs_jax.BudgetPlan(), autolrs_jax.BudgetPlan(forecast_floor="factor")
  assert float(_budget.score(zero, steady, observed, 16, 400)[0]) == 0.0
  _, start, end = (float(v) for v in forecast_lib.first_and_last_quarter(steady, observed))
  assert float(_budget.score(factor, steady, observed, 16, 400)[0]) == pytest.approx(
      end * end / start, rel=1e-5)
  # A curve that levels off is forecast above the floor, the same by both rules.
  assert float(_budget.score(factor, leveling, observed, 16, 400)[0]) == pytest.approx(
      float(_budget.score(zero, leveling, observed, 16, 400)[0]))
