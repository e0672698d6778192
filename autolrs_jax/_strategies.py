"""How AutoLRS searches a stage, scores its probes and chooses its LR.

The state machine of :mod:`autolrs_jax._autolrs` is the paper's algorithm. At
each point where a budget's plan answers otherwise, it asks a
:class:`Strategies`, chosen once by the factory: :func:`paper` (random first
probes, BO, the forecast, the best forecast) or :func:`budget` (the ladder or
BO in a trust region, the plan's score, the largest LR near the best and the
ladder's vertex). Each answer is a small pure function of a stage's trial
arrays (:class:`Trials`); the budget's mechanisms themselves live in
:mod:`autolrs_jax._budget`. A new mechanism is one function there, the field
of :class:`autolrs_jax.BudgetPlan` that names it, its use in :func:`budget`,
and its test.
"""

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from autolrs_jax import _budget
from autolrs_jax import _common
from autolrs_jax import _stages
from autolrs_jax import bo
from autolrs_jax import forecast as forecast_lib


class LRSpace(NamedTuple):
  """The search range, log-uniform, and the acquisition's grid on it."""

  min_lr: float
  max_lr: float
  grid_size: int

  @property
  def grid(self) -> jax.Array:
    """Candidate points of the acquisition, in [0, 1] (log-LR, normalised)."""
    return bo.search_grid(self.grid_size)

  def from_unit(self, x: jax.Array) -> jax.Array:
    """Maps ``x`` in [0, 1] to a learning rate, log-uniformly."""
    lo, hi = _common.log(self.min_lr), _common.log(self.max_lr)
    return jnp.exp(lo + x * (hi - lo))

  def to_unit(self, lr: jax.Array) -> jax.Array:
    """The inverse of :meth:`from_unit`."""
    lo, hi = _common.log(self.min_lr), _common.log(self.max_lr)
    return (jnp.log(lr) - lo) / (hi - lo)

  def random(self, key: jax.Array, ceiling=None) -> jax.Array:
    """A learning rate drawn uniformly from the grid (its points below the LR
    ``ceiling``, the lowest point if none is)."""
    below = self.grid_size
    if ceiling is not None:
      below = jnp.maximum(jnp.sum(self.grid < self.to_unit(ceiling)), 1)
    index = jax.random.randint(key, (), 0, below)
    return self.from_unit(self.grid[index])


class Trials(NamedTuple):
  """A stage's probes so far, one entry per trial slot."""

  lrs: jax.Array  # float32[slots]: the LRs probed (a budget keeps its incumbent in the last).
  scores: jax.Array  # float32[slots]: their scores, lower is better.
  diverged: jax.Array  # bool[slots]: the probe diverged (scored as the stage's worst).
  finished: jax.Array  # bool[slots]: the slot holds an ended probe.

  @property
  def finished_ok(self) -> jax.Array:
    return self.finished & ~self.diverged

  def ended(self, trial, score, diverged) -> "Trials":
    """These trials with probe ``trial`` ended, scoring ``score``."""
    return Trials(self.lrs, self.scores.at[trial].set(score),
                  self.diverged.at[trial].set(diverged), self.finished.at[trial].set(True))


class Strategies(NamedTuple):
  """A mode's answers to the state machine's questions; traced arguments are
  arrays, ``stage`` and ``trial`` int32 scalars."""

  # Trial slots of the stage buffers: the most probes of any stage, or the
  # ladder's rungs (its diverged rungs need not count as probes).
  slots: int
  # (key) -> lr: the first probe's LR, before anything is known.
  initial_lr: Callable
  # (stage, held_lr, lr_ceiling, key) -> float32[slots]: a stage's trial LRs
  # at its start, its first probe's in slot 0; ``held_lr`` is what the last
  # stage exploited (0 after the warm-up).
  open_stage: Callable
  # (trials, stage, trial, ceiling, calls) -> lr: the LR of probe ``trial``
  # of the stage, the ended ones in ``trials`` (the last of them ended at
  # update call ``calls``); none at or above the unit LR ``ceiling``.
  propose: Callable
  # (trials, stage, trial, score, diverged, calls) -> bool: whether probe
  # ``trial``, ending with ``score`` at update call ``calls`` (counted from 1,
  # the warm-up's included), is the stage's last.
  search_ends: Callable
  # (losses, observed, tau_probe, tau) -> (score, diverged): an ended probe's
  # score before a divergence is made pessimistic.
  score: Callable
  # (trials, stage) -> (index, lr): the trial the stage exploits, and its LR.
  choose: Callable
  # (stage, phase_step) -> factor: the fraction of its trial's LR a probe step
  # applies (None: every probe step applies its trial's LR).
  probe_factor: Callable | None
  # (count) -> factor: what the anneal multiplies the LR of call ``count`` by
  # for the next one (None: no anneal).
  anneal_factor: Callable | None
  # Whether a stage's last probe, if chosen, goes on as its exploitation.
  keeps_winning_probe: bool
  # Whether a stage's last probe at an LR below the chosen one goes on as
  # its exploitation at the chosen LR: at once ('hot'), warming up ('warm'),
  # or not (None).
  keeps_lower_probe: str | None = None
  # (trials, stage, trial, losses, observed) -> what the ending probe
  # ``trial`` adds to its score (None: nothing).
  edge_penalty: Callable | None = None


