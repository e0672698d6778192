"""AutoLRS's state machine, one transition at a time, on hand-built states."""

import jax.numpy as jnp
import numpy as np
import pytest

import autolrs_jax
from autolrs_jax import _autolrs as A
from autolrs_jax import _stages
from autolrs_jax import forecast

NUM_TRIALS, TAU, TAU_PROBE = 3, 20, 4


def config(**kw):
  kw = dict(min_lr=1e-3, max_lr=1.0, warmup_steps=0, warmup_lr=1.0,
            acquisition="lcb", kappa=2.0, grid_size=64, max_probe_drift=2.0, axis_name=None,
            seed=0, stages=_stages.doubling_schedule(TAU, TAU_PROBE, NUM_TRIALS, 2 * TAU, 2,
                                                     None)) | kw
  return A.configure(**kw)


def controller(cfg, **fields):
  return A.init_controller(cfg)._replace(**fields)


def signals(cfg, **kw):
  n = cfg.stages.max_tau_probe
  false = jnp.asarray(False)
  base = dict(losses=jnp.zeros([n], jnp.float32), observed=jnp.zeros([n], bool),
              diverged_now=false, stage_starts=false, probe_ends=false, exploit_ends=false,
              exploit_blows_up=false, warmup_ends=false, skip=false,
              stage_loss=jnp.float32(1.0), exploit_loss=jnp.float32(1.0),
              exploit_best=jnp.float32(1.0), probe_score=jnp.float32(0.0), probe_diverged=false, keeps_probe=false,
              probe_path=jnp.float32(0.0), probe_peak=jnp.float32(0.0), last_loss=jnp.float32(0.0),
              probe_jitter=jnp.float32(0.0), stage_loss_square=jnp.float32(1.0))
  return A.Signals(**(base | kw))


def ended_probe(cfg, state, losses, observed, diverged_now=False):
  """The signals of a probe's last step, scored as ``observe`` scores it."""
  diverged_now = jnp.asarray(diverged_now)
  score, diverged = A.score_probe(cfg, state, losses, observed, diverged_now)
  return signals(cfg, losses=losses, observed=observed, diverged_now=diverged_now,
                 probe_ends=jnp.asarray(True), probe_score=score, probe_diverged=diverged)


def decaying_probe(cfg, level=1.0):
  """A probe's full record: a clean exponential decay towards ``level / 2``."""
  t = jnp.arange(cfg.stages.max_tau_probe, dtype=jnp.float32)
  return dict(losses=level * (0.5 + 0.5 * jnp.exp(-t / 2.0)), observed=t < TAU_PROBE)


def test_continue_counts_the_step_and_keeps_the_probe_record():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(1),
                 learning_rate=jnp.float32(0.3))
  sig = signals(cfg, losses=jnp.arange(cfg.stages.max_tau_probe, dtype=jnp.float32))
  out = A.continue_phase(cfg, s, sig)
  assert int(out.phase_step) == 2 and float(out.learning_rate) == pytest.approx(0.3)
  np.testing.assert_array_equal(out.probe_losses, sig.losses)


def test_continue_ramps_the_warmup_lr_for_the_next_step():
  cfg = config(warmup_steps=4, warmup_lr=0.8)
  s = controller(cfg, phase=jnp.int32(A.WARMUP), count=jnp.int32(1))
  out = A.continue_phase(cfg, s, signals(cfg))
  assert float(out.learning_rate) == pytest.approx(0.8 * 3 / 4)  # Step 2 of 4 applies it.


