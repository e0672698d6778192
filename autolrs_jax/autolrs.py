"""AutoLRS: a learning-rate schedule searched on the fly by Bayesian optimisation.

Training is split into stages. Each stage starts from a snapshot of the
parameters and of the base optimizer's state, runs ``num_trials`` short probes
of ``tau_probe`` steps, each at a learning rate proposed by a Gaussian process
over log learning rate and each ending by restoring the snapshot, then trains
``tau`` steps at the learning rate whose forecast loss after ``tau`` steps was
lowest. ``tau`` and ``tau_probe`` double after every stage until ``tau`` would
pass ``tau_max``.

All of it runs inside one compiled ``update``: the controller is a state
machine whose state is a pytree of fixed-shape arrays, snapshots are restored
by returning ``snapshot - params`` as the update, and the BO step runs under
``lax.switch`` only when a probe ends.
"""

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from autolrs_jax import bo
from autolrs_jax import forecast as forecast_lib

# Phases of the controller (values of ``AutoLRSState.phase``).
WARMUP = 0
PROBE = 1
EXPLOIT = 2
PHASE_NAMES = ("warmup", "probe", "exploit")

# Events that end a step (internal; the branches of the ``lax.switch``).
_CONTINUE, _NEXT_TRIAL, _START_EXPLOIT, _START_STAGE, _RETRY_EXPLOIT = range(5)

# An exploitation blows up when its smoothed loss rises above the stage's
# starting loss by this factor (as ``forecast.exploded`` judges probes).
_EXPLODE_FACTOR = 3.0
_EXPLOIT_EMA = 0.9  # Smoothing of the exploitation loss (about ten steps).

# Bound on forecasts handed to the GP, so that its standardisation stays finite.
_MAX_SCORE = 1e6


class AutoLRSState(NamedTuple):
  """State of :func:`autolrs`. Shapes never depend on the stage."""

  count: jax.Array  # int32: update calls so far.
  stage: jax.Array  # int32: index of the current stage, from 0.
  phase: jax.Array  # int32: WARMUP, PROBE or EXPLOIT.
  trial: jax.Array  # int32: running probe's index = BO observations so far.
  phase_step: jax.Array  # int32: steps done in the current probe/exploit.
  learning_rate: jax.Array  # float32: LR the next update applies.
  wants_validation: jax.Array  # bool: next update scores a validation loss.
  trial_lrs: jax.Array  # float32[num_trials]: LRs probed in this stage.
  trial_forecasts: jax.Array  # float32[num_trials]: their forecast losses.
  trial_diverged: jax.Array  # bool[num_trials]: probe saw a NaN/Inf loss.
  probe_losses: jax.Array  # float32[max probe length]: current probe's losses.
  stage_loss: jax.Array  # float32: loss at the stage's snapshot (its first step).
  exploit_loss: jax.Array  # float32: moving average of this exploitation's losses.
  snapshot_params: base.Params  # Parameters at the start of the stage.
  snapshot_base_state: base.OptState  # Base optimizer state at stage start.
  base_state: base.OptState  # Live state of the base optimizer.
  key: jax.Array  # PRNG key for the first (random) proposal of each stage.


