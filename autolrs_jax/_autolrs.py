"""AutoLRS: a learning-rate schedule searched on the fly by Bayesian optimisation.

Training is split into stages. Each stage starts from a snapshot of the
parameters and of the base optimizer's state, runs ``num_trials`` short probes
of ``tau_probe`` steps, each at a learning rate proposed by a Gaussian process
over log learning rate and each ending by restoring the snapshot, then trains
``tau`` steps at the learning rate whose forecast loss after ``tau`` steps was
lowest. ``tau`` and ``tau_probe`` double after every stage until ``tau`` would
pass ``tau_max``.

All of it runs inside one compiled ``update``, a state machine whose state is
a pytree of fixed-shape arrays. It reads as the paper's algorithm: where a
budget's plan answers otherwise (how a stage opens and proposes its probes,
scores them, chooses its LR, anneals), it asks the strategies that the
factory chose once (:mod:`autolrs_jax._strategies`). Each call

1. *measures* the step (:class:`Measured`: the snapshot at a stage's first
   step, the base update's finiteness and norm);
2. *observes* it (:func:`observe`: the probe's loss record, divergence, the
   ends of phases) into :class:`Signals`;
3. *decides* the controller's next position (:func:`advance`): most steps end
   nothing and only count (:func:`continue_phase`); at the others the ended
   probe is scored (:func:`score_ended_probe`) and the event's transition
   (:func:`choose_event`, :data:`TRANSITIONS`) runs under ``lax.switch``, so
   the BO step runs only when a probe ends;
4. *acts* on the parameters (:func:`act`): the scaled base update, a zero
   update for a skipped step, or ``snapshot - params`` for a restore (the
   base optimizer's state is restored at the next call's input:
   :attr:`AutoLRSState.live_base_state`).
"""

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from autolrs_jax import _budget
from autolrs_jax import _common
from autolrs_jax import _stages
from autolrs_jax import _strategies
from autolrs_jax import bo
from autolrs_jax import forecast as forecast_lib

# Phases of the controller (values of ``Controller.phase``).
WARMUP = 0
PROBE = 1
EXPLOIT = 2
ANNEAL = 3  # With a budget only: the final decay of the LR to zero.
PHASE_NAMES = ("warmup", "probe", "exploit", "anneal")

# Events that end a step: the indices of ``TRANSITIONS``.
CONTINUE, NEXT_TRIAL, START_EXPLOIT, START_STAGE, RETRY_EXPLOIT, START_ANNEAL = range(6)

# An exploitation blows up when its smoothed loss rises above the stage's
# starting loss by this factor. An LR that looked good in a short probe can
# ruin the model when held, and a classifier's loss on its way to chance
# rises well above its start without tripling (the factor was 3, as
# ``forecast.exploded`` judges probes). Chosen on the tuning tasks (MNIST-1D,
# digits).
_EXPLODE_FACTOR = 1.5
_EXPLOIT_EMA = 0.9  # Smoothing of the exploitation loss (about ten steps).
# An exploitation is judged only after this many steps, its average's
# horizon, so that a few noisy minibatches cannot end it.
_EXPLOIT_GRACE_STEPS = 10

# Bound on forecasts handed to the GP, so that its standardisation stays finite.
_MAX_SCORE = 1e6


class Controller(NamedTuple):
  """The controller's position, what the update's logic reads and writes.

  Shapes never depend on the stage. The optimizer state stores it packed
  (:class:`AutoLRSState`), beside the params-sized trees.
  """

  count: _common.Counter  # update calls so far.
  stage: _common.Counter  # index of the current stage, from 0.
  phase: _common.Counter  # WARMUP, PROBE, EXPLOIT or ANNEAL.
  trial: _common.Counter  # running probe's index = BO observations so far.
  phase_step: _common.Counter  # steps done in the current probe/exploit.
  learning_rate: jax.Array  # float32: LR the next update applies.
  wants_validation: _common.Flag  # next update scores a validation loss.
  trial_lrs: jax.Array  # float32[num_trials]: LRs probed in this stage.
  # float32[num_trials]: their scores (the paper's: the forecast loss after tau steps).
  trial_scores: jax.Array
  trial_diverged: jax.Array  # bool[num_trials]: probe saw a NaN/Inf loss.
  probe_losses: jax.Array  # float32[max probe length]: current probe's losses.
  # loss at the stage's snapshot, the mean of its probes' first losses.
  stage_loss: _common.Real
  exploit_loss: _common.Real  # moving average of this exploitation's losses.
  exploit_best: _common.Real  # the lowest exploit_loss of this exploitation so far.
  # the last update returned to the stage's snapshot, undoing every call
  # of the stage so far (read by autolrs_jax.ScheduleRecorder).
  restored: _common.Flag
  # the summed norms of the running probe's updates, a bound on its
  # drift from the snapshot.
  probe_path: _common.Real
  # global L2 norm of the stage's snapshot (0 before the first stage).
  snapshot_norm: _common.Real
  # later stages probe only below it: the smallest LR whose
  # exploitation blew up (inf until one does).
  lr_ceiling: _common.Real
  # the LR of the running exploitation once warmed up (the
  # learning_rate stays below it while a budget's exploitation warms up).
  exploit_lr: _common.Real
  # the base optimizer goes on from snapshot_base_state, not base_state
  # (the last update restored the snapshot, or its base state is unusable).
  resume_from_snapshot: _common.Flag
  # uint32: raw data of the run's PRNG key, from ``seed`` (``jax.random.key_data``:
  # a typed key cannot be serialised by msgpack); call ``count`` draws from
  # ``fold_in(key, count)`` (see start_stage).
  key: jax.Array
  # max_probe_drift ends this run's probes (BudgetPlan.drift_bound).
  drift_bounded: _common.Flag
  # how many of the following calls are known to end nothing, so that
  # they may run as ``update(..., quiet=True)`` (see known_quiet_calls).
  quiet_calls: _common.Counter
  # the running probe's highest minibatch loss, or median of the last
  # three (judged by probe_spike; see BudgetPlan.spike_window).
  probe_peak: _common.Real
  # the last call's minibatch loss, and the one before it.
  last_loss: _common.Real
  loss_before_last: _common.Real
  # the running probe's summed absolute changes of its minibatch loss from
  # one call to the next (its noise, for BudgetPlan.spike_noise).
  probe_jitter: _common.Real
  # the mean square of the first losses of the stage's probes (beside
  # stage_loss, their mean: their spread, for BudgetPlan.spike_noise_from).
  stage_loss_square: _common.Real


@_common.packs_scalars(Controller)
class AutoLRSState(NamedTuple):
  """State of :func:`autolrs`: the :class:`Controller`, packed, and the trees.

  The controller's scalars are packed into one array per dtype (a jitted step
  pays for each leaf of its state at every call); each of its fields reads as
  an attribute (``state.phase``, ``state.learning_rate``), and
  :attr:`controller` unpacks them all.
  """

  # The controller's Counter, Real and Flag fields, one array each.
  counters: jax.Array  # int32[6]
  reals: jax.Array  # float32[12]
  flags: jax.Array  # bool[4]
  # float32: LR the next update applies, a field of its own, so that
  # ``optax.tree.get(opt_state, "learning_rate")`` finds it.
  learning_rate: jax.Array
  trial_lrs: jax.Array  # float32[num_trials]: LRs probed in this stage.
  # float32[num_trials]: their scores (the paper's: the forecast loss after tau steps).
  trial_scores: jax.Array
  trial_diverged: jax.Array  # bool[num_trials]: probe saw a NaN/Inf loss.
  probe_losses: jax.Array  # float32[max probe length]: current probe's losses.
  key: jax.Array  # uint32[2]: see Controller.key.
  snapshot_params: optax.Params  # Parameters at the start of the stage.
  snapshot_base_state: optax.OptState  # Base optimizer state at stage start.
  # The base optimizer's state after the last update; see live_base_state.
  base_state: optax.OptState

  @property
  def controller(self) -> Controller:
    """The controller, unpacked."""
    return _common.unpack(self, Controller)

  @property
  def live_base_state(self) -> optax.OptState:
    """The state the base optimizer's next update starts from.

    A restore does not write the snapshot's base state back into
    ``base_state``: it sets ``resume_from_snapshot``, and the next update
    reads the snapshot instead. A select at the output would read and write
    the whole base state at every step; at the input it is fused into the
    base optimizer's own pass.
    """
    return optax.tree.where(self.resume_from_snapshot, self.snapshot_base_state,
                            self.base_state)