def test_next_trial_records_the_forecast_and_proposes_below_a_diverged_lr():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.PROBE), trial=jnp.int32(1),
                 phase_step=jnp.int32(TAU_PROBE - 1),
                 trial_lrs=jnp.asarray([0.5, 0.01, 0.0], jnp.float32),
                 trial_scores=jnp.asarray([7.0, 0.0, 0.0], jnp.float32),
                 trial_diverged=jnp.asarray([True, False, False]))
  probe = decaying_probe(cfg)
  out = A.next_trial(cfg, s, ended_probe(cfg, s, **probe))
  assert int(out.trial) == 2 and int(out.phase_step) == 0
  want, _ = forecast.forecast(probe["losses"], probe["observed"], TAU_PROBE, TAU)
  assert float(out.trial_scores[1]) == float(want) < float(probe["losses"][TAU_PROBE - 1])
  assert not bool(out.trial_diverged[1])
  lr = float(out.learning_rate)
  assert cfg.min_lr <= lr < 0.5  # Never at or above the diverged 0.5.
  assert float(out.trial_lrs[2]) == lr
  np.testing.assert_array_equal(out.probe_losses, 0.0)


def test_next_trial_scores_a_diverged_probe_as_the_worst_loss_seen():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.PROBE), trial=jnp.int32(1),
                 trial_scores=jnp.asarray([3.0, 0.0, 0.0], jnp.float32))
  probe = decaying_probe(cfg)
  out = A.next_trial(cfg, s, ended_probe(cfg, s, diverged_now=True, **probe))
  assert bool(out.trial_diverged[1])
  assert float(out.trial_scores[1]) == 3.0  # Worse than any loss of the probe itself.


def test_start_exploit_takes_the_lowest_forecast():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.PROBE), trial=jnp.int32(NUM_TRIALS - 1),
                 trial_lrs=jnp.asarray([0.1, 0.02, 0.3], jnp.float32),
                 trial_scores=jnp.asarray([0.9, 0.7, 0.0], jnp.float32))
  probe = decaying_probe(cfg, level=4.0)  # Forecast far above the others.
  out = A.start_exploit(cfg, s, ended_probe(cfg, s, **probe))
  assert int(out.phase) == A.EXPLOIT and int(out.phase_step) == 0
  assert float(out.trial_scores[2]) > 0.9
  assert float(out.learning_rate) == pytest.approx(0.02)


def test_start_exploit_falls_back_to_min_lr_when_every_probe_diverged():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.PROBE), trial=jnp.int32(NUM_TRIALS - 1),
                 trial_lrs=jnp.asarray([0.1, 0.2, 0.3], jnp.float32),
                 trial_diverged=jnp.asarray([True, True, False]))
  out = A.start_exploit(cfg, s, ended_probe(cfg, s, diverged_now=True, **decaying_probe(cfg)))
  assert float(out.learning_rate) == pytest.approx(cfg.min_lr)


@pytest.mark.parametrize("diverged,want", [
    ([False, False, False], 0.02),  # The best forecast among smaller LRs.
    ([False, True, False], 0.01),  # 0.02 diverged: the next best smaller one.
    ([True, True, False], 0.03),  # None smaller is left: a tenth of the failed LR.
])
def test_retry_exploit_restarts_at_a_smaller_lr(diverged, want):
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.EXPLOIT), phase_step=jnp.int32(7),
                 learning_rate=jnp.float32(0.3), exploit_lr=jnp.float32(0.3),
                 trial=jnp.int32(NUM_TRIALS),
                 trial_lrs=jnp.asarray([0.01, 0.02, 0.3], jnp.float32),
                 trial_scores=jnp.asarray([0.8, 0.6, 0.1], jnp.float32),
                 trial_diverged=jnp.asarray(diverged))
  out = A.retry_exploit(cfg, s, signals(cfg))
  assert int(out.phase) == A.EXPLOIT and int(out.phase_step) == 0
  assert float(out.learning_rate) == pytest.approx(want)
  assert bool(out.trial_diverged[2])  # The failed LR counts as diverged.