class StageSchedule(NamedTuple):
  """Static lengths of the stages, derived from the hyper-parameters."""

  tau: int
  tau_probe: int
  num_doublings: int  # Stages >= this index have tau at its maximum.
  validation_points: int
  validation_from_stage: int  # Probes of this stage on score the validation loss.

  @property
  def max_tau_probe(self) -> int:
    return self.tau_probe * 2**self.num_doublings

  def lengths(self, stage):
    """``(tau_probe, tau)`` of a (traced) stage index."""
    factor = 2 ** jnp.minimum(stage, self.num_doublings)
    return self.tau_probe * factor, self.tau * factor

  def uses_validation(self, stage):
    """Whether probes of this stage score the validation loss."""
    return stage >= self.validation_from_stage

  def validation_interval(self, tau_probe):
    return jnp.maximum(tau_probe // self.validation_points, 1)

  def is_validation_step(self, stage, phase, phase_step):
    tau_probe, _ = self.lengths(stage)
    interval = self.validation_interval(tau_probe)
    return (
        (phase == PROBE)
        & self.uses_validation(stage)
        & (phase_step % interval == interval - 1)
    )


def _lr_from_unit(x, min_lr, max_lr):
  """Maps ``x`` in [0, 1] to a learning rate, log-uniformly."""
  return jnp.exp(math.log(min_lr) + x * (math.log(max_lr) - math.log(min_lr)))


def _unit_from_lr(lr, min_lr, max_lr):
  return (jnp.log(lr) - math.log(min_lr)) / (math.log(max_lr) - math.log(min_lr))


def _check_value(value, name):
  if value is None:
    raise TypeError(
        f"autolrs needs the loss of the current step: call "
        f"update(grads, state, params, {name}=loss)."
    )
  value = jnp.asarray(value)
  if value.shape != ():
    raise ValueError(f"{name} must be a scalar, got shape {value.shape}.")
  if not jnp.issubdtype(value.dtype, jnp.floating):
    raise ValueError(f"{name} must be a floating-point scalar, got {value.dtype}.")
  return value.astype(jnp.float32)


def _all_finite(tree):
  leaves = jax.tree.leaves(tree)
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _drift(params, step, snapshot):
  """``|params + step - snapshot| / |snapshot|``, in float32 global norms."""
  sq = lambda x: jnp.sum(jnp.square(x.astype(jnp.float32)))
  moved = sum(sq(p + u - s) for p, u, s in zip(
      jax.tree.leaves(params), jax.tree.leaves(step), jax.tree.leaves(snapshot)))
  size = sum(sq(s) for s in jax.tree.leaves(snapshot))
  return jnp.sqrt(moved) / jnp.maximum(jnp.sqrt(size), 1e-12)


def _build_on_mesh_of(params, make):
  """Calls ``make()``, placing its arrays replicated on the params' mesh.

  Under ``jit`` with shardings, the updated state comes back on the mesh of
  the params; an eagerly initialised state must start there too, or every
  scalar's sharding would change at the first update. Building under ``jit``
  with ``out_shardings`` also works across processes, where a mesh spans
  devices that this process cannot address.
  """
  shardings = [x.sharding for x in jax.tree.leaves(params)
               if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer)]
  named = [s for s in shardings if isinstance(s, jax.sharding.NamedSharding)]
  if not named:
    return make()
  replicated = jax.sharding.NamedSharding(named[0].mesh, jax.sharding.PartitionSpec())
  return jax.jit(make, out_shardings=replicated)()