def _best(trials: Trials, stage) -> tuple[jax.Array, jax.Array]:
  del stage
  index = _budget.best_index(trials.scores, trials.finished)
  return index, trials.lrs[index]


def _bo_proposal(space: LRSpace, acquisition: str, kappa: float, trials: Trials,
                 allowed) -> jax.Array:
  x_next, _ = bo.propose(space.to_unit(trials.lrs), trials.scores, trials.finished, space.grid,
                         acquisition=acquisition, kappa=kappa, allowed=allowed)
  return space.from_unit(x_next).astype(jnp.float32)


def paper(space: LRSpace, stages: _stages.StageSchedule, acquisition: str,
          kappa: float) -> Strategies:
  """The paper's AutoLRS: each stage's first probe at random below the
  ceiling, the next ones by BO, scored by the forecast after ``tau`` steps;
  the stage exploits the best forecast."""
  slots = stages.max_trials

  def open_stage(stage, held_lr, lr_ceiling, key):
    del stage, held_lr
    return jnp.zeros([slots], jnp.float32).at[0].set(space.random(key, lr_ceiling))

  def propose(trials, stage, trial, ceiling, calls):
    del stage, trial, calls
    return _bo_proposal(space, acquisition, kappa, trials, space.grid < ceiling)

  def search_ends(trials, stage, trial, score, diverged, calls):
    del trials, score, diverged, calls
    return trial == stages.trials(stage) - 1

  return Strategies(
      slots=slots, initial_lr=space.random, open_stage=open_stage, propose=propose,
      search_ends=search_ends, score=forecast_lib.forecast, choose=_best,
      probe_factor=None, anneal_factor=None, keeps_winning_probe=False)


def ladder_rungs(space: LRSpace, plan: _stages.BudgetPlan) -> int:
  """The ladder's LRs from ``max_lr`` down to ``min_lr``."""
  span = math.log(space.max_lr / space.min_lr) / math.log(plan.ladder_factor)
  return math.ceil(span - 1e-9) + 1