@pytest.mark.parametrize("phase,stage_after", [(A.EXPLOIT, 3), (A.WARMUP, 2)])
def test_start_stage_opens_a_stage_at_a_random_lr(phase, stage_after):
  cfg = config()
  s = controller(cfg, phase=jnp.int32(phase), stage=jnp.int32(2), trial=jnp.int32(3),
                 phase_step=jnp.int32(5), trial_scores=jnp.ones([NUM_TRIALS]),
                 trial_diverged=jnp.ones([NUM_TRIALS], bool))
  out = A.start_stage(cfg, s, signals(cfg))
  assert int(out.stage) == stage_after and int(out.phase) == A.PROBE
  assert int(out.trial) == 0 and int(out.phase_step) == 0
  lr = float(out.learning_rate)
  assert cfg.min_lr * 0.999 <= lr <= cfg.max_lr * 1.001
  assert float(out.trial_lrs[0]) == lr
  assert not np.any(out.trial_diverged) and not np.any(out.trial_scores)


@pytest.mark.parametrize("trial,flags,want", [
    (0, {}, A.CONTINUE),
    (0, {"probe_ends": True}, A.NEXT_TRIAL),
    (NUM_TRIALS - 1, {"probe_ends": True}, A.START_EXPLOIT),
    (0, {"exploit_ends": True}, A.START_STAGE),
    (0, {"warmup_ends": True}, A.START_STAGE),
    (0, {"exploit_blows_up": True}, A.RETRY_EXPLOIT),
])
def test_choose_event(trial, flags, want):
  cfg = config()
  s = controller(cfg, trial=jnp.int32(trial))
  sig = signals(cfg, **{k: jnp.asarray(v) for k, v in flags.items()})
  assert int(A.choose_event(cfg, s, sig)) == want


def measured(loss, step=(-0.1, -0.1, -0.1), snapshot_norm=np.sqrt(3.0)):
  """What an update call measures: its loss (also the probe's score) and its step."""
  step_finite, step_length = A._common.finite_and_length({"w": jnp.asarray(step)},
                                                         jnp.float32(1.0))
  loss = jnp.float32(loss)
  return A.Measured(value=loss, score=loss, step_finite=step_finite, step_length=step_length,
                    snapshot_norm=jnp.float32(snapshot_norm), stage_starts=jnp.asarray(False))


def test_observe_ends_a_probe_at_its_last_step_or_on_a_nan():
  cfg = config()
  for phase_step, loss, ends in ((1, 1.0, False), (TAU_PROBE - 1, 1.0, True), (1, np.nan, True)):
    s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(phase_step))
    sig = A.observe(cfg, s, measured(loss), validating=False)
    assert bool(sig.probe_ends) == ends and bool(sig.something_ends) == ends
    assert not bool(sig.skip)
    assert bool(sig.observed[phase_step]) and not bool(sig.observed[phase_step + 1])


def test_observe_skips_a_nan_step_outside_probes_and_flags_a_blow_up():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.EXPLOIT), phase_step=jnp.int32(12),
                 stage_loss=jnp.float32(1.0), exploit_loss=jnp.float32(1.0))
  assert bool(A.observe(cfg, s, measured(np.nan), validating=False).skip)
  # Moves the ten-step average to 4.9 > 1.5x the stage's 1.0 (the paper's mode).
  sig = A.observe(cfg, s, measured(40.0), validating=False)
  assert bool(sig.exploit_blows_up) and not bool(sig.exploit_ends) and bool(sig.restores)
  assert bool(sig.something_ends)
  # Not within the first ten steps of the exploitation: its average is one loss.
  early = A.observe(cfg, s._replace(phase_step=jnp.int32(5)), measured(40.0), validating=False)
  assert not bool(early.exploit_blows_up)