def store(controller: Controller, *, snapshot_params: optax.Params,
          snapshot_base_state: optax.OptState, base_state: optax.OptState) -> AutoLRSState:
  """The optimizer state holding ``controller`` (packed) and the trees."""
  return _common.pack(AutoLRSState, controller, snapshot_params=snapshot_params,
                      snapshot_base_state=snapshot_base_state, base_state=base_state)


class AutoLRSConfig(NamedTuple):
  """The static hyper-parameters, as :func:`autolrs` validated them, and the
  strategies of their mode (:func:`configure`)."""

  min_lr: float
  max_lr: float
  warmup_steps: int
  warmup_lr: float
  acquisition: str
  kappa: float
  grid_size: int
  max_probe_drift: float | None
  axis_name: str | None
  seed: int
  stages: _stages.StageSchedule
  # How stages search, score and choose: the paper's, or a budget plan's.
  strategies: _strategies.Strategies
  # A probe's path may reach this many snapshot norms per call (None:
  # max_probe_drift for a whole probe).
  drift_per_call: float | None = None
  drift_bound: str = "always"  # Whose probes the bound ends (BudgetPlan.drift_bound).
  # A probe the drift bound does not judge diverged if its loss passed this
  # multiple of the stage's starting loss, judged at its end
  # (BudgetPlan.probe_spike); None: off.
  probe_spike: float | None = None
  spike_window: int = 1  # The minibatch losses whose median it judges (BudgetPlan).
  spike_noise: float | None = None  # Its rise in units of the probe's noise (BudgetPlan).
  spike_noise_from: str = "probe"  # Where that noise is measured (BudgetPlan).
  exploit_guard: float | None = None  # BudgetPlan.exploit_guard; None: off.
  # Steps over which an exploitation from the snapshot warms up (0: none).
  exploit_warmup_steps: int = 0

  @property
  def space(self) -> _strategies.LRSpace:
    return _strategies.LRSpace(self.min_lr, self.max_lr, self.grid_size)

  @property
  def num_trials(self) -> int:
    """Size of the trial buffers (:attr:`autolrs_jax._strategies.Strategies.slots`)."""
    return self.strategies.slots


def configure(*, min_lr: float, max_lr: float, acquisition: str, kappa: float, grid_size: int,
              stages: _stages.StageSchedule, budget: _stages.BudgetPlan | None = None,
              drift_per_call: float | None = None, **fields) -> AutoLRSConfig:
  """The config of validated hyper-parameters, its strategies chosen: the
  paper's without a ``budget`` plan, the plan's with one (whose drift bound
  replaces ``drift_per_call``)."""
  space = _strategies.LRSpace(min_lr, max_lr, grid_size)
  common = dict(min_lr=min_lr, max_lr=max_lr, acquisition=acquisition, kappa=kappa,
                grid_size=grid_size, stages=stages, **fields)
  if budget is None:
    return AutoLRSConfig(strategies=_strategies.paper(space, stages, acquisition, kappa),
                         drift_per_call=drift_per_call, **common)
  return AutoLRSConfig(
      strategies=_strategies.budget(space, stages, budget, acquisition, kappa,
                                    fields["warmup_steps"]),
      drift_per_call=budget.drift_per_call, drift_bound=budget.drift_bound,
      probe_spike=budget.probe_spike, spike_window=budget.spike_window,
      spike_noise=budget.spike_noise, spike_noise_from=budget.spike_noise_from,
      exploit_guard=budget.exploit_guard,
      exploit_warmup_steps=int(round(budget.exploit_warmup * stages.total_steps)), **common)


class Signals(NamedTuple):
  """What one update call observed, before anything is decided."""

  losses: jax.Array  # float32[max probe length]: the probe's losses, this step's recorded.
  observed: jax.Array  # bool[max probe length]: which of them score the probe.
  diverged_now: jax.Array  # bool: this step's loss or update is unusable.
  stage_starts: jax.Array  # bool: this is the stage's first step (snapshot taken).
  probe_ends: jax.Array  # bool: the probe ends (its last step, or diverged).
  exploit_ends: jax.Array  # bool: the exploitation's last step.
  exploit_blows_up: jax.Array  # bool: the exploitation's loss exploded.
  warmup_ends: jax.Array  # bool: the warm-up's last step.
  skip: jax.Array  # bool: a non-finite step outside probes, not applied.
  stage_loss: jax.Array  # float32: the stage's starting loss, updated.
  exploit_loss: jax.Array  # float32: the exploitation's moving average, updated.
  exploit_best: jax.Array  # float32: its lowest so far, updated.
  probe_score: jax.Array  # float32: the ended probe's score (0 unless probe_ends).
  probe_diverged: jax.Array  # bool: the ended probe diverged or exploded.
  keeps_probe: jax.Array  # bool: the ended probe won; training goes on from it.
  probe_path: jax.Array  # float32: the probe's path length, this step's update included.
  # float32: the probe's highest minibatch loss (or median of three), this step's included.
  probe_peak: jax.Array
  last_loss: jax.Array  # float32: this step's minibatch loss.
  probe_jitter: jax.Array  # float32: the probe's summed loss changes, this step's included.
  stage_loss_square: jax.Array  # float32: the mean square of the stage's first losses, updated.

  @property
  def restores(self) -> jax.Array:
    """Whether this step returns to the stage's snapshot."""
    return (self.probe_ends & ~self.keeps_probe) | self.exploit_blows_up

  @property
  def something_ends(self) -> jax.Array:
    """Whether a phase ends at this step: any event but ``CONTINUE``."""
    return self.probe_ends | self.exploit_ends | self.warmup_ends | self.exploit_blows_up


class Measured(NamedTuple):
  """What an update call measured, the inputs of :func:`observe`."""

  value: jax.Array  # float32: the step's loss (averaged over ``axis_name``).
  score: jax.Array  # float32: what scores a probe's step (validation or training loss).
  step_finite: jax.Array  # bool: the scaled base update is finite.
  step_length: jax.Array  # float32: its global L2 norm.
  snapshot_norm: jax.Array  # float32: global L2 norm of the stage's snapshot.
  stage_starts: jax.Array  # bool: the stage starts here (the snapshot was taken).


# --- Initial state -----------------------------------------------------------


def init_controller(cfg: AutoLRSConfig, drift_bounded=True) -> Controller:
  """The controller at step 0."""
  key, first = jax.random.split(jax.random.key(cfg.seed))
  first_lr = cfg.strategies.initial_lr(first)
  lr = (cfg.warmup_lr / cfg.warmup_steps if cfg.warmup_steps
        else first_lr * probe_factor(cfg, jnp.zeros([], jnp.int32), 0))
  return Controller(
      count=jnp.zeros([], jnp.int32),
      stage=jnp.zeros([], jnp.int32),
      phase=jnp.asarray(WARMUP if cfg.warmup_steps else PROBE, jnp.int32),
      trial=jnp.zeros([], jnp.int32),
      phase_step=jnp.zeros([], jnp.int32),
      learning_rate=jnp.asarray(lr, jnp.float32),
      wants_validation=jnp.zeros([], bool),
      trial_lrs=jnp.zeros([cfg.num_trials], jnp.float32).at[0].set(first_lr),
      trial_scores=jnp.zeros([cfg.num_trials], jnp.float32),
      trial_diverged=jnp.zeros([cfg.num_trials], bool),
      probe_losses=jnp.zeros([cfg.stages.max_tau_probe], jnp.float32),
      stage_loss=jnp.zeros([], jnp.float32),
      exploit_loss=jnp.zeros([], jnp.float32),
      exploit_best=jnp.zeros([], jnp.float32),
      restored=jnp.zeros([], bool),
      probe_path=jnp.zeros([], jnp.float32),
      probe_peak=jnp.zeros([], jnp.float32),
      last_loss=jnp.zeros([], jnp.float32),
      loss_before_last=jnp.zeros([], jnp.float32),
      probe_jitter=jnp.zeros([], jnp.float32),
      stage_loss_square=jnp.zeros([], jnp.float32),
      snapshot_norm=jnp.zeros([], jnp.float32),
      lr_ceiling=jnp.asarray(jnp.inf, jnp.float32),
      exploit_lr=jnp.zeros([], jnp.float32),
      resume_from_snapshot=jnp.zeros([], bool),
      key=jax.random.key_data(key),
      drift_bounded=jnp.asarray(drift_bounded, bool),
      quiet_calls=jnp.asarray(max(cfg.warmup_steps - 1, 0), jnp.int32),
  )


