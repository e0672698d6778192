"""The strategies the factory chooses once, and the state machine asks.

A mode's answers (how a stage opens and proposes its probes, scores them,
chooses its LR) are plain functions of the stage's trial arrays: each is
pinned here alone, and a replaced one changes what the state machine does.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import autolrs_jax
from autolrs_jax import _autolrs as A
from autolrs_jax import _stages
from autolrs_jax import _strategies as S
from autolrs_jax import forecast

SPACE = S.LRSpace(min_lr=1e-3, max_lr=1.0, grid_size=64)
KEY = jax.random.key(0)


def trials(lrs, scores, diverged=None, finished=None):
  n = len(lrs)
  return S.Trials(jnp.asarray(lrs, jnp.float32), jnp.asarray(scores, jnp.float32),
                  jnp.asarray(diverged or [False] * n),
                  jnp.asarray(finished or [True] * n))


def paper_strategies(num_trials=3):
  stages = _stages.doubling_schedule(20, 4, num_trials, 40, 2, None)
  return S.paper(SPACE, stages, "lcb", 2.0)


def budget_strategies(plan=None, total_steps=1000):
  plan = autolrs_jax.BudgetPlan() if plan is None else plan
  stages = _stages.budget_schedule(total_steps, plan, 0, 2, None)
  return S.budget(SPACE, stages, plan, "lcb", 2.0, 0), stages


def test_the_lr_space_maps_the_range_log_uniformly_both_ways():
  x = jnp.asarray([0.0, 0.5, 1.0])
  np.testing.assert_allclose(SPACE.from_unit(x), [1e-3, 10**-1.5, 1.0], rtol=1e-5)
  np.testing.assert_allclose(SPACE.to_unit(SPACE.from_unit(x)), x, atol=1e-6)
  draws = jnp.stack([SPACE.random(k, ceiling=0.01) for k in jax.random.split(KEY, 50)])
  assert float(draws.max()) < 0.01 and float(draws.min()) >= 1e-3 * (1 - 1e-6)


def test_the_paper_chooses_the_best_score_and_ends_its_search_at_its_last_trial():
  s = paper_strategies()
  t = trials([0.3, 0.02, 0.1], [0.9, 0.5, 0.7])
  index, lr = s.choose(t, jnp.int32(0))
  assert int(index) == 1 and float(lr) == pytest.approx(0.02)
  ends = [bool(s.search_ends(t, jnp.int32(0), jnp.int32(i), 0.0, False, 10)) for i in range(3)]
  assert ends == [False, False, True]
  assert s.probe_factor is None and s.anneal_factor is None  # Probes at their trial's LR.


def test_the_paper_proposes_a_new_lr_below_the_ceiling():
  s = paper_strategies()
  t = trials([0.3, 0.02, 0.0], [0.9, 0.5, 0.0], finished=[True, True, False])
  ceiling = SPACE.to_unit(jnp.float32(0.3))
  lr = float(s.propose(t, jnp.int32(0), jnp.int32(2), ceiling, 50))
  assert 1e-3 * (1 - 1e-6) <= lr < 0.3 and lr not in (pytest.approx(0.02),)


def test_the_budget_s_ladder_opens_at_max_lr_and_keeps_its_incumbent_slot_empty():
  s, stages = budget_strategies()
  lrs = s.open_stage(jnp.int32(0), jnp.float32(0.0), jnp.float32(jnp.inf), KEY)
  assert float(lrs[0]) == 1.0 and lrs.shape == (s.slots,)
  np.testing.assert_array_equal(lrs[1:], 0.0)
  assert float(s.initial_lr(KEY)) == 1.0


def test_a_later_budget_stage_opens_in_the_trust_region_with_its_incumbent_last():
  plan = autolrs_jax.BudgetPlan(stage_weights=(1.0, 2.0))
  s, stages = budget_strategies(plan, total_steps=2000)
  for key in jax.random.split(KEY, 10):
    lrs = s.open_stage(jnp.int32(1), jnp.float32(0.03), jnp.float32(jnp.inf), key)
    assert float(lrs[plan.later_trials - 1]) == pytest.approx(0.03)
    assert 0.03 / 4.0 * (1 - 1e-4) <= float(lrs[0]) <= 0.03 * 4.0 * (1 + 1e-4)


def test_the_budget_s_ladder_steps_down_and_stops_past_its_best_rung():
  s, _ = budget_strategies()
  t = trials([1.0, 0.316, 0.1, 0.0], [9.0, 0.5, 0.0, 0.0], diverged=[True, False, False, False],
             finished=[True, True, False, False])
  ceiling = SPACE.to_unit(jnp.float32(1.0))
  assert float(s.propose(t, jnp.int32(0), jnp.int32(2), ceiling, 50)) == pytest.approx(0.316 / 10**0.5)
  # The 0.1 rung ends scoring worse than 0.316 above it: the ladder has passed its best.
  assert bool(s.search_ends(t, jnp.int32(0), jnp.int32(2), 0.8, jnp.asarray(False), 50))
  assert not bool(s.search_ends(t, jnp.int32(0), jnp.int32(2), 0.3, jnp.asarray(False), 50))


def test_the_ladder_goes_on_past_a_plateau_only_with_ladder_plateau():
  # 0.316 and 0.1 both sit at chance (4.15 and 4.17): by default the ladder
  # stops at 0.1; with a 5% plateau it goes on to the rung below.
  t = trials([1.0, 0.316, 0.1, 0.0], [99.0, 4.15, 0.0, 0.0], diverged=[True, False, False, False],
             finished=[True, True, False, False])
  ends = lambda s, score: bool(s.search_ends(t, jnp.int32(0), jnp.int32(2), score,
                                             jnp.asarray(False), 50))
  default, _ = budget_strategies()
  plateau, _ = budget_strategies(autolrs_jax.BudgetPlan(ladder_plateau=0.05))
  assert ends(default, 4.17) and not ends(plateau, 4.17)
  assert ends(plateau, 4.4)  # Worse by more than 5%: passed.


def test_the_budget_prefers_the_largest_lr_near_the_best_and_the_vertex_lowers_it():
  s, _ = budget_strategies(autolrs_jax.BudgetPlan(ladder_vertex=False))
  t = trials([0.3, 0.1, 0.03], [0.52, 0.5, 0.8])
  index, lr = s.choose(t, jnp.int32(0))
  assert int(index) == 0 and float(lr) == pytest.approx(0.3)  # Within 5% of 0.5.
  with_vertex, _ = budget_strategies()
  t = trials([1.0, 0.3, 0.1, 0.03], [0.9, 0.8, 0.5, 0.6])
  index, lr = with_vertex.choose(t, jnp.int32(0))
  assert int(index) == 2 and 0.03 < float(lr) < 0.099  # Towards 0.03, which scored next best.
  t = trials([1.0, 0.3, 0.1, 0.03], [0.9, 0.6, 0.5, 0.8])
  assert float(with_vertex.choose(t, jnp.int32(0))[1]) == pytest.approx(0.1)  # Never raised.
  raising, _ = budget_strategies(autolrs_jax.BudgetPlan(vertex_raises=True))
  index, lr = raising.choose(t, jnp.int32(0))
  assert int(index) == 2 and 0.101 < float(lr) < 0.3  # Towards 0.3, which scored next best.


def test_a_strategy_replaced_in_the_config_changes_what_the_state_machine_does():
  # A new mechanism is a function: here the stage exploits its largest LR
  # that did not diverge, whatever the scores.
  def largest(t, stage):
    del stage
    index = jnp.argmax(jnp.where(t.finished_ok, t.lrs, -jnp.inf))
    return index, t.lrs[index]

  cfg = A.configure(min_lr=1e-3, max_lr=1.0, warmup_steps=0, warmup_lr=1.0, acquisition="lcb",
                    kappa=2.0, grid_size=64, max_probe_drift=2.0, axis_name=None, seed=0,
                    stages=_stages.doubling_schedule(20, 4, 3, 40, 2, None))
  s = A.init_controller(cfg)._replace(
      phase=jnp.int32(A.PROBE), trial=jnp.int32(2),
      trial_lrs=jnp.asarray([0.1, 0.02, 0.3], jnp.float32),
      trial_scores=jnp.asarray([0.9, 0.7, 0.0], jnp.float32))
  t = jnp.arange(cfg.stages.max_tau_probe, dtype=jnp.float32)
  losses, observed = 4.0 * (0.5 + 0.5 * jnp.exp(-t / 2.0)), t < 4
  score, diverged = A.score_probe(cfg, s, losses, observed, jnp.asarray(False))
  sig = A.Signals(
      losses=losses, observed=observed, diverged_now=jnp.asarray(False),
      stage_starts=jnp.asarray(False), probe_ends=jnp.asarray(True),
      exploit_ends=jnp.asarray(False), exploit_blows_up=jnp.asarray(False),
      warmup_ends=jnp.asarray(False), skip=jnp.asarray(False), stage_loss=jnp.float32(1.0),
      exploit_loss=jnp.float32(1.0), exploit_best=jnp.float32(1.0), probe_score=score,
      probe_diverged=diverged, keeps_probe=jnp.asarray(False), probe_path=jnp.float32(0.0),
      probe_peak=jnp.float32(0.0), last_loss=jnp.float32(0.0),
      probe_jitter=jnp.float32(0.0), stage_loss_square=jnp.float32(1.0))
  assert float(A.start_exploit(cfg, s, sig).learning_rate) == pytest.approx(0.02)
  custom = cfg._replace(strategies=cfg.strategies._replace(choose=largest))
  assert float(A.start_exploit(custom, s, sig).learning_rate) == pytest.approx(0.3)
  # So is the score: the forecast here, the probe's last loss there.
  last_loss = lambda losses, observed, tau_probe, tau: (losses[tau_probe - 1], jnp.asarray(False))
  want, _ = forecast.forecast(losses, observed, 4, 20)
  assert float(score) == pytest.approx(float(want))
  rescored = cfg._replace(strategies=cfg.strategies._replace(score=last_loss))
  other, _ = A.score_probe(rescored, s, losses, observed, jnp.asarray(False))
  assert float(other) == pytest.approx(float(losses[3]))


def test_a_refined_ladder_probes_between_its_rungs_before_it_holds_an_lr():
  # The ladder 1.0 (diverged), 0.316, 0.1, 0.0316: 0.1 is best, 0.0316 passed it.
  lrs, scores = [1.0, 0.316, 0.1, 0.0316, 0.0, 0.0], [9.0, 0.6, 0.4, 0.5, 0.0, 0.0]
  diverged = [True, False, False, False, False, False]
  half = 10**0.25
  ended = lambda s, t, trial, score: bool(s.search_ends(t, jnp.int32(0), jnp.int32(trial),
                                                        score, jnp.asarray(False), 50))
  ceiling = SPACE.to_unit(jnp.float32(1.0))
  for refine, probes in (("vertex", 1), ("halves", 2)):
    s, _ = budget_strategies(autolrs_jax.BudgetPlan(refine=refine))
    plain, _ = budget_strategies()
    assert s.slots == plain.slots + probes
    t = trials(lrs, scores, diverged, finished=[True, True, True, False, False, False])
    # Passing its best ends the plain ladder; the refined one goes on.
    assert ended(plain, t, 3, 0.5) and not ended(s, t, 3, 0.5)
    t = trials(lrs, scores, diverged, finished=[True, True, True, True, False, False])
    first = float(s.propose(t, jnp.int32(0), jnp.int32(4), ceiling, 60))
    if refine == "vertex":  # The parabola through 0.316, 0.1, 0.0316 bottoms out below 0.1.
      vertex, ok = S._budget.parabola_vertex(*t[:3], t.finished)
      assert bool(ok) and first == pytest.approx(float(vertex)) and 0.0316 < first < 0.1
    else:
      assert first == pytest.approx(0.1 * half, rel=1e-5)
    t = trials(lrs[:4] + [first, 0.0], scores[:4] + [0.3, 0.0], diverged,
               finished=[True] * 4 + [False] * 2)
    assert ended(s, t, 4, 0.3) == (probes == 1)
    if probes == 2:
      t = t._replace(finished=jnp.asarray([True] * 5 + [False]))
      assert float(s.propose(t, jnp.int32(0), jnp.int32(5), ceiling, 70)) == pytest.approx(
          0.1 / half, rel=1e-5)
      t = trials(lrs[:4] + [first, 0.1 / half], scores[:4] + [0.3, 0.35], diverged)
      assert ended(s, t._replace(finished=t.finished.at[5].set(False)), 5, 0.35)
    # The refinement scored best: the stage holds it, not a vertex it did not probe.
    done = t._replace(finished=t.finished.at[4].set(True))
    assert float(s.choose(done, jnp.int32(0))[1]) == pytest.approx(first)


def test_a_ladder_whose_best_rung_is_at_its_edge_has_nothing_to_refine():
  # 0.316 is best, next to 1.0 that diverged: the search ends as without refine.
  s, _ = budget_strategies(autolrs_jax.BudgetPlan(refine="halves"))
  t = trials([1.0, 0.316, 0.1, 0.0, 0.0, 0.0], [9.0, 0.4, 0.0, 0.0, 0.0, 0.0],
             [True] + [False] * 5, finished=[True, True, False, False, False, False])
  assert bool(s.search_ends(t, jnp.int32(0), jnp.int32(2), 0.5, jnp.asarray(False), 50))
  with pytest.raises(ValueError, match="budget.refine"):
    autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, total_steps=1000,
                        budget=autolrs_jax.BudgetPlan(refine="both"))


def test_the_edge_penalty_falls_on_the_first_stage_s_rung_below_a_diverged_one_only():
  s, _ = budget_strategies()  # edge_margin=2 by default.
  losses = jnp.asarray(0.5 + 0.1 * np.cos(np.arange(12.0)), jnp.float32)
  observed = jnp.ones(12, bool)
  penalty = lambda t, stage, trial: float(s.edge_penalty(t, jnp.int32(stage), jnp.int32(trial),
                                                         losses, observed))
  ladder = trials([1.0, 0.316, 0.1, 0.0], [9.0, 0.5, 0.0, 0.0], [True, False, False, False],
                  finished=[True, True, False, False])
  assert penalty(ladder, 0, 1) == pytest.approx(
      2.0 * float(forecast.noise(losses, observed)) / np.sqrt(12.0)) and penalty(ladder, 0, 1) > 0
  assert penalty(ladder, 0, 2) == 0.0  # Below a rung that trained.
  assert penalty(ladder, 1, 1) == 0.0  # A later stage's probes are no ladder.
  above = trials([0.1, 0.3, 0.0], [9.0, 0.0, 0.0], [True, False, False], [True, False, False])
  assert penalty(above, 0, 1) == 0.0  # A refinement above a diverged probe is no edge.
  assert budget_strategies(autolrs_jax.BudgetPlan(edge_margin=None))[0].edge_penalty is None