@pytest.mark.parametrize("average,lr,stage,blows_up", [
    (1.05, 0.3, 0, True),  # Ends above its start: no progress, retried lower.
    (1.0, 0.3, 0, True),  # Ends at its start (a classifier collapsed to chance stays there).
    (0.9, 0.3, 0, False),  # Made progress: the stage ends.
    (1.05, 1e-3, 0, False),  # At min_lr there is nothing lower to retry.
    (1.05, 0.3, 1, False),  # A later stage may stall (a model that fits its data).
])
def test_paper_mode_retries_a_first_exploitation_that_ends_no_lower_than_it_began(
    average, lr, stage, blows_up):
  cfg = config()
  _, tau = cfg.stages.lengths(jnp.int32(stage))
  s = controller(cfg, phase=jnp.int32(A.EXPLOIT), phase_step=jnp.int32(tau - 1),
                 stage=jnp.int32(stage),
                 learning_rate=jnp.float32(lr), stage_loss=jnp.float32(1.0),
                 exploit_loss=jnp.float32(average))
  sig = A.observe(cfg, s, measured(average), validating=False)
  assert bool(sig.exploit_blows_up) == blows_up
  assert bool(sig.exploit_ends) == (not blows_up)


@pytest.mark.parametrize("guard,best,loss,blows_up", [
    (0.5, 0.5, 11.0, True),  # Halved the stage's 2.0, then the average 1.64 gave back 76%.
    (0.5, 0.5, 1.0, False),  # The average 0.64 gave back 9% of its gain.
    (0.5, 1.2, 11.0, False),  # Gained 0.8 < half of 2.0: not armed, and 1.64 < 1.5x 2.0.
    (None, 0.5, 11.0, False),  # No guard: only the 1.5x rule, which 1.64 < 3.0 passes.
])
def test_the_guard_rolls_back_an_exploitation_that_gives_back_half_its_gain(
    guard, best, loss, blows_up):
  plan = autolrs_jax.BudgetPlan(exploit_guard=guard)
  cfg = config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)
  s = controller(cfg, phase=jnp.int32(A.EXPLOIT), phase_step=jnp.int32(50),
                 stage_loss=jnp.float32(2.0), exploit_loss=jnp.float32(0.6),
                 exploit_best=jnp.float32(best))
  sig = A.observe(cfg, s, measured(loss), validating=False)
  assert float(sig.exploit_loss) == pytest.approx(0.9 * 0.6 + 0.1 * loss)
  assert float(sig.exploit_best) == pytest.approx(min(best, float(sig.exploit_loss)))
  assert bool(sig.exploit_blows_up) == blows_up


def test_a_budget_s_exploitation_that_blows_up_at_its_last_call_ends_its_stage():
  plan = autolrs_jax.BudgetPlan()
  cfg = config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)
  last = int(cfg.stages.stage_end(jnp.int32(0))) - 1
  events = []
  for count in (last - 1, last):
    s = controller(cfg, phase=jnp.int32(A.EXPLOIT), phase_step=jnp.int32(50),
                   count=jnp.int32(count), stage_loss=jnp.float32(1.0),
                   exploit_loss=jnp.float32(1.0), exploit_best=jnp.float32(1.0))
    events.append(int(A.choose_event(cfg, s, A.observe(cfg, s, measured(40.0), False))))
  # One call before: retried from the snapshot; at the last: the anneal starts.
  assert events == [A.RETRY_EXPLOIT, A.START_ANNEAL]


def test_the_exploitation_s_best_restarts_with_it():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.EXPLOIT), phase_step=jnp.int32(0),
                 exploit_loss=jnp.float32(0.1), exploit_best=jnp.float32(0.1))
  sig = A.observe(cfg, s, measured(3.0), validating=False)
  assert float(sig.exploit_loss) == float(sig.exploit_best) == 3.0


def test_without_a_drift_bound_a_probe_diverges_on_its_loss_only():
  bounded, free = config(), config(max_probe_drift=None)
  s = controller(bounded, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(1),
                 probe_path=jnp.float32(100.0))
  assert bool(A.observe(bounded, s, measured(1.0), validating=False).diverged_now)
  assert not bool(A.observe(free, s, measured(1.0), validating=False).diverged_now)
  assert bool(A.observe(free, s, measured(np.inf), validating=False).diverged_now)