# --- Observe -----------------------------------------------------------------


def take_snapshot(state: AutoLRSState, params: optax.Params):
  """``(stage_starts, snapshot_params, snapshot_base_state, snapshot_norm)``.

  The snapshot is taken at a stage's first step: its first probe's first.
  Under ``lax.cond``, so that the other steps do no params-sized work: a
  ``jnp.where`` over a params-sized tree would read and write all of it at
  every step, where the common case takes the conditional's first branch,
  which forwards its operands, and XLA aliases them rather than copying
  (jax-ml/jax#16661).
  """
  stage_starts = (state.phase == PROBE) & (state.trial == 0) & (state.phase_step == 0)
  # Copies: a snapshot aliasing the live params or base state, which this step
  # overwrites, would make XLA copy them at every step.
  copy = lambda tree: jax.tree.map(jnp.copy, tree)
  snapshot_params, snapshot_base_state, snapshot_norm = jax.lax.cond(
      stage_starts, lambda: (copy(params), copy(state.live_base_state), _common.norm(params)),
      lambda: (state.snapshot_params, state.snapshot_base_state, state.snapshot_norm))
  return stage_starts, snapshot_params, snapshot_base_state, snapshot_norm


def record_probe_loss(cfg: AutoLRSConfig, state: Controller, score: jax.Array,
                      validating: bool) -> tuple[jax.Array, jax.Array]:
  """The probe's losses with this step's score, and which of them count.

  In validation stages only the steps that scored a validation loss count.
  """
  tau_probe, _ = cfg.stages.lengths(state.stage)
  steps = jnp.arange(state.probe_losses.shape[0])
  in_probe = state.phase == PROBE
  losses = jnp.where(in_probe & (steps == state.phase_step), score, state.probe_losses)
  observed = steps <= state.phase_step
  if validating:
    interval = cfg.stages.validation_interval(tau_probe)
    on_point = steps % interval == interval - 1
    observed &= ~cfg.stages.uses_validation(state.stage) | on_point
  return losses, observed


def observe(cfg: AutoLRSConfig, state: Controller, measured: Measured,
            validating: bool) -> Signals:
  """Everything this step tells the controller; nothing is decided yet.

  A step that would put NaN/Inf in the params, or carry them far from the
  snapshot, counts as diverged: ``p + (s - p)`` only restores ``s`` to within
  rounding of ``|p|``, and not at all once ``p`` is NaN. How far a probe has
  gone is bounded by its path length, the sum of its steps' norms (triangle
  inequality), which costs no pass over the params: a probe ends once its
  path would exceed ``max_probe_drift`` times the snapshot's norm. A probe
  that bound does not end keeps its highest loss (``probe_peak``), which
  :func:`spiked` judges at its end.

  An ended probe is not scored here (:func:`score_ended_probe` does).
  """
  value, score, step_finite, step_length, snapshot_norm, stage_starts = measured
  tau_probe, _ = cfg.stages.lengths(state.stage)
  losses, observed = record_probe_loss(cfg, state, score, validating)
  in_probe = state.phase == PROBE
  in_exploit = state.phase == EXPLOIT
  # Only a probe is restored: its drift from the snapshot matters only there.
  path = jnp.where(state.phase_step == 0, 0.0, state.probe_path) + step_length
  step_ok = step_finite
  if cfg.max_probe_drift is not None:
    bound = _budget.drift_limit(cfg.drift_per_call, cfg.max_probe_drift, tau_probe)
    step_ok &= ~in_probe | ~state.drift_bounded | (path <= bound * snapshot_norm)
  loss_ok = jnp.isfinite(value) & jnp.isfinite(score)
  diverged_now = ~loss_ok | ~step_ok
  stage_loss = starting_loss(state, state.stage_loss, value, stage_starts)
  stage_loss_square = starting_loss(state, state.stage_loss_square, value**2, stage_starts)
  judged = value
  if cfg.spike_window == 3:  # From the probe's third call, when three are in.
    judged = jnp.where(state.phase_step >= 2,
                       median_of_three(state.loss_before_last, state.last_loss, value), -jnp.inf)
  peak = jnp.where(state.phase_step == 0, judged, jnp.maximum(state.probe_peak, judged))
  jitter = jnp.where(state.phase_step == 0, 0.0,
                     state.probe_jitter + jnp.abs(value - state.last_loss))
  exploit_loss = jnp.where(
      ~in_exploit | ~loss_ok, state.exploit_loss,
      jnp.where(state.phase_step == 0, value,
                _EXPLOIT_EMA * state.exploit_loss + (1 - _EXPLOIT_EMA) * value))
  exploit_best = jnp.where(
      ~in_exploit | ~loss_ok, state.exploit_best,
      jnp.where(state.phase_step == 0, exploit_loss, jnp.minimum(state.exploit_best, exploit_loss)))
  graced = in_exploit & (state.phase_step >= _EXPLOIT_GRACE_STEPS)
  exploit_blows_up = graced & rose_above(exploit_loss, stage_loss, _EXPLODE_FACTOR)
  if cfg.exploit_guard is not None:
    exploit_blows_up |= graced & _budget.lost_progress(
        cfg.exploit_guard, stage_loss, exploit_best, exploit_loss)
  exploit_done = in_exploit & cfg.stages.exploitation_ends(state.stage, state.count,
                                                           state.phase_step)
  if cfg.stages.budgeted:
    # A budget's stage ends at its planned call, blown up or not: retried
    # there, its exploitation would run past the stage's end and never end.
    exploit_blows_up &= ~exploit_done
  else:
    # The first stage's exploitation, from the initial parameters, that ends
    # no lower than it started learned nothing (a model collapsed to chance
    # stays at its starting loss): it is retried lower, as a blown-up one,
    # while its LR is above min_lr. Later stages may rightly stall.
    exploit_blows_up |= (exploit_done & (state.stage == 0) & (exploit_loss >= stage_loss)
                         & (state.learning_rate > cfg.min_lr * (1 + 1e-6)))
  probe_ends = in_probe & ((state.phase_step == tau_probe - 1) | diverged_now)
  return Signals(
      losses=losses,
      observed=observed,
      diverged_now=diverged_now,
      stage_starts=stage_starts,
      probe_ends=probe_ends,
      exploit_ends=exploit_done & ~exploit_blows_up,
      exploit_blows_up=exploit_blows_up,
      warmup_ends=(state.phase == WARMUP) & (state.count == cfg.warmup_steps - 1),
      skip=~in_probe & ~(step_finite & loss_ok),
      stage_loss=stage_loss,
      exploit_loss=exploit_loss,
      exploit_best=exploit_best,
      probe_score=jnp.zeros([], jnp.float32),
      probe_diverged=jnp.zeros([], bool),
      keeps_probe=jnp.zeros([], bool),
      probe_path=path,
      probe_peak=jnp.where(in_probe, peak, state.probe_peak),
      last_loss=value,
      probe_jitter=jnp.where(in_probe, jitter, state.probe_jitter),
      stage_loss_square=stage_loss_square,
  )


def median_of_three(a, b, c) -> jax.Array:
  """The median of three values, elementwise, by comparisons alone."""
  return jnp.maximum(jnp.minimum(a, b), jnp.minimum(jnp.maximum(a, b), c))