def _select(pred, on_true, on_false):
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def autolrs(
    base_optimizer: base.GradientTransformation,
    *,
    min_lr: float,
    max_lr: float,
    tau: int = 1000,
    tau_probe: int | None = None,
    num_trials: int = 10,
    tau_max: int = 8000,
    warmup_steps: int = 0,
    warmup_lr: float | None = None,
    acquisition: str = "lcb",
    kappa: float = 1000.0,
    grid_size: int = 512,
    validation_points: int = 16,
    validation_from_stage: int | None = None,
    max_probe_drift: float = 2.0,
    axis_name: str | None = None,
    seed: int = 0,
) -> base.GradientTransformationExtraArgs:
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
  next step would be non-finite or carry the parameters more than
  ``max_probe_drift`` times their norm away from the snapshot; it then ends at
  once (restoring, without applying that step) and is scored as the worst
  loss seen in the stage; so is a probe whose loss exploded while staying
  finite (the median of its last quarter above 3x that of its first). Once an
  LR diverged, BO proposes only smaller ones for the rest of the stage; if
  all probes of a stage diverge the stage trains at ``min_lr``. Outside probes a
  step whose loss or update is NaN/Inf is skipped (zero update, base state
  unchanged, the step still counts). NaN never reaches the GP or the
  parameters. An exploitation whose loss (a ten-step moving average) climbs
  above 3x the stage's starting loss was a bad pick that short probes could
  not see: it restarts from the snapshot at the best-forecast smaller LR that
  did not diverge (or a tenth of its LR), the steps spent still counting.

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
    tau: training steps of the first stage's exploitation.
    tau_probe: steps of each probe in the first stage; default ``tau // 10``.
      At least 2 and less than ``tau``.
    num_trials: probes (BO evaluations) per stage.
    tau_max: ``tau`` doubles after each stage while it stays <= ``tau_max``.
    warmup_steps: steps of linear warm-up before the first stage,
      ``lr = warmup_lr * (step + 1) / warmup_steps``.
    warmup_lr: LR reached at the end of warm-up; default ``max_lr``.
    acquisition: ``'lcb'`` (lower confidence bound) or ``'ei'`` (expected
      improvement).
    kappa: exploration weight of ``'lcb'``. The reference's 1e6 and the
      paper's 1e3 make the search space-filling, so that the final choice
      rests on the argmin of the forecasts; ``benchmarks/kappa.py`` measures
      smaller values.
    grid_size: candidate log-LRs on which the acquisition is minimised.
    validation_points: validation losses per probe in validation stages.
    validation_from_stage: the first stage whose probes score
      ``validation_value``. Default: as in the reference, the stage after the
      first one at ``tau_max``; 0 scores every probe on the validation loss.
    max_probe_drift: a probe ends as diverged before a step that would move
      the parameters farther than this times the snapshot's norm from the
      snapshot (global L2 norms). This keeps the restore ``p + (s - p)``
      accurate: it is exact whenever each ``p`` is within a factor 2 of ``s``
      (Sterbenz) and otherwise off by at most an ulp of ``|p|``.
    axis_name: set under ``jax.pmap``/``shard_map``: ``value`` (and
      ``validation_value``) are averaged over this axis, so every replica takes
      the same decisions. Gradients are the caller's business, as for any
      optax optimizer.
    seed: seeds the random first proposal of each stage.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`. Its ``update`` takes
    ``(updates, state, params, *, value, validation_value=None,
    **extra_args)``; extra arguments are forwarded to ``base_optimizer``.

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> from autolrs_jax import autolrs
    >>> tx = autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0,
    ...              tau=20, num_trials=3)
    >>> params = {'w': jnp.ones(3)}
    >>> state = tx.init(params)
    >>> loss_fn = lambda p: jnp.sum(p['w'] ** 2)
    >>> for _ in range(30):
    ...   loss, grads = jax.value_and_grad(loss_fn)(params)
    ...   updates, state = tx.update(grads, state, params, value=loss)
    ...   params = optax.apply_updates(params, updates)

  References:
    Jin et al., `AutoLRS: Automatic Learning-Rate Schedule by Bayesian
    Optimization on the Fly <https://arxiv.org/abs/2105.10762>`_, ICLR 2021.
  """
  if tau_probe is None:
    tau_probe = tau // 10
  _validate(min_lr, max_lr, tau, tau_probe, num_trials, tau_max, warmup_steps,
            warmup_lr, acquisition, kappa, grid_size, validation_points,
            validation_from_stage, max_probe_drift)
  if warmup_lr is None:
    warmup_lr = max_lr
  num_doublings = 0
  while tau * 2 ** (num_doublings + 1) <= tau_max:
    num_doublings += 1
  schedule = StageSchedule(
      tau=tau,
      tau_probe=tau_probe,
      num_doublings=num_doublings,
      validation_points=validation_points,
      validation_from_stage=(num_doublings + 1 if validation_from_stage is None
                             else validation_from_stage),
  )
  grid = bo.search_grid(grid_size)

  def random_lr(key):
    index = jax.random.randint(key, (), 0, grid_size)
    return _lr_from_unit(grid[index], min_lr, max_lr)

  def init_fn(params):
    base_state = base_optimizer.init(params)
    controller = _build_on_mesh_of(params, init_controller)
    # Copies, never aliases: a state whose leaves share buffers with the params
    # or with each other cannot be donated to a jitted step.
    copy = lambda tree: jax.tree.map(jnp.array, tree)
    return controller._replace(
        snapshot_params=copy(params),
        snapshot_base_state=copy(base_state),
        base_state=base_state,
    )

  def init_controller() -> AutoLRSState:
    """The controller's own fields (the params-sized ones left as None)."""
    key, first = jax.random.split(jax.random.key(seed))
    first_lr = random_lr(first)
    lr = warmup_lr / warmup_steps if warmup_steps else first_lr
    return AutoLRSState(
        count=jnp.zeros([], jnp.int32),
        stage=jnp.zeros([], jnp.int32),
        phase=jnp.asarray(WARMUP if warmup_steps else PROBE, jnp.int32),
        trial=jnp.zeros([], jnp.int32),
        phase_step=jnp.zeros([], jnp.int32),
        learning_rate=jnp.asarray(lr, jnp.float32),
        wants_validation=jnp.zeros([], bool),
        trial_lrs=jnp.zeros([num_trials], jnp.float32).at[0].set(first_lr),
        trial_forecasts=jnp.zeros([num_trials], jnp.float32),
        trial_diverged=jnp.zeros([num_trials], bool),
        probe_losses=jnp.zeros([schedule.max_tau_probe], jnp.float32),
        stage_loss=jnp.zeros([], jnp.float32),
        exploit_loss=jnp.zeros([], jnp.float32),
        snapshot_params=None,
        snapshot_base_state=None,
        base_state=None,
        key=key,
    )

  def score_probe(state, losses, observed, diverged_now):
    """Forecast of the probe that just ended, finite and pessimistic if bad."""
    tp, t = schedule.lengths(state.stage)
    value, diverged = forecast_lib.forecast(losses, observed, tp, t)
    diverged |= diverged_now | forecast_lib.exploded(losses, observed)
    previous = jnp.arange(num_trials) < state.trial
    seen = jnp.concatenate([
        jnp.where(observed & jnp.isfinite(losses), losses, -jnp.inf),
        jnp.where(previous, state.trial_forecasts, -jnp.inf),
    ])
    worst = jnp.max(seen)
    worst = jnp.where(jnp.isfinite(worst), worst, _MAX_SCORE)
    value = jnp.where(diverged, worst, value)
    return jnp.clip(value, -_MAX_SCORE, _MAX_SCORE), diverged

  def record_trial(state, losses, observed, diverged_now):
    value, diverged = score_probe(state, losses, observed, diverged_now)
    i = state.trial
    return state._replace(
        trial=i + 1,
        trial_forecasts=state.trial_forecasts.at[i].set(value),
        trial_diverged=state.trial_diverged.at[i].set(diverged),
    )

  def on_continue(state, key, losses, observed, diverged_now):
    del key, observed, diverged_now
    next_count = state.count + 2  # The step after the one being taken.
    warm_lr = warmup_lr * next_count.astype(jnp.float32) / max(warmup_steps, 1)
    lr = jnp.where(state.phase == WARMUP, warm_lr, state.learning_rate)
    return state._replace(
        phase_step=state.phase_step + 1,
        learning_rate=lr.astype(jnp.float32),
        probe_losses=losses,
    )

  def on_next_trial(state, key, losses, observed, diverged_now):
    del key
    state = record_trial(state, losses, observed, diverged_now)
    observed = jnp.arange(num_trials) < state.trial
    x = _unit_from_lr(state.trial_lrs, min_lr, max_lr)
    # An LR that diverged rules out every larger one for the rest of the stage.
    ceiling = jnp.min(jnp.where(observed & state.trial_diverged, x, jnp.inf))
    x_next, _ = bo.propose(x, state.trial_forecasts, observed, grid,
                           acquisition=acquisition, kappa=kappa, allowed=grid < ceiling)
    lr = _lr_from_unit(x_next, min_lr, max_lr)
    return state._replace(
        phase_step=jnp.zeros_like(state.phase_step),
        learning_rate=lr,
        trial_lrs=state.trial_lrs.at[state.trial].set(lr),
        probe_losses=jnp.zeros_like(losses),
    )

  def on_start_exploit(state, key, losses, observed, diverged_now):
    del key
    state = record_trial(state, losses, observed, diverged_now)
    best = jnp.argmin(state.trial_forecasts)
    lr = jnp.where(jnp.all(state.trial_diverged), min_lr, state.trial_lrs[best])
    return state._replace(
        phase=jnp.asarray(EXPLOIT, jnp.int32),
        phase_step=jnp.zeros_like(state.phase_step),
        learning_rate=lr.astype(jnp.float32),
        probe_losses=jnp.zeros_like(losses),
    )

  def on_retry_exploit(state, key, losses, observed, diverged_now):
    """The exploitation blew up: restart it from the snapshot at a smaller LR.

    The failed LR counts as diverged; the new one is the best forecast among
    the smaller LRs probed that did not diverge, or a tenth of the failed
    one (at least ``min_lr``) when none is left.
    """
    del key, losses, observed, diverged_now
    failed = state.learning_rate
    diverged = state.trial_diverged | (state.trial_lrs >= failed)
    smaller = ~diverged & (state.trial_lrs < failed)
    best = jnp.argmin(jnp.where(smaller, state.trial_forecasts, jnp.inf))
    lr = jnp.where(jnp.any(smaller), state.trial_lrs[best], jnp.maximum(failed / 10, min_lr))
    return state._replace(
        phase_step=jnp.zeros_like(state.phase_step),
        learning_rate=lr.astype(jnp.float32),
        trial_diverged=diverged,
    )

  def on_start_stage(state, key, losses, observed, diverged_now):
    del observed, diverged_now
    is_new_stage = state.phase == EXPLOIT  # Else warm-up just ended.
    lr = random_lr(key)
    return state._replace(
        stage=state.stage + is_new_stage.astype(jnp.int32),
        phase=jnp.asarray(PROBE, jnp.int32),
        trial=jnp.zeros_like(state.trial),
        phase_step=jnp.zeros_like(state.phase_step),
        learning_rate=lr,
        trial_lrs=jnp.zeros_like(state.trial_lrs).at[0].set(lr),
        trial_forecasts=jnp.zeros_like(state.trial_forecasts),
        trial_diverged=jnp.zeros_like(state.trial_diverged),
        probe_losses=jnp.zeros_like(losses),
    )

  def update_fn(updates, state, params=None, *, value=None,
                validation_value=None, **extra_args):
    if params is None:
      raise ValueError("autolrs needs params: call update(grads, state, params, value=loss).")
    if jax.tree.structure(params) != jax.tree.structure(state.snapshot_params):
      raise ValueError(
          "params must have the tree structure given to init: got "
          f"{jax.tree.structure(params)}, expected {jax.tree.structure(state.snapshot_params)}.")
    value = _check_value(value, "value")
    validating = validation_value is not None
    if validating:
      validation_value = _check_value(validation_value, "validation_value")
    if axis_name is not None:
      value = jax.lax.pmean(value, axis_name)
      if validating:
        validation_value = jax.lax.pmean(validation_value, axis_name)
    score = value
    if validating:
      score = jnp.where(state.wants_validation, validation_value, value)

    tp, t = schedule.lengths(state.stage)
    in_probe = state.phase == PROBE
    stage_starts = in_probe & (state.trial == 0) & (state.phase_step == 0)
    snapshot_params = _select(stage_starts, params, state.snapshot_params)
    snapshot_base_state = _select(stage_starts, state.base_state,
                                  state.snapshot_base_state)

    steps = jnp.arange(state.probe_losses.shape[0])
    losses = jnp.where(in_probe & (steps == state.phase_step), score,
                       state.probe_losses)
    observed = steps <= state.phase_step
    if validating:
      interval = schedule.validation_interval(tp)
      on_point = steps % interval == interval - 1
      observed &= ~schedule.uses_validation(state.stage) | on_point
    base_updates, new_base_state = base_optimizer.update(
        updates, state.base_state, params, **extra_args)
    lr = state.learning_rate
    scaled = jax.tree.map(lambda u: (lr * u).astype(u.dtype), base_updates)
    # A step that would put NaN/Inf in the params, or carry them far from the
    # snapshot, is never applied: ``p + (s - p)`` only restores ``s`` to within
    # rounding of ``|p|``, and not at all once ``p`` is NaN.
    step_finite = _all_finite(scaled)
    step_ok = step_finite & (
        _drift(params, scaled, snapshot_params) <= max_probe_drift)
    loss_ok = jnp.isfinite(value) & jnp.isfinite(score)
    diverged_now = ~loss_ok | ~step_ok
    probe_ends = in_probe & ((state.phase_step == tp - 1) | diverged_now)
    in_exploit = state.phase == EXPLOIT
    stage_loss = jnp.where(stage_starts & jnp.isfinite(value), value, state.stage_loss)
    exploit_loss = jnp.where(
        ~in_exploit | ~loss_ok, state.exploit_loss,
        jnp.where(state.phase_step == 0, value,
                  _EXPLOIT_EMA * state.exploit_loss + (1 - _EXPLOIT_EMA) * value))
    # Judged after a few steps of the average, so that one noisy minibatch
    # cannot end an exploitation.
    exploit_blows_up = in_exploit & (state.phase_step >= 3) & (
        exploit_loss - stage_loss > (_EXPLODE_FACTOR - 1.0) * jnp.abs(stage_loss))
    exploit_ends = in_exploit & (state.phase_step == t - 1) & ~exploit_blows_up
    warmup_ends = (state.phase == WARMUP) & (state.count == warmup_steps - 1)

    # Outside probes a step with a NaN/Inf loss or update is skipped: zero
    # update, base state kept (the controller still counts the step).
    skip = ~in_probe & ~(step_finite & loss_ok)
    restores = probe_ends | exploit_blows_up
    restore = jax.tree.map(lambda s, p: s - p, snapshot_params, params)
    zeros = jax.tree.map(jnp.zeros_like, scaled)
    new_updates = _select(restores, restore, _select(skip, zeros, scaled))
    base_state = _select(restores, snapshot_base_state,
                         _select(skip, state.base_state, new_base_state))

    last_trial = state.trial == num_trials - 1
    event = jnp.where(
        probe_ends,
        jnp.where(last_trial, _START_EXPLOIT, _NEXT_TRIAL),
        jnp.where(exploit_ends | warmup_ends, _START_STAGE,
                  jnp.where(exploit_blows_up, _RETRY_EXPLOIT, _CONTINUE)),
    )
    key, subkey = jax.random.split(state.key)
    # Only the small controller fields go through the switch: params-sized
    # operands would be copied in and out of its branches at every step.
    controller = state._replace(
        snapshot_params=None, snapshot_base_state=None, base_state=None)
    controller = jax.lax.switch(
        event,
        (on_continue, on_next_trial, on_start_exploit, on_start_stage, on_retry_exploit),
        controller, subkey, losses, observed, diverged_now,
    )
    new_state = controller._replace(
        stage_loss=stage_loss,
        exploit_loss=exploit_loss,
        snapshot_params=snapshot_params,
        snapshot_base_state=snapshot_base_state,
        base_state=base_state,
        count=state.count + 1,
        key=key,
        wants_validation=schedule.is_validation_step(
            controller.stage, controller.phase, controller.phase_step),
    )
    return new_updates, new_state

  return base.GradientTransformationExtraArgs(init_fn, update_fn)