@pytest.mark.parametrize("fields,drift_bounded,peak,diverged", [
    (dict(probe_spike=3.0), False, 6.1, True),  # Above 3x the stage's start of 2.0.
    (dict(probe_spike=3.0), False, 5.9, False),
    (dict(probe_spike=None), False, 6.1, False),  # No loss bound.
    # The drift bound judges this probe; the loss bound does not.
    (dict(probe_spike=3.0), True, 6.1, False),
    ({}, False, 3.1, True),  # The default bound, 1.5x (issue 26).
    ({}, False, 2.9, False),
])
def test_a_probe_the_drift_bound_does_not_judge_diverges_on_a_loss_spike(
    fields, drift_bounded, peak, diverged):
  plan = autolrs_jax.BudgetPlan(**fields)
  cfg = config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)
  tau_probe, _ = cfg.stages.lengths(jnp.int32(0))
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(3),
                 trial=jnp.int32(1), stage_loss=jnp.float32(2.0),
                 probe_peak=jnp.float32(peak), drift_bounded=jnp.asarray(drift_bounded))
  mid = A.observe(cfg, s, measured(1.0), validating=False)
  # The probe runs on (its minibatches stay those of the run without the
  # rule) and keeps its peak; its stage's reference stays.
  assert not bool(mid.probe_ends) and float(mid.probe_peak) == pytest.approx(peak)
  assert float(mid.stage_loss) == 2.0
  last = s._replace(phase_step=jnp.int32(int(tau_probe) - 1))
  ended = A.score_ended_probe(cfg, last, A.observe(cfg, last, measured(1.0), False))
  assert bool(ended.probe_ends) and bool(ended.probe_diverged) == diverged


def probe_calls(cfg, state, losses):
  """``(before, signals, after)``: a probe's calls with these minibatch losses,
  each concluded as the state machine does; the last call's state before it
  (what :func:`A.spiked` judges the probe's end from) and its signals."""
  for loss in losses:
    before, signals = state, A.observe(cfg, state, measured(loss), validating=False)
    state = A.conclude(cfg, state, A.continue_phase(cfg, state, signals), signals)
  return before, signals, state


@pytest.mark.parametrize("losses,window,peak,diverged", [
    # One minibatch's outlier at twice the stage's start of 2.0.
    ([2.0, 2.1, 4.0, 2.0, 1.9, 1.8], 1, 4.0, True),
    ([2.0, 2.1, 4.0, 2.0, 1.9, 1.8], 3, 2.1, False),  # The medians of three: 2.1, 2.0, 1.9, 1.8.
    # A rise that lasts two calls is a spike either way.
    ([2.0, 4.0, 4.1, 2.0, 1.9, 1.8], 1, 4.1, True),
    ([2.0, 4.0, 4.1, 2.0, 1.9, 1.8], 3, 4.0, True),
])
def test_the_spike_bound_judges_the_median_of_the_last_three_losses_if_its_window_says(
    losses, window, peak, diverged):
  plan = autolrs_jax.BudgetPlan(spike_window=window, spike_noise=None)
  cfg = config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(0), trial=jnp.int32(1),
                 stage_loss=jnp.float32(2.0), drift_bounded=jnp.asarray(False))
  last, sig, s = probe_calls(cfg, s, losses)
  assert float(s.probe_peak) == pytest.approx(peak)
  np.testing.assert_allclose([s.last_loss, s.loss_before_last], [losses[-1], losses[-2]])
  assert bool(A.spiked(cfg, last, sig)) == diverged