def score_ended_probe(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Signals:
  """``signals`` with the ended probe's score, divergence, and whether it is kept.

  The forecast (a robust fit) and the choice it feeds run only when a probe
  ends, not at the other events.
  """
  def end_probe(state, signals):
    score, diverged = score_probe(cfg, state, signals.losses, signals.observed,
                                  signals.diverged_now | spiked(cfg, state, signals))
    scored = signals._replace(probe_score=score, probe_diverged=diverged)
    return score, diverged, keeps_probe(cfg, state, scored)
  probe_score, probe_diverged, keeps = jax.lax.cond(
      signals.probe_ends, end_probe,
      lambda *_: (jnp.zeros([], jnp.float32), jnp.zeros([], bool), jnp.zeros([], bool)),
      state, signals)
  return signals._replace(probe_score=probe_score, probe_diverged=probe_diverged,
                          keeps_probe=keeps)


def spiked(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> jax.Array | bool:
  """Whether the probe's loss rose above ``probe_spike`` times the stage's
  starting loss, where the drift bound does not judge it (a step of fixed
  size, Adam's): the mark of an LR at or past the edge of stability, whose
  model can sit at chance by the probe's end and score as well as the rungs
  below it that learn, or learn fastest in the probe and end higher when
  held. The probe runs to its end all the same, so that the next probes see
  the minibatches they would without the rule."""
  if cfg.probe_spike is None:
    return False
  at_least = None
  if cfg.spike_noise is not None:
    if cfg.spike_noise_from == "start":  # The spread of the stage's first losses.
      noise = jnp.sqrt(jnp.maximum(signals.stage_loss_square - signals.stage_loss**2, 0.0))
    else:  # The mean change per call since the probe's first.
      noise = signals.probe_jitter / jnp.maximum(state.phase_step, 1).astype(jnp.float32)
    at_least = cfg.spike_noise * noise
  return ~state.drift_bounded & rose_above(signals.probe_peak, signals.stage_loss,
                                           cfg.probe_spike, at_least)


def rose_above(loss, start, factor: float, at_least=None) -> jax.Array:
  """Whether ``loss`` rose above ``factor`` times ``start``, measured from
  ``start`` by its magnitude, so that a negative loss is judged alike (and,
  given ``at_least``, by at least that much)."""
  rise = (factor - 1.0) * jnp.abs(start)
  if at_least is not None:
    rise = jnp.maximum(rise, at_least)
  return loss - start > rise


def starting_loss(state: Controller, mean, value, stage_starts) -> jax.Array:
  """``mean`` of the stage's first losses (or of a function of them, ``value``
  this step's) updated: the stage's starting loss, the reference of a
  blown-up exploitation, and the mean square that gives their spread.

  It is the mean of the first losses of all the stage's probes, each at the
  snapshot (the paper's reference takes the stage's first loss): a single
  minibatch loss is too noisy a reference once losses are small.
  """
  finite = jnp.isfinite(value)
  probe_starts = (state.phase == PROBE) & (state.phase_step == 0) & finite
  n = state.trial.astype(jnp.float32)
  updated = jnp.where(stage_starts, value, (n * mean + value) / (n + 1.0))
  return jnp.where(probe_starts, updated, mean)


def finished_trials(state: Controller) -> jax.Array:
  """Which trial slots hold an ended probe of the stage."""
  return jnp.arange(state.trial_scores.shape[0]) < state.trial


def trials_of(state: Controller) -> _strategies.Trials:
  """The stage's trials, as the strategies read them."""
  return _strategies.Trials(state.trial_lrs, state.trial_scores, state.trial_diverged,
                            finished_trials(state))


def chosen_lr(cfg: AutoLRSConfig, state: Controller) -> jax.Array:
  """The LR the stage exploits: the trial's with the lowest score (diverged
  ones score worst), or as the budget's plan chooses and refines it (the
  largest LR near the best, the ladder's vertex)."""
  return cfg.strategies.choose(trials_of(state), state.stage)[1]


def keeps_probe(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> jax.Array:
  """Whether the stage's last probe ends as the start of its exploitation.

  It does, with a budget's plan that keeps it, when it did not diverge and
  its LR is the stage's choice (or, with ``keep_lower_probe``, below it):
  training goes on from it instead of restarting at the snapshot, so its
  steps count. ``signals`` hold the ended probe's score.
  """
  strategies = cfg.strategies
  if not (strategies.keeps_winning_probe or strategies.keeps_lower_probe):
    return jnp.zeros([], bool)
  probe, chosen = state.trial_lrs[state.trial], chosen_lr(cfg, record_trial(cfg, state, signals))
  kept = (probe == chosen) if strategies.keeps_winning_probe else jnp.zeros([], bool)
  if strategies.keeps_lower_probe is not None:
    kept |= probe < chosen
  return search_ends(cfg, state, signals) & ~signals.probe_diverged & kept


# --- Act ---------------------------------------------------------------------


def act(*, restores, skip, base_updates, learning_rate, params, snapshot_params):
  """The update this step applies: the base update times the LR, or what a
  restore or a skip needs.

  A restore returns ``snapshot - params``, a skip (a non-finite step outside
  probes) a zero update. The selects fuse into the caller's
  ``apply_updates``; the base state is not selected here (see
  :attr:`AutoLRSState.live_base_state`).
  """
  scaled = _common.scale_updates(base_updates, learning_rate)
  restore = jax.tree.map(lambda s, p: s - p, snapshot_params, params)
  return optax.tree.where(restores, restore, _common.zeros_unless(~skip, scaled))


# --- Decide ------------------------------------------------------------------


def choose_event(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> jax.Array:
  """The transition that ends this step (an index of :data:`TRANSITIONS`)."""
  last_trial = search_ends(cfg, state, signals)
  after_exploit = jnp.where(cfg.stages.anneals_after(state.stage), START_ANNEAL, START_STAGE)
  return jnp.where(
      signals.probe_ends,
      jnp.where(last_trial, START_EXPLOIT, NEXT_TRIAL),
      jnp.where(signals.exploit_ends, after_exploit,
                jnp.where(signals.warmup_ends, START_STAGE,
                          jnp.where(signals.exploit_blows_up, RETRY_EXPLOIT, CONTINUE))),
  )


def search_ends(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> jax.Array:
  """Whether the probe that ends at this step (scored in ``signals``) is the
  stage's last: the stage's trials are done, or a budget's ladder stops (it
  is full, or it passed its best LR)."""
  return cfg.strategies.search_ends(trials_of(state), state.stage, state.trial,
                                    signals.probe_score, signals.probe_diverged, state.count + 1)


def score_probe(cfg: AutoLRSConfig, state: Controller, losses: jax.Array,
                observed: jax.Array, diverged_now: jax.Array):
  """``(score, diverged)`` of the probe that ends at this step.

  The score is the forecast loss after the stage's ``tau`` steps (with a
  budget, the plan's rule: :data:`autolrs_jax._budget.SCORES`, and its
  :attr:`~autolrs_jax._strategies.Strategies.edge_penalty`), finite,
  and pessimistic (the worst loss seen in the stage) when the probe diverged
  or its loss exploded.
  """
  tau_probe, tau = cfg.stages.lengths(state.stage)
  value, diverged = cfg.strategies.score(losses, observed, tau_probe, tau)
  if cfg.strategies.edge_penalty is not None:
    value += cfg.strategies.edge_penalty(trials_of(state), state.stage, state.trial, losses,
                                         observed)
  diverged |= diverged_now | forecast_lib.exploded(losses, observed)
  previous = finished_trials(state)
  seen = jnp.concatenate([
      jnp.where(observed & jnp.isfinite(losses), losses, -jnp.inf),
      jnp.where(previous, state.trial_scores, -jnp.inf),
  ])
  worst = jnp.max(seen)
  worst = jnp.where(jnp.isfinite(worst), worst, _MAX_SCORE)
  value = jnp.where(diverged, worst, value)
  return jnp.clip(value, -_MAX_SCORE, _MAX_SCORE), diverged


def probe_factor(cfg: AutoLRSConfig, stage, phase_step) -> jax.Array | float:
  """The fraction of its trial's LR that probe step ``phase_step`` applies: 1
  unless the mode shapes its probes (a budget's warm-up or cooldown)."""
  shape = cfg.strategies.probe_factor
  return 1.0 if shape is None else shape(stage, phase_step)


def probe_lr(cfg: AutoLRSConfig, state: Controller, phase_step) -> jax.Array:
  """The LR of probe step ``phase_step``: its trial's, shaped by the plan's
  warm-up or cooldown."""
  return state.trial_lrs[state.trial] * probe_factor(cfg, state.stage, phase_step)


def record_trial(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """Stores the ended probe's score as the stage's next BO observation."""
  del cfg
  i = state.trial
  return state._replace(
      trial=i + 1,
      trial_scores=state.trial_scores.at[i].set(signals.probe_score),
      trial_diverged=state.trial_diverged.at[i].set(signals.probe_diverged),
  )


# --- Transitions: (cfg, controller, signals) -> controller -------------------


def continue_phase(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """Nothing ends: one more step of the phase (the warm-up's LR ramps up)."""
  next_count = state.count + 2  # The step after the one being taken.
  warm_lr = cfg.warmup_lr * next_count.astype(jnp.float32) / max(cfg.warmup_steps, 1)
  lr = jnp.where(state.phase == WARMUP, warm_lr, state.learning_rate)
  if cfg.strategies.probe_factor is not None:  # Else a probe keeps its trial's LR.
    lr = jnp.where(state.phase == PROBE, probe_lr(cfg, state, state.phase_step + 1), lr)
  if cfg.strategies.anneal_factor is not None:
    lr = jnp.where(state.phase == ANNEAL, annealed_lr(cfg, state), lr)
  if cfg.exploit_warmup_steps:
    warming = (state.phase == EXPLOIT) & (state.learning_rate < state.exploit_lr)
    lr = jnp.where(warming, warming_lr(cfg, state.exploit_lr, state.phase_step + 1), lr)
  return state._replace(
      phase_step=state.phase_step + 1,
      learning_rate=lr.astype(jnp.float32),
      probe_losses=signals.losses,
  )


def annealed_lr(cfg: AutoLRSConfig, state: Controller) -> jax.Array:
  """The anneal's LR for the next call: from its first call's LR to 0 in the
  plan's shape."""
  return state.learning_rate * cfg.strategies.anneal_factor(state.count)


def start_anneal(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """The last stage's exploitation ended: anneal its LR to zero."""
  del cfg, signals
  return state._replace(phase=jnp.asarray(ANNEAL, jnp.int32),
                        phase_step=jnp.zeros_like(state.phase_step))


def lr_ceiling_unit(cfg: AutoLRSConfig, state: Controller) -> jax.Array:
  """The stage's probes stay below this unit LR: every LR that diverged in the
  stage rules out the larger ones, and ``lr_ceiling`` those of later stages."""
  x = cfg.space.to_unit(state.trial_lrs)
  ceiling = jnp.min(jnp.where(finished_trials(state) & state.trial_diverged, x, jnp.inf))
  return jnp.minimum(ceiling, cfg.space.to_unit(state.lr_ceiling))


def next_trial(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """A probe ended and another follows: record it, propose the next LR.

  An LR that diverged rules out every larger one for the rest of the stage.
  """
  state = record_trial(cfg, state, signals)
  lr = cfg.strategies.propose(trials_of(state), state.stage, state.trial,
                              lr_ceiling_unit(cfg, state), state.count + 1)
  return state._replace(
      phase_step=jnp.zeros_like(state.phase_step),
      learning_rate=(lr * probe_factor(cfg, state.stage, 0)).astype(jnp.float32),
      trial_lrs=state.trial_lrs.at[state.trial].set(lr),
      probe_losses=jnp.zeros_like(signals.losses),
  )


def start_exploit(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """The last probe ended: train at the LR with the lowest forecast.

  If every probe diverged, the stage trains at ``min_lr``.
  """
  state = record_trial(cfg, state, signals)
  finished = finished_trials(state)
  lr = jnp.where(jnp.all(state.trial_diverged | ~finished), cfg.min_lr,
                 chosen_lr(cfg, state)).astype(jnp.float32)
  warms = ~signals.keeps_probe
  if cfg.strategies.keeps_lower_probe == "warm":
    warms |= state.trial_lrs[state.trial - 1] < lr  # Goes on from a lower probe.
  return state._replace(
      phase=jnp.asarray(EXPLOIT, jnp.int32),
      phase_step=jnp.zeros_like(state.phase_step),
      learning_rate=exploit_start_lr(cfg, lr, from_snapshot=warms),
      exploit_lr=lr,
      probe_losses=jnp.zeros_like(signals.losses),
  )


def warming_lr(cfg: AutoLRSConfig, lr, step) -> jax.Array:
  """The LR of step ``step`` of an exploitation at ``lr`` that warms up."""
  return lr * _budget.ramp_up(step, cfg.exploit_warmup_steps)


def exploit_start_lr(cfg: AutoLRSConfig, lr, from_snapshot) -> jax.Array:
  """The first LR of an exploitation at ``lr``: warming up with a budget's
  ``exploit_warmup`` when it starts from the snapshot, else ``lr``."""
  if not cfg.exploit_warmup_steps:
    return lr
  return jnp.where(from_snapshot, warming_lr(cfg, lr, 0), lr).astype(jnp.float32)


def retry_exploit(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """The exploitation blew up: restart it from the snapshot at a smaller LR.

  The failed LR counts as diverged, and no later stage probes it or above
  (``lr_ceiling``); the new one is the best forecast among the smaller LRs
  probed that did not diverge, or a tenth of the failed one (at least
  ``min_lr``) when none is left.
  """
  del signals
  failed = state.exploit_lr  # Its LR once warmed up.
  diverged = state.trial_diverged | (state.trial_lrs >= failed)
  finished = finished_trials(state)
  smaller = finished & ~diverged & (state.trial_lrs < failed)
  best = _budget.best_index(state.trial_scores, smaller)
  lr = jnp.where(jnp.any(smaller), state.trial_lrs[best],
                 jnp.maximum(failed / 10, cfg.min_lr)).astype(jnp.float32)
  return state._replace(
      phase_step=jnp.zeros_like(state.phase_step),
      learning_rate=exploit_start_lr(cfg, lr, from_snapshot=True),
      exploit_lr=lr,
      trial_diverged=diverged,
      lr_ceiling=jnp.minimum(state.lr_ceiling, failed),
  )


def start_stage(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """An exploitation (or the warm-up) ended: a new stage's first probe.

  Its LR is random (below ``lr_ceiling``); with a budget, as its plan opens
  a stage (:attr:`autolrs_jax._strategies.Strategies.open_stage`: the
  ladder's first rung, or random near the incumbent). The draw's key is
  ``fold_in(key, count)``: it depends on the call alone, not on which calls
  before it drew.
  """
  key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.count)
  is_new_stage = state.phase == EXPLOIT  # Else warm-up just ended.
  stage = state.stage + is_new_stage.astype(jnp.int32)
  held_lr = jnp.where(is_new_stage, state.learning_rate, 0.0)
  trial_lrs = cfg.strategies.open_stage(stage, held_lr, state.lr_ceiling, key)
  return state._replace(
      stage=stage,
      phase=jnp.asarray(PROBE, jnp.int32),
      trial=jnp.zeros_like(state.trial),
      phase_step=jnp.zeros_like(state.phase_step),
      learning_rate=(trial_lrs[0] * probe_factor(cfg, stage, 0)).astype(jnp.float32),
      trial_lrs=trial_lrs,
      trial_scores=jnp.zeros_like(state.trial_scores),
      trial_diverged=jnp.zeros_like(state.trial_diverged),
      probe_losses=jnp.zeros_like(signals.losses),
  )


# Indexed by the events CONTINUE, NEXT_TRIAL, START_EXPLOIT, START_STAGE,
# RETRY_EXPLOIT and START_ANNEAL.
TRANSITIONS = (continue_phase, next_trial, start_exploit, start_stage, retry_exploit,
               start_anneal)


def known_quiet_calls(cfg: AutoLRSConfig, state: Controller) -> jax.Array:
  """How many calls from ``state.count`` on are known to end nothing.

  The warm-up's calls before its last, an exploitation's before its last (a
  budget's last exploitation never ends without an anneal), and every call of
  the anneal: their ends are planned. No probe call: any may diverge. An
  exploitation's blow-up is data too: a quiet call restores and retries as
  any other (:func:`quiet_transition`).
  """
  exploit = cfg.stages.exploit_calls_left(state.stage, state.count, state.phase_step)
  quiet = jnp.select(
      [state.phase == WARMUP, state.phase == EXPLOIT, state.phase == ANNEAL],
      [cfg.warmup_steps - 1 - state.count, exploit, jnp.asarray(_stages.NEVER, jnp.int32)], 0)
  return jnp.maximum(quiet, 0).astype(jnp.int32)


def transition(cfg: AutoLRSConfig, state: Controller, signals: Signals,
               event: int | None = None) -> Controller:
  """Runs the transition of ``event`` (default: this step's, chosen by
  :func:`choose_event` under ``lax.switch``); advances the count.

  """
  if event == CONTINUE:
    return conclude(cfg, state, continue_phase(cfg, state, signals), signals)
  if event is None:
    branches = [functools.partial(fn, cfg) for fn in TRANSITIONS]
    controller = jax.lax.switch(choose_event(cfg, state, signals), branches, state, signals)
  else:
    controller = TRANSITIONS[event](cfg, state, signals)
  return conclude(cfg, state, controller, signals)


def quiet_transition(cfg: AutoLRSConfig, state: Controller, signals: Signals) -> Controller:
  """:func:`transition` of a call run quiet (see :func:`known_quiet_calls`):
  :func:`continue_phase`, or :func:`retry_exploit` if the exploitation blew
  up, both computed and selected (a few scalars), no control flow. No quiet
  call is a probe's: its loss record is handed on as it came, which XLA
  aliases instead of writing it anew."""
  no = jnp.zeros([], bool)
  signals = signals._replace(probe_ends=no, exploit_ends=no, warmup_ends=no,
                             losses=state.probe_losses)
  continued = continue_phase(cfg, state, signals)
  retried = retry_exploit(cfg, state, signals)
  controller = _common.select_fields(signals.exploit_blows_up, retried, continued)
  return conclude(cfg, state, controller, signals)


def conclude(cfg: AutoLRSConfig, state: Controller, controller: Controller,
             signals: Signals) -> Controller:
  """What every call ends with, whatever its transition: the count, the
  observed values, and how many calls are known quiet after it."""
  controller = controller._replace(
      count=state.count + 1,
      stage_loss=signals.stage_loss,
      probe_path=signals.probe_path,
      probe_peak=signals.probe_peak,
      last_loss=signals.last_loss,
      loss_before_last=state.last_loss,
      probe_jitter=signals.probe_jitter,
      stage_loss_square=signals.stage_loss_square,
      exploit_loss=signals.exploit_loss,
      exploit_best=signals.exploit_best,
      restored=signals.restores,
      wants_validation=cfg.stages.is_validation_step(
          controller.stage, controller.phase == PROBE, controller.phase_step),
  )
  return controller._replace(quiet_calls=known_quiet_calls(cfg, controller))


def finish(measured: Measured, controller: Controller, signals: Signals) -> AutoLRSState:
  """The packed state after a call (its trees ``None``)."""
  # A non-finite update after a finite loss: the base state it came with is
  # not trusted; the base optimizer goes on from the snapshot's.
  loss_ok = jnp.isfinite(measured.value) & jnp.isfinite(measured.score)
  resume = controller.restored | (signals.skip & loss_ok)
  controller = controller._replace(resume_from_snapshot=resume,
                                   snapshot_norm=measured.snapshot_norm)
  return store(controller, snapshot_params=None, snapshot_base_state=None, base_state=None)


def advance(cfg: AutoLRSConfig, state: AutoLRSState, measured: Measured,
            signals: Signals) -> AutoLRSState:
  """The state after this step, without its trees (``restored`` says whether
  the step restores).

  ``state`` holds the controller packed, its trees ``None``; ``signals`` are
  this step's (:func:`observe`) and choose the branch. One ``lax.cond`` per
  step: most steps end nothing and take the quiet branch, a few scalar updates
  (:func:`continue_phase`); the other scores an ended probe and runs the
  event's transition. Each branch packs its result, so that XLA fuses the
  quiet branch's scalar updates into the few fusions that pack them (a
  conditional with a result per scalar makes each a kernel of its own). On a
  GPU each conditional run at every step splits XLA's command buffer and
  waits for its predicate.
  """
  def quiet(state, signals):
    controller = state.controller
    return finish(measured, transition(cfg, controller, signals, CONTINUE), signals)

  def eventful(state, signals):
    controller = state.controller
    signals = score_ended_probe(cfg, controller, signals)
    return finish(measured, transition(cfg, controller, signals), signals)

  return jax.lax.cond(signals.something_ends, eventful, quiet, state, signals)


# --- The transformation ------------------------------------------------------


def _losses(cfg: AutoLRSConfig, state: Controller, value, validation_value):
  """``(value, score, validating)``: the loss, and what scores this step's probe."""
  value = _common.check_loss(value, "value", "autolrs", cfg.axis_name)
  validating = validation_value is not None
  if validating:
    validation_value = _common.check_loss(validation_value, "validation_value", "autolrs",
                                          cfg.axis_name)
  score = value
  if validating:
    score = jnp.where(state.wants_validation, validation_value, value)
  return value, score, validating


def drift_bounded(cfg: AutoLRSConfig, base_optimizer, params, base_state) -> jax.Array | bool:
  """Whether ``max_probe_drift`` ends this run's probes: always in the paper's
  mode, and as the budget plan's ``drift_bound`` says with a budget."""
  if cfg.max_probe_drift is None:
    return False
  if cfg.drift_bound == "gradient-scaled":
    return _common.steps_scale_with_gradient(base_optimizer, params, base_state)
  return True


def update_step(cfg: AutoLRSConfig, base_optimizer, updates, state: AutoLRSState, params,
                value, validation_value, extra_args, quiet: bool):
  """One update call: measure, observe, decide (:func:`advance`), act.

  ``quiet``: a call :func:`known_quiet_calls` counted, which starts no stage
  (no snapshot) and decides by :func:`quiet_transition`: the step compiles no
  conditional and no loop.
  """
  controller = state.controller
  value, score, validating = _losses(cfg, controller, value, validation_value)
  if quiet:
    stage_starts, snapshot_params, snapshot_base_state, snapshot_norm = (
        jnp.zeros([], bool), state.snapshot_params, state.snapshot_base_state,
        controller.snapshot_norm)
  else:
    stage_starts, snapshot_params, snapshot_base_state, snapshot_norm = take_snapshot(
        state, params)
  # A step whose loss is NaN/Inf is not applied, nor fed to the base optimizer.
  loss_ok = jnp.isfinite(value) & jnp.isfinite(score)
  # The live base state, reading the new snapshot: it equals the old one
  # unless the stage starts here, when it is a copy of the live state.
  live = optax.tree.where(state.resume_from_snapshot, snapshot_base_state, state.base_state)
  # The base optimizer's new state is stored as it comes, never selected, so
  # that XLA updates it in place and derives the update from it in the same
  # pass as apply_updates (as for the bare optimizer); a restore or an
  # unusable state is undone at the next update's input (resume_from_snapshot).
  lr = controller.learning_rate
  base = _common.base_step(base_optimizer, updates, live, params, lr, loss_ok, extra_args)
  measured = Measured(value, score, base.finite, base.length, snapshot_norm, stage_starts)
  signals = observe(cfg, controller, measured, validating)
  if quiet:
    next_state = finish(measured, quiet_transition(cfg, controller, signals), signals)
  else:
    small = state._replace(snapshot_params=None, snapshot_base_state=None, base_state=None)
    next_state = advance(cfg, small, measured, signals)
  new_updates = act(restores=next_state.restored, skip=signals.skip,
                    base_updates=base.updates, learning_rate=lr, params=params,
                    snapshot_params=snapshot_params)
  return new_updates, next_state._replace(snapshot_params=snapshot_params,
                                          snapshot_base_state=snapshot_base_state,
                                          base_state=base.state)


def _check_params(params, state: AutoLRSState) -> None:
  if params is None:
    raise ValueError("autolrs needs params: call update(grads, state, params, value=loss).")
  if jax.tree.structure(params) != jax.tree.structure(state.snapshot_params):
    raise ValueError(
        "params must have the tree structure given to init: got "
        f"{jax.tree.structure(params)}, expected {jax.tree.structure(state.snapshot_params)}.")


def autolrs(
    base_optimizer: optax.GradientTransformation,
    *,
    min_lr: float,
    max_lr: float,
    total_steps: int | None = None,
    budget: _stages.BudgetPlan | None = None,
    tau: int | None = None,
    tau_probe: int | None = None,
    num_trials: int | None = None,
    tau_max: int | None = None,
    warmup_steps: int = 0,
    warmup_lr: float | None = None,
    acquisition: str = "lcb",
    kappa: float = 1000.0,
    grid_size: int = 512,
    validation_points: int = 16,
    validation_from_stage: int | None = None,
    max_probe_drift: float | None = 2.0,
    drift_per_call: float | None = _stages.DRIFT_PER_CALL,
    axis_name: str | None = None,
    seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
  """AutoLRS: the learning rate of each stage, chosen by Bayesian optimisation.

  Wraps ``base_optimizer``, built with learning rate 1.0, and multiplies its
  updates by the learning rate AutoLRS chooses. That is exact for every optax
  optimizer that ends in ``scale_by_learning_rate`` (``sgd``, ``adam``,
  ``adamw``, ``lion``, ...): their update is linear in the learning rate. For
  an optimizer whose state depends on the learning rate (e.g. weight decay
  applied before the scaling is fine, a learning rate used inside
  preconditioning is not) the scaling is only approximate.

  Every call must pass the minibatch loss of the current parameters as
  ``value``. The schedule, per stage:

  1. At its first step the stage snapshots ``params`` and the base state.
  2. ``num_trials`` probes of ``tau_probe`` steps. Each starts from the
     snapshot at an LR proposed by BO (the first one at random), records its
     losses, and at its last step returns ``snapshot - params`` as the update
     (that step's gradient is not applied) and swaps the base state back.
     Its losses are fitted by ``a exp(-r t) + c`` to forecast the loss after
     ``tau`` steps, which becomes a GP observation at ``log lr``.
  3. ``tau`` steps at the LR with the lowest forecast.
  4. ``tau`` and ``tau_probe`` double unless ``2 tau > tau_max``.

  So a stage costs ``num_trials * tau_probe + tau`` update calls, of which the
  probes are search. A probe diverges when its loss is NaN/Inf, or when its
  next step would be non-finite or take its path (the summed norms of its
  steps, which bounds how far the parameters moved) past ``max_probe_drift``
  times the snapshot's norm; it then ends at once (restoring, without
  applying that step) and is scored as the worst loss seen in the stage; so
  is a probe whose loss exploded while staying finite (the median of its last
  quarter above 3x that of its first). Once an LR diverged, BO proposes only
  smaller ones for the rest of the stage; if all probes of a stage diverge
  the stage trains at ``min_lr``. Outside probes a step whose loss or update
  is NaN/Inf is skipped (zero update, the step still counts): after a NaN/Inf
  loss the base optimizer is fed a zero gradient instead of the step's; after
  a NaN/Inf update with a finite loss it goes on from its state at the
  stage's snapshot. NaN never reaches the GP, the parameters or the base
  optimizer's state. An exploitation whose loss (a ten-step moving average,
  judged from its tenth step) climbs above 1.5x the stage's starting loss (the
  mean of its probes' first losses) was a bad pick that short probes could
  not see: it restarts from the snapshot at the best-forecast smaller LR that
  did not diverge (or a tenth of its LR), the steps spent still counting, and
  no later stage probes that LR or above. In the paper's mode an
  exploitation that ends no lower than its stage started (a model collapsed
  to chance stays at its starting loss) is retried the same way, while its
  LR is above ``min_lr``.

  **With a budget** (``total_steps``), AutoLRS plans its search to fill
  exactly ``total_steps`` update calls (warm-up included) and ends with an
  anneal, as a tuned warmup-stable-decay schedule does: a search, then the
  chosen LR, held until the anneal, over which it decays to zero at the last
  call. How it searches, scores its probes, chooses and anneals is
  :class:`autolrs_jax.BudgetPlan`'s, each mechanism a field with its default
  and the tasks that chose it; the benchmark's ablation rows measure each. A
  probe that diverges ends within a few calls, and the run never ends inside
  a probe. ``tau``, ``tau_probe``, ``num_trials`` and ``tau_max`` belong to
  the paper's schedule and cannot be given with ``total_steps``. Past
  ``total_steps`` the LR stays 0.

  **Validation loss.** From the stage after ``tau`` first reaches its maximum
  on, the reference scores probes on the validation loss, measured at
  ``validation_points`` evenly spaced probe steps. Pass it as
  ``validation_value``; ``state.wants_validation`` (a traced boolean, read it
  with :func:`autolrs_jax.find_state`) says at which steps it is used, so it
  can be computed under ``jax.lax.cond`` inside the jitted step. Without
  ``validation_value`` the training loss scores every probe.
  ``validation_from_stage=0`` scores every stage's probes on it.

  Args:
    base_optimizer: the optimizer to schedule, with learning rate 1.0.
    min_lr: lower end of the (log-uniform) search range; > 0.
    max_lr: upper end of the search range; > ``min_lr``.
    total_steps: the budget of update calls; None for the paper's schedule,
      which has no end.
    budget: how a budget is spent (:class:`autolrs_jax.BudgetPlan`); default
      ``BudgetPlan()``. Only with ``total_steps``.
    tau: training steps of the first stage's exploitation; default 1000.
    tau_probe: steps of each probe in the first stage; default ``tau // 10``.
      At least 2 and less than ``tau``.
    num_trials: probes (BO evaluations) per stage; default 10.
    tau_max: ``tau`` doubles after each stage while it stays <= ``tau_max``;
      default 8000.
    warmup_steps: steps of linear warm-up before the first stage,
      ``lr = warmup_lr * (step + 1) / warmup_steps``.
    warmup_lr: LR reached at the end of warm-up; default ``max_lr``.
    acquisition: ``'lcb'`` (lower confidence bound) or ``'ei'`` (expected
      improvement).
    kappa: exploration weight of ``'lcb'``. The reference's 1e6 and the
      paper's 1e3 make the search space-filling, so that the final choice
      rests on the argmin of the forecasts.
    grid_size: candidate log-LRs on which the acquisition is minimised.
    validation_points: validation losses per probe in validation stages.
    validation_from_stage: the first stage whose probes score
      ``validation_value``. Default: as in the reference, the stage after the
      first one at ``tau_max``; 0 (the default with a budget) scores every
      probe on the validation loss.
    max_probe_drift: a probe ends as diverged before a step that would take
      its path, the summed norms of its steps, past this times the snapshot's
      norm (global L2 norms); the path bounds how far the parameters moved
      from the snapshot. This keeps the restore ``p + (s - p)`` accurate: it
      is exact whenever each ``p`` is within a factor 2 of ``s`` (Sterbenz)
      and otherwise off by at most an ulp of ``|p|``. With a budget, the
      plan's ``drift_per_call`` (the default) replaces the value by a bound
      that grows with the probe's length, and its ``drift_bound`` says whose
      probes it ends (by default a base optimizer's whose step grows with
      the gradient: SGD's, not Adam's); None switches the bound off in both
      modes.
    drift_per_call: the paper's mode: a probe's path may reach this many
      snapshot norms per call (its bound grows as its stage's probes double);
      None: ``max_probe_drift`` for a whole probe, whatever its length. A
      budget's is its plan's (``BudgetPlan.drift_per_call``).
    axis_name: set under ``jax.pmap``/``shard_map``: ``value`` (and
      ``validation_value``) are averaged over this axis, so every replica takes
      the same decisions. Gradients are the caller's business, as for any
      optax optimizer.
    seed: seeds the random first proposal of each stage.

  With ``optax.inject_hyperparams``, list the integer arguments but ``seed``
  in ``static_args`` (they fix buffer shapes and the stage plan), and with
  ``total_steps`` also ``min_lr`` and ``max_lr`` (they count the ladder's
  rungs); one left out raises a ``ValueError`` that names it.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`. Its ``update`` takes
    ``(updates, state, params, *, value, validation_value=None, quiet=False,
    **extra_args)``; extra arguments are forwarded to ``base_optimizer`` if
    it takes them. ``quiet=True`` (a Python bool) compiles a step with no
    conditional and no loop, making the same decisions on the calls that
    :func:`autolrs_jax.quiet_calls` counts (warm-up, exploitation, anneal).

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import autolrs_jax
    >>> tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3,
    ...                          max_lr=1.0, tau=20, num_trials=3)
    >>> params = {'w': jnp.ones(3)}
    >>> state = tx.init(params)
    >>> loss_fn = lambda p: jnp.sum(p['w'] ** 2)
    >>> step = jax.jit(lambda p, s: tx.update(jax.grad(loss_fn)(p), s, p,
    ...                                       value=loss_fn(p)))
    >>> for _ in range(10):  # Three probes of two steps, then exploitation.
    ...   updates, state = step(params, state)
    ...   params = optax.apply_updates(params, updates)
    >>> autolrs_jax.describe(state)['phase']
    'exploit'

  References:
    Jin et al., `AutoLRS: Automatic Learning-Rate Schedule by Bayesian
    Optimization on the Fly <https://arxiv.org/abs/2105.10762>`_, ICLR 2021.
  """
  (total_steps, tau, tau_probe, num_trials, tau_max, warmup_steps, grid_size, validation_points,
   validation_from_stage) = _common.static_ints(
       total_steps=total_steps, tau=tau, tau_probe=tau_probe, num_trials=num_trials,
       tau_max=tau_max, warmup_steps=warmup_steps, grid_size=grid_size,
       validation_points=validation_points, validation_from_stage=validation_from_stage)
  if total_steps is None:
    _common.check(budget is None, "budget", "None without total_steps", budget)
    stages = _paper_stages(tau, tau_probe, num_trials, tau_max, validation_points,
                           validation_from_stage)
  else:
    paper_args = dict(tau=tau, tau_probe=tau_probe, num_trials=num_trials, tau_max=tau_max)
    stages, budget, min_lr, max_lr = _budget_stages(
        total_steps, budget, paper_args, min_lr, max_lr, warmup_steps, validation_points,
        validation_from_stage)
  _validate(min_lr, max_lr, warmup_steps, warmup_lr, acquisition, kappa, grid_size,
            stages.max_trials, validation_points, validation_from_stage, max_probe_drift,
            drift_per_call)
  cfg = configure(
      min_lr=min_lr, max_lr=max_lr, warmup_steps=warmup_steps,
      warmup_lr=max_lr if warmup_lr is None else warmup_lr, acquisition=acquisition,
      kappa=kappa, grid_size=grid_size, max_probe_drift=max_probe_drift, axis_name=axis_name,
      seed=seed, stages=stages, budget=budget, drift_per_call=drift_per_call)
  base_optimizer = optax.with_extra_args_support(base_optimizer)

  def init_fn(params):
    base_state = base_optimizer.init(params)
    packed = _common.build_on_mesh_of(params, lambda params, base_state: store(
        init_controller(cfg, drift_bounded(cfg, base_optimizer, params, base_state)),
        snapshot_params=None, snapshot_base_state=None, base_state=None), params, base_state)
    # Copies, never aliases: a state whose leaves share buffers with the params
    # or with each other cannot be donated to a jitted step.
    copy = lambda tree: jax.tree.map(jnp.array, tree)
    return packed._replace(snapshot_params=copy(params),
                           snapshot_base_state=copy(base_state), base_state=base_state)

  def update_fn(updates, state, params=None, *, value=None, validation_value=None,
                quiet=False, **extra_args):
    _check_params(params, state)
    return update_step(cfg, base_optimizer, updates, state, params, value, validation_value,
                       extra_args, _common.check_quiet(quiet, "autolrs"))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _budget_stages(total_steps, budget, paper_args, min_lr, max_lr, warmup_steps,
                   validation_points, validation_from_stage):
  """``(stages, plan, min_lr, max_lr)`` of a budget, checked: the paper's
  schedule arguments left out, the plan valid, the ladder's range static."""
  for name, value in paper_args.items():
    _common.check(value is None, name, "None with total_steps (the budget plans stages)", value)
  budget = _stages.BudgetPlan() if budget is None else budget
  _stages.check_plan(budget)
  if budget.first_search == "ladder":  # The range counts the ladder's rungs.
    why = "with total_steps, the range fixes the ladder's rungs"
    min_lr = _common.static_number(min_lr, "min_lr", numbers.Real, why)
    max_lr = _common.static_number(max_lr, "max_lr", numbers.Real, why)
  _common.check(total_steps > warmup_steps, "total_steps", f"> warmup_steps = {warmup_steps}",
                total_steps)
  stages = _stages.budget_schedule(total_steps, budget, warmup_steps, validation_points,
                                   validation_from_stage)
  return stages, budget, min_lr, max_lr


def _paper_stages(tau, tau_probe, num_trials, tau_max, validation_points,
                  validation_from_stage) -> _stages.StageSchedule:
  """The paper's doubling stages, their defaults filled in and checked."""
  tau = 1000 if tau is None else tau
  tau_probe = tau // 10 if tau_probe is None else tau_probe
  num_trials = 10 if num_trials is None else num_trials
  tau_max = 8000 if tau_max is None else tau_max
  _validate_paper_stages(tau, tau_probe, num_trials, tau_max)
  return _stages.doubling_schedule(tau, tau_probe, num_trials, tau_max, validation_points,
                                   validation_from_stage)


def _validate_paper_stages(tau, tau_probe, num_trials, tau_max):
  """Raises ValueError naming the first bad hyper-parameter of the paper's stages."""
  check = _common.check
  check(tau_probe >= 2, "tau_probe", ">= 2", tau_probe)
  check(tau_probe < tau, "tau_probe", f"< tau = {tau}", tau_probe)
  check(num_trials >= 1, "num_trials", ">= 1", num_trials)
  check(tau_max >= tau, "tau_max", f">= tau = {tau}", tau_max)


def _validate(min_lr, max_lr, warmup_steps, warmup_lr, acquisition, kappa, grid_size,
              max_trials, validation_points, validation_from_stage, max_probe_drift,
              drift_per_call):
  """Raises ValueError naming the first bad hyper-parameter of any schedule."""
  check = _common.check
  check(min_lr > 0, "min_lr", "> 0", min_lr)
  check(max_lr > min_lr, "max_lr", f"> min_lr = {min_lr}", max_lr)
  check(warmup_steps >= 0, "warmup_steps", ">= 0", warmup_steps)
  check(warmup_lr is None or warmup_lr > 0, "warmup_lr", "> 0", warmup_lr)
  check(acquisition in bo.ACQUISITIONS, "acquisition", f"one of {bo.ACQUISITIONS}",
        acquisition)
  check(kappa >= 0, "kappa", ">= 0", kappa)
  check(grid_size >= max(max_trials, 2), "grid_size", f">= max(trials, 2) = {max(max_trials, 2)}",
        grid_size)
  check(validation_points >= 1, "validation_points", ">= 1", validation_points)
  check(validation_from_stage is None or validation_from_stage >= 0,
        "validation_from_stage", ">= 0", validation_from_stage)
  check(max_probe_drift is None or max_probe_drift > 0, "max_probe_drift", "None or > 0",
        max_probe_drift)
  check(drift_per_call is None or drift_per_call > 0, "drift_per_call", "None or > 0",
        drift_per_call)


def describe_state(s: AutoLRSState) -> dict[str, Any]:
  """The fields of :func:`autolrs_jax.describe` for an AutoLRS state."""
  return {
      "controller": "autolrs",
      "step": int(s.count),
      "stage": int(s.stage),
      "phase": PHASE_NAMES[int(s.phase)],
      "trial": int(s.trial),
      "phase_step": int(s.phase_step),
      "learning_rate": float(s.learning_rate),
      "wants_validation": bool(s.wants_validation),
  }