def _validate(min_lr, max_lr, tau, tau_probe, num_trials, tau_max,
              warmup_steps, warmup_lr, acquisition, kappa, grid_size,
              validation_points, validation_from_stage, max_probe_drift):
  """Raises ValueError naming the first bad hyper-parameter."""
  if not min_lr > 0:
    raise ValueError(f"min_lr must be > 0, got min_lr = {min_lr}.")
  if not max_lr > min_lr:
    raise ValueError(
        f"max_lr must be > min_lr, got min_lr = {min_lr} and max_lr = {max_lr}.")
  if tau_probe < 2:
    raise ValueError(f"tau_probe must be >= 2, got tau_probe = {tau_probe}.")
  if tau_probe >= tau:
    raise ValueError(
        f"tau_probe must be < tau, got tau_probe = {tau_probe} and tau = {tau}.")
  if num_trials < 1:
    raise ValueError(f"num_trials must be >= 1, got num_trials = {num_trials}.")
  if tau_max < tau:
    raise ValueError(f"tau_max must be >= tau, got tau_max = {tau_max} and tau = {tau}.")
  if warmup_steps < 0:
    raise ValueError(f"warmup_steps must be >= 0, got warmup_steps = {warmup_steps}.")
  if warmup_lr is not None and not warmup_lr > 0:
    raise ValueError(f"warmup_lr must be > 0, got warmup_lr = {warmup_lr}.")
  if acquisition not in bo.ACQUISITIONS:
    raise ValueError(
        f"acquisition must be one of {bo.ACQUISITIONS}, got acquisition = {acquisition!r}.")
  if not kappa >= 0:
    raise ValueError(f"kappa must be >= 0, got kappa = {kappa}.")
  if grid_size < max(num_trials, 2):
    raise ValueError(
        f"grid_size must be >= max(num_trials, 2), got grid_size = {grid_size}.")
  if validation_points < 1:
    raise ValueError(
        f"validation_points must be >= 1, got validation_points = {validation_points}.")
  if validation_from_stage is not None and validation_from_stage < 0:
    raise ValueError("validation_from_stage must be >= 0, got "
                     f"validation_from_stage = {validation_from_stage}.")
  if not max_probe_drift > 0:
    raise ValueError(
        f"max_probe_drift must be > 0, got max_probe_drift = {max_probe_drift}.")