@pytest.mark.parametrize("losses,noise,diverged", [
    # Minibatch noise at a low loss: the peak (0.5) passes 1.5x the start
    # (0.3) but not 3x the mean change per call (0.3) above it.
    ([0.3, 0.5, 0.2, 0.5, 0.2, 0.5], None, True),
    ([0.3, 0.5, 0.2, 0.5, 0.2, 0.5], 3.0, False),
    ([0.3, 0.5, 0.2, 0.5, 0.2, 0.5], "default", False),  # 3x (issue 26).
    # A rise at a model's initial chance, with little noise: a spike either way
    # (the rise counts in the noise too: in a probe this long, not enough).
    ([2.3, 2.3, 4.0, 2.4, 2.3, 2.25, 2.2, 2.2, 2.15, 2.1, 2.1, 2.05], None, True),
    ([2.3, 2.3, 4.0, 2.4, 2.3, 2.25, 2.2, 2.2, 2.15, 2.1, 2.1, 2.05], 3.0, True),
])
def test_the_spike_bound_rises_above_the_probe_s_noise_if_asked(losses, noise, diverged):
  plan = autolrs_jax.BudgetPlan(**({} if noise == "default" else dict(spike_noise=noise)))
  cfg = config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(0), trial=jnp.int32(1),
                 stage_loss=jnp.float32(losses[0]), drift_bounded=jnp.asarray(False))
  last, sig, s = probe_calls(cfg, s, losses)
  assert float(s.probe_jitter) == pytest.approx(np.abs(np.diff(losses)).sum(), rel=1e-5)
  assert bool(A.spiked(cfg, last, sig)) == diverged


@pytest.mark.parametrize("first_losses,peak,diverged", [
    # First losses spread by minibatch noise at a low loss: mean 0.4, standard
    # deviation 0.2; a peak of 0.7 passes 1.5x the start, not 3 deviations.
    ([0.2, 0.6], 0.7, False),
    ([0.2, 0.6], 1.1, True),
    # Near a model's initial chance they barely spread: the 1.5x decides.
    ([2.30, 2.32], 3.5, True),
    ([2.30, 2.32], 3.4, False),
])
def test_the_spike_bound_s_noise_can_be_the_spread_of_the_stage_s_first_losses(
    first_losses, peak, diverged):
  plan = autolrs_jax.BudgetPlan(spike_noise_from="start")
  cfg = config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(0), trial=jnp.int32(0),
                 drift_bounded=jnp.asarray(False))
  for trial, loss in enumerate(first_losses):  # Each probe's first call, at the snapshot.
    s = s._replace(trial=jnp.int32(trial), phase_step=jnp.int32(0))
    sig = A.observe(cfg, s, measured(loss)._replace(stage_starts=jnp.asarray(trial == 0)),
                    validating=False)
    s = A.conclude(cfg, s, A.continue_phase(cfg, s, sig), sig)
  np.testing.assert_allclose([s.stage_loss, s.stage_loss_square],
                             [np.mean(first_losses), np.mean(np.square(first_losses))], rtol=1e-5)
  sig = A.observe(cfg, s._replace(probe_peak=jnp.float32(peak)), measured(0.1), False)
  assert bool(A.spiked(cfg, s, sig)) == diverged


def test_a_probe_s_peak_restarts_with_it():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(0),
                 probe_peak=jnp.float32(50.0))
  assert float(A.observe(cfg, s, measured(2.0), validating=False).probe_peak) == 2.0


def test_the_paper_mode_has_no_loss_bound_on_its_probes():
  assert config().probe_spike is None


def test_a_blown_up_exploitation_caps_the_lrs_of_later_stages():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.EXPLOIT), phase_step=jnp.int32(7),
                 learning_rate=jnp.float32(0.3), exploit_lr=jnp.float32(0.3),
                 trial=jnp.int32(NUM_TRIALS),
                 trial_lrs=jnp.asarray([0.01, 0.02, 0.3], jnp.float32),
                 trial_scores=jnp.asarray([0.8, 0.6, 0.1], jnp.float32))
  retried = A.retry_exploit(cfg, s, signals(cfg))
  assert float(retried.lr_ceiling) == pytest.approx(0.3)
  assert float(A.init_controller(cfg).lr_ceiling) == np.inf
  # The next stages' random first probes and BO proposals stay below it.
  for count in range(20):  # Each call draws from its own key.
    opened = A.start_stage(cfg, retried._replace(count=jnp.int32(count)), signals(cfg))
    assert float(opened.learning_rate) < 0.3
    probe = decaying_probe(cfg)
    ended = A.next_trial(cfg, opened, ended_probe(cfg, opened, **probe))
    assert float(ended.learning_rate) < 0.3