class _Budget(NamedTuple):
  """A budget plan's answers, its static context bound (see :func:`budget`)."""

  space: LRSpace
  stages: _stages.StageSchedule
  plan: _stages.BudgetPlan
  acquisition: str
  kappa: float
  warmup_steps: int

  @property
  def ladder(self) -> bool:
    return self.plan.first_search == "ladder"

  @property
  def ladder_only(self) -> bool:
    """The ladder is the only search (one stage): no GP or random proposal is
    compiled into the step, whose every call pays for the code it holds."""
    return self.ladder and self.stages.num_stages == 1

  @property
  def refinements(self) -> int:
    """Probes that refine the ladder's choice (``plan.refine``)."""
    return _stages.REFINE_PROBES.get(self.plan.refine, 0) if self.ladder else 0

  @property
  def ladder_slots(self) -> int:
    if self.ladder and not self.plan.count_diverged_rungs:
      return max(self.stages.max_trials, ladder_rungs(self.space, self.plan))
    return self.stages.max_trials

  @property
  def slots(self) -> int:
    return self.ladder_slots + self.refinements

  def incumbent(self, lrs, stage):
    """The LR the previous stage exploited, kept in the stage's last slot."""
    return lrs[self.stages.trials(stage) - 1]

  def region(self, lrs, stage):
    """The grid points a later stage may probe, within the plan's trust
    region around its incumbent."""
    grid = self.space.grid
    if self.plan.trust_region is None:
      return jnp.ones_like(grid, bool)
    width = _common.log(self.space.max_lr) - _common.log(self.space.min_lr)
    radius = math.log(self.plan.trust_region) / width
    centre = self.space.to_unit(self.incumbent(lrs, stage))
    return (stage == 0) | (jnp.abs(grid - centre) <= radius + 1e-6)

  def open_stage(self, stage, held_lr, lr_ceiling, key):
    """The ladder's first rung at ``max_lr``, or a random grid point in the
    region below the ceiling; the incumbent waits in the last slot."""
    lrs = jnp.zeros([self.slots], jnp.float32)
    max_lr = jnp.float32(self.space.max_lr)
    if self.ladder_only:
      return lrs.at[0].set(max_lr)
    lrs = lrs.at[self.stages.trials(stage) - 1].set(held_lr)
    grid, near = self.space.grid, self.region(lrs, stage)
    below = near & (grid < self.space.to_unit(lr_ceiling))
    near = jnp.where(jnp.any(below), below, near)
    lr = self.space.from_unit(jax.random.choice(key, grid, p=near / jnp.sum(near)))
    if self.ladder:
      lr = jnp.where(stage == 0, max_lr, lr)
    return lrs.at[0].set(lr)

  def choose(self, trials, stage):
    """The largest LR within ``prefer_larger`` of the best score, or below it
    the ladder's vertex in the first stage.

    By default the vertex never raises the choice: above the chosen rung the
    parabola leans towards an LR that scored worse, on the side where an LR
    held for the rest of the budget can diverge (``vertex_raises`` lets it).
    """
    if self.plan.prefer_larger > 0:
      index = _budget.largest_within(self.plan.prefer_larger, trials.lrs, trials.scores,
                                     trials.diverged, trials.finished)
      lr = trials.lrs[index]
    else:
      index, lr = _best(trials, stage)
    if not (self.ladder and self.plan.ladder_vertex) or self.refinements:
      return index, lr
    vertex, ok = _budget.parabola_vertex(trials.lrs, trials.scores, trials.diverged,
                                         trials.finished)
    if not self.plan.vertex_raises:
      vertex = jnp.minimum(vertex, lr)
    return index, jnp.where((stage == 0) & ok, vertex, lr)

  def searched(self, trials, stage, trial, ceiling, calls):
    """BO's proposal below ``ceiling`` in the stage's region (its lowest point
    if none of it is below), or in the first stage the ladder's next rung, or
    once the ladder is over its refinement."""
    def by_bo():
      grid = self.space.grid
      allowed, near = grid < ceiling, self.region(trials.lrs, stage)
      lowest = grid == grid[jnp.argmax(near)]
      return _bo_proposal(self.space, self.acquisition, self.kappa, trials,
                          jnp.where(jnp.any(allowed & near), allowed & near, lowest))
    if not self.ladder:
      return by_bo()
    rung = lambda: self.rung_or_refinement(trials, trial, calls)
    return rung() if self.ladder_only else jax.lax.cond(stage == 0, rung, by_bo)

  def propose(self, trials, stage, trial, ceiling, calls):
    """:meth:`searched`, but a stage's last trial is the one that may be kept:
    later stages re-measure the incumbent against their other trials; the
    first stage (and a stage whose incumbent is above an LR that diverged)
    runs its choice so far, so that training goes on from it. The ladder's
    last rung is its next LR."""
    lr = self.searched(trials, stage, trial, ceiling, calls)
    if self.ladder_only or not self.plan.keep_winning_probe:  # The ladder's last is a rung.
      return lr
    is_last = trial == self.stages.trials(stage) - 1
    if self.ladder:
      is_last &= stage > 0
    held = self.incumbent(trials.lrs, stage)
    safe = self.space.to_unit(held) < ceiling
    designated = jnp.where((stage > 0) & safe, held, trials.lrs[self.choose(trials, stage)[0]])
    return jnp.where(is_last & jnp.any(trials.finished_ok), designated, lr)

  def ladder_over(self, trials, trial, score, diverged, calls):
    """Whether the ladder has no rung left after probe ``trial`` (ending with
    ``score`` at call ``calls``, not yet in ``trials``): it is full or passed
    its best LR."""
    tau_probe, _ = self.stages.lengths(0)
    full = _budget.ladder_full(self.plan, trials.finished_ok, diverged, trial, self.ladder_slots,
                               self.stages.trials(0), tau_probe, calls - self.warmup_steps)
    passed = _budget.ladder_passed(self.plan, trials.scores, trials.finished_ok, score, diverged,
                                   trials.lrs[trial], self.space.min_lr)
    return full | passed

  def refinement(self, trials, k):
    """``(lr, ok)`` of the ``k``-th probe refining the ladder's choice."""
    return _budget.refinement_lr(self.plan, k, trials.lrs, trials.scores, trials.diverged,
                                 trials.finished)

  def rung_or_refinement(self, trials, trial, calls):
    """The first stage's next LR: the ladder's next rung, or once the ladder
    is over (the search goes on only to refine it) the next refinement."""
    rung = _budget.next_rung(self.plan, trials.lrs[trial - 1], self.space.min_lr)
    if not self.refinements:
      return rung.astype(jnp.float32)
    ended = trial - 1
    before = trials._replace(finished=trials.finished.at[ended].set(False))
    over = self.ladder_over(before, ended, trials.scores[ended], trials.diverged[ended], calls)
    done = _budget.refinements_done(trials.lrs, trials.finished)
    refined, _ = self.refinement(trials, done)
    return jnp.where(over | (done > 0), refined, rung).astype(jnp.float32)

  def search_ends(self, trials, stage, trial, score, diverged, calls):
    """The stage's trials are done, or in the first stage the ladder is over
    and, with ``plan.refine``, its refinements are done (or it has none to
    run: its best rung lacks a neighbour that did not diverge)."""
    last_trial = trial == self.stages.trials(stage) - 1
    if not self.ladder:
      return last_trial
    over = self.ladder_over(trials, trial, score, diverged, calls)
    if self.refinements:
      recorded = trials.ended(trial, score, diverged)
      done = _budget.refinements_done(recorded.lrs, recorded.finished)
      _, refinable = self.refinement(recorded, 0)
      over = jnp.where(done > 0, done >= self.refinements, over & ~refinable)
    return jnp.where(stage == 0, over, last_trial)

  def edge_penalty(self, trials, stage, trial, losses, observed):
    """The plan's ``edge_margin`` of noise, added to the score of the first
    stage's rung below one that diverged; 0 to any other probe's."""
    at_edge = (stage == 0) & _budget.below_a_diverged_rung(trials.lrs, trials.diverged, trial)
    penalty = _budget.edge_penalty(self.plan.edge_margin, losses, observed)
    return jnp.where(at_edge, penalty, 0.0)

  def probe_factor(self, stage, phase_step):
    tau_probe, _ = self.stages.lengths(stage)
    return _budget.probe_factor(self.plan, tau_probe, phase_step)