def _unwrap_variables(tree):
  """Replaces ``flax.nnx`` variables (as in ``nnx.Optimizer.opt_state``) by their values."""
  from flax import nnx  # pylint: disable=g-import-not-at-top

  return jax.tree.map(
      lambda x: x.get_value() if isinstance(x, nnx.Variable) else x,
      tree,
      is_leaf=lambda x: isinstance(x, nnx.Variable),
  )


def find_state(tree: Any, kind: Any = AutoLRSState) -> Any:
  """Finds a controller's state in an optimizer state tree.

  Args:
    tree: the state of :func:`autolrs` (or of another controller) itself, of
      an ``optax.chain`` holding it, or an ``nnx.Optimizer``'s ``opt_state``.
    kind: the state class to look for, or a tuple of them; None for any known
      controller state (:class:`AutoLRSState`,
      :class:`autolrs_jax.exptest.ExpTestState`). The default finds AutoLRS
      only, so that ``find_state`` raising still means "no AutoLRS here".

  Returns:
    The (single) matching state, with plain arrays as leaves. Works inside
    ``jit`` too, e.g. to read ``wants_validation``.

  Raises:
    ValueError: if the tree holds no matching state, or more than one.
  """
  if kind is None:
    # Imported here: exptest imports this module. (``from autolrs_jax import
    # exptest`` would give the function of that name, not the module.)
    from autolrs_jax.exptest import ExpTestState  # pylint: disable=g-import-not-at-top

    kind = (AutoLRSState, ExpTestState)
  kinds = kind if isinstance(kind, tuple) else (kind,)
  is_state = lambda x: isinstance(x, kinds)
  found = [x for x in jax.tree.leaves(tree, is_leaf=is_state) if is_state(x)]
  if len(found) != 1:
    names = " or ".join(k.__name__ for k in kinds)
    raise ValueError(f"expected one {names} in the tree, found {len(found)}.")
  return _unwrap_variables(found[0])