def test_a_probe_ends_as_diverged_when_its_step_would_pass_the_drift_limit():
  cfg = config()  # max_probe_drift = 2: the path may reach twice the snapshot's norm.
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(1),
                 probe_path=jnp.float32(1.5))
  near = A.observe(cfg, s, measured(1.0, step=(0.4, 0.0, 0.0), snapshot_norm=1.0), False)
  far = A.observe(cfg, s, measured(1.0, step=(0.6, 0.0, 0.0), snapshot_norm=1.0), False)
  assert not bool(near.probe_ends) and float(near.probe_path) == pytest.approx(1.9)
  assert bool(far.diverged_now) and bool(far.probe_ends)


def test_a_call_draws_from_its_count_whatever_the_calls_before_it_drew():
  cfg = config()
  exploiting = dict(phase=jnp.int32(A.EXPLOIT), learning_rate=jnp.float32(0.1))
  s = controller(cfg, **exploiting)
  for _ in range(3):
    s = A.transition(cfg, s, signals(cfg), A.CONTINUE)
  opened = A.transition(cfg, s, signals(cfg), A.START_STAGE)
  # The same as a controller that arrives at call 3 without the quiet calls.
  direct = A.transition(cfg, controller(cfg, count=jnp.int32(3), **exploiting), signals(cfg),
                        A.START_STAGE)
  np.testing.assert_array_equal(opened.trial_lrs, direct.trial_lrs)
  key = A.jax.random.fold_in(A.jax.random.wrap_key_data(controller(cfg).key), 3)
  assert float(opened.trial_lrs[0]) == float(cfg.strategies.open_stage(
      jnp.int32(1), jnp.float32(0.1), s.lr_ceiling, key)[0])
  assert np.array_equal(opened.key, controller(cfg).key)  # The key itself never changes.
  later = A.transition(cfg, controller(cfg, count=jnp.int32(4), **exploiting), signals(cfg),
                       A.START_STAGE)
  assert float(later.trial_lrs[0]) != float(opened.trial_lrs[0])


def test_advance_scores_an_ended_probe_and_only_counts_a_quiet_step():
  cfg = config()
  s = controller(cfg, phase=jnp.int32(A.PROBE), phase_step=jnp.int32(TAU_PROBE - 1),
                 probe_losses=decaying_probe(cfg)["losses"])
  advance = lambda s: A.advance(
      cfg, A.store(s, snapshot_params=None, snapshot_base_state=None, base_state=None),
      measured(0.6), A.observe(cfg, s, measured(0.6), False))
  ended = advance(s)
  assert int(ended.trial) == 1 and int(ended.phase_step) == 0 and bool(ended.restored)
  assert float(ended.trial_scores[0]) > 0  # The probe's forecast, recorded.
  s = s._replace(phase_step=jnp.int32(1))
  quiet = advance(s)
  assert int(quiet.trial) == 0 and int(quiet.phase_step) == 2 and not bool(quiet.restored)
  assert int(quiet.count) == int(ended.count) == 1


@pytest.mark.parametrize("prefer_larger,want", [(0.0, 0.02), (0.25, 0.1)])
def test_budget_may_prefer_the_largest_lr_within_a_tolerance_of_the_best(prefer_larger, want):
  plan = autolrs_jax.BudgetPlan(prefer_larger=prefer_larger)
  cfg = config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)
  s = controller(cfg, phase=jnp.int32(A.PROBE), trial=jnp.int32(4),
                 trial_lrs=jnp.asarray([0.01, 0.02, 0.1, 0.5, 0.0], jnp.float32),
                 trial_scores=jnp.asarray([0.9, 0.8, 0.95, 0.85, 0.0], jnp.float32),
                 trial_diverged=jnp.asarray([False, False, False, True, False]))
  # 0.02 is best; 0.1 is within 25% of it; 0.5 too, but it diverged.
  index, _ = cfg.strategies.choose(A.trials_of(s), s.stage)
  assert float(s.trial_lrs[index]) == pytest.approx(want)