def budget(space: LRSpace, stages: _stages.StageSchedule, plan: _stages.BudgetPlan,
           acquisition: str, kappa: float, warmup_steps: int) -> Strategies:
  """A budget's AutoLRS, as ``plan`` says: the first stage searches by the
  descending ladder (or BO), later stages by BO in a trust region around the
  incumbent, re-measured in their last slot; probes scored by the plan's rule;
  the largest LR near the best, or below it the ladder's vertex; the last
  probe kept when chosen; the anneal at the end."""
  b = _Budget(space, stages, plan, acquisition, kappa, warmup_steps)
  initial_lr = (lambda key: jnp.float32(space.max_lr)) if b.ladder else space.random
  anneal = None
  if stages.anneal_steps:
    anneal = functools.partial(_budget.anneal_factor, plan, stages.total_steps,
                               stages.anneal_steps)
  return Strategies(
      slots=b.slots, initial_lr=initial_lr, open_stage=b.open_stage, propose=b.propose,
      search_ends=b.search_ends, score=functools.partial(_budget.score, plan), choose=b.choose,
      probe_factor=b.probe_factor, anneal_factor=anneal,
      keeps_winning_probe=plan.keep_winning_probe, keeps_lower_probe=plan.keep_lower_probe,
      edge_penalty=b.edge_penalty if b.ladder and plan.edge_margin is not None else None)