def describe(tree: Any) -> dict[str, Any]:
  """The controller's position as Python values, for logging (host sync).

  Works for any known controller (``find_state(tree, kind=None)``).

  Returns:
    A dict with the common fields ``controller`` (``'autolrs'`` or
    ``'exptest'``), ``step``, ``phase`` (a name) and ``learning_rate``
    (applied by the next update), plus each controller's own: for AutoLRS
    ``stage``, ``trial``, ``phase_step`` and ``wants_validation``; for ExpTest
    ``windows`` (tested so far), ``window_step`` (points in the current
    window), ``block_size``, ``outcome`` (last window's, a name),
    ``statistic`` and ``p_value`` (last window's F and one-sided p-value),
    ``drop``, ``num_decreases`` and ``num_cuts``.
  """
  s = find_state(tree, kind=None)
  if not isinstance(s, AutoLRSState):
    from autolrs_jax.exptest import OUTCOME_NAMES  # pylint: disable=g-import-not-at-top
    from autolrs_jax.exptest import PHASE_NAMES as EXPTEST_PHASES  # pylint: disable=g-import-not-at-top

    outcome = int(s.outcome)
    return {
        "controller": "exptest",
        "step": int(s.count),
        "phase": EXPTEST_PHASES[int(s.phase)],
        "learning_rate": float(s.learning_rate),
        "windows": int(s.windows),
        "window_step": int(s.window_step),
        "block_size": int(s.block_size),
        "outcome": OUTCOME_NAMES[outcome] if outcome >= 0 else "none",
        "statistic": float(s.statistic),
        "p_value": float(s.p_value),
        "drop": float(s.drop),
        "num_decreases": int(s.num_decreases),
        "num_cuts": int(s.num_cuts),
    }
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


def bo_observations(tree: Any) -> dict[str, jax.Array]:
  """The current stage's BO data: finished probes' LRs and forecasts.

  Returns:
    A dict of arrays ``learning_rates``, ``forecasts`` and ``diverged``, each
    holding one entry per finished probe of the current stage.
  """
  s = find_state(tree)
  n = int(s.trial)
  return {
      "learning_rates": s.trial_lrs[:n],
      "forecasts": s.trial_forecasts[:n],
      "diverged": s.trial_diverged[:n],
  }