def ladder_config(**plan):
  plan = autolrs_jax.BudgetPlan(**plan)
  return config(stages=_stages.budget_schedule(1000, plan, 0, 2, None), budget=plan)


def exploited_lr(cfg, lrs, scores, diverged=None, stage=0):
  """The LR a stage exploits after probes at ``lrs`` scored ``scores``, the last
  one ending now."""
  n = len(lrs)
  diverged = [False] * n if diverged is None else diverged
  pad = lambda xs, dtype: jnp.asarray(list(xs) + [0] * (cfg.num_trials - len(xs)), dtype)
  s = controller(cfg, phase=jnp.int32(A.PROBE), trial=jnp.int32(n - 1), stage=jnp.int32(stage),
                 trial_lrs=pad(lrs, jnp.float32), trial_scores=pad(scores[:-1], jnp.float32),
                 trial_diverged=pad(diverged[:-1], bool))
  ends = signals(cfg, probe_ends=jnp.asarray(True), probe_score=jnp.float32(scores[-1]),
                 probe_diverged=jnp.asarray(diverged[-1]))
  return float(A.start_exploit(cfg, s, ends).exploit_lr)  # Once warmed up.


def test_the_ladder_exploits_the_vertex_of_the_parabola_through_its_best_rungs():
  cfg = ladder_config()
  lrs = 1.0 / np.sqrt(10.0) ** np.arange(4)  # 1, 0.316, 0.1, 0.0316.
  scores = 2.0 + 0.3 * (np.log(lrs) - np.log(0.06)) ** 2  # A parabola in log-LR.
  assert exploited_lr(cfg, lrs, scores) == pytest.approx(0.06, rel=1e-4)
  # Uneven rungs: the vertex lies between the best rung and the flatter side.
  lr = exploited_lr(cfg, [1.0, 0.3, 0.1, 0.03], [5.0, 2.0, 1.0, 1.9])
  assert 0.03 < lr < 0.1 and lr != pytest.approx(0.1)


def test_the_vertex_never_raises_the_ladders_choice():
  cfg = ladder_config()
  # The vertex lies above 0.1, the best rung (0.3 scores 20% worse than it).
  assert exploited_lr(cfg, [1.0, 0.3, 0.1, 0.03], [5.0, 1.2, 1.0, 2.0]) == pytest.approx(0.1)


@pytest.mark.parametrize("lrs,scores,diverged,want", [
    ([1.0, 0.3, 0.1], [3.0, 1.0, 2.0], [True, False, False], 0.3),  # Above the best diverged.
    ([1.0, 0.3], [3.0, 1.0], [False, False], 0.3),  # The best is the last rung.
    ([1.0, 0.3, 0.1], [1.0, 2.0, 3.0], [False, False, False], 1.0),  # The best is max_lr.
])
def test_the_ladder_keeps_its_best_rung_without_two_neighbours_that_held(lrs, scores, diverged,
                                                                         want):
  cfg = ladder_config(prefer_larger=0.0)
  assert exploited_lr(cfg, lrs, scores, diverged) == pytest.approx(want)


def test_the_vertex_is_the_ladders_only_and_can_be_switched_off():
  lrs, scores = [1.0, 0.3, 0.1, 0.03], [5.0, 2.0, 1.0, 1.9]
  off = ladder_config(ladder_vertex=False, prefer_larger=0.0)
  assert exploited_lr(off, lrs, scores) == pytest.approx(0.1)
  on = ladder_config(prefer_larger=0.0)  # A later stage (BO) exploits its best trial.
  assert exploited_lr(on, lrs, scores, stage=1) == pytest.approx(0.1)
