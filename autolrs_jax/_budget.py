"""The mechanisms of AutoLRS with a budget, each a small pure function.

:class:`autolrs_jax.BudgetPlan` names them; :func:`autolrs_jax._strategies.budget`
composes them into the answers the state machine of :mod:`autolrs_jax._autolrs`
asks for, on the stage's trial arrays (``lrs``, ``scores``, ``diverged``,
``finished``: one entry per trial slot), so that a new mechanism is one
function here, one field of the plan, its use there, and its test.

- How a probe is scored: :data:`SCORES` (the paper's forecast, the fit at the
  probe's end, or the loss after a short cooldown), and at the edge of
  stability :func:`edge_penalty`.
- How a probe's LR is shaped over its steps: :func:`probe_factor` (a warm-up
  ramp, a cooldown).
- How the first stage searches: a descending ladder (:func:`next_rung`,
  :func:`ladder_passed`, :func:`ladder_full`).
- How the stage's LR is chosen: :func:`largest_within` (the largest LR near
  the best score) and :func:`parabola_vertex` (between the ladder's rungs),
  or probed first (:func:`refinement_lr`).
- How the hold is guarded: :func:`lost_progress`.
- How the budget ends: :func:`anneal_factor`.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from autolrs_jax import _stages
from autolrs_jax import forecast as forecast_lib

# --- Scores: (plan, losses, observed, tau_probe, tau) -> (score, diverged) ---


def _forecast_score(plan, losses, observed, tau_probe, tau):
  """The paper's: the probe's fit, extrapolated to the stage's ``tau`` steps."""
  del plan
  return forecast_lib.forecast(losses, observed, tau_probe, tau)


def _end_score(plan, losses, observed, tau_probe, tau):
  """The probe's fit at its own last step: no extrapolation."""
  del plan, tau
  return forecast_lib.forecast(losses, observed, tau_probe, tau_probe - 1)


def _cooldown_score(plan, losses, observed, tau_probe, tau):
  """The mean loss over the second half of the probe's cooldown: the loss this
  LR would give if annealed now (:func:`probe_factor` cools the probe)."""
  _, diverged = forecast_lib.forecast(losses, observed, tau_probe, tau)
  steps = jnp.arange(losses.shape[0])
  tail = observed & jnp.isfinite(losses) & (
      steps >= tau_probe - jnp.maximum(cooldown_steps(plan, tau_probe) // 2, 1))
  return jnp.sum(jnp.where(tail, losses, 0.0)) / jnp.maximum(jnp.sum(tail), 1), diverged


def _log_forecast_score(plan, losses, observed, tau_probe, tau):
  """The paper's forecast of the log-loss: a probe is judged by the factor its
  loss falls by, whatever the loss's scale, and its forecast stays within the
  factors it saw (``lo**2 / hi`` at least) instead of reaching 0. A series
  with a loss at or below 0 falls back to the plain forecast."""
  positive = jnp.all(jnp.where(observed, losses > 0, True))
  logs = jnp.log(jnp.where(observed & (losses > 0), losses, 1.0))
  value, diverged = _forecast_score(plan, jnp.where(positive, logs, losses), observed,
                                    tau_probe, tau)
  return jnp.where(positive, jnp.exp(value), value), diverged


SCORES: dict[str, Callable] = {
    "forecast": _forecast_score,
    "log-forecast": _log_forecast_score,
    "end": _end_score,
    "cooldown": _cooldown_score,
}
assert tuple(SCORES) == _stages.SCORES


def score_floor(plan: _stages.BudgetPlan, losses, observed) -> jax.Array:
  """The lowest score of a probe whose loss was never negative: 0, or with
  ``forecast_floor='factor'`` its last quarter's median times the factor its
  loss fell by from its first quarter's (1 if it did not fall)."""
  if plan.forecast_floor == "zero":
    return jnp.zeros([], jnp.float32)
  _, start, end = forecast_lib.first_and_last_quarter(losses, observed)
  fell_by = jnp.where(start > 0, jnp.clip(end / jnp.where(start > 0, start, 1.0), 0.0, 1.0), 0.0)
  return jnp.nan_to_num(end * fell_by)


def score(plan: _stages.BudgetPlan, losses, observed, tau_probe, tau):
  """``(score, diverged)`` of an ended probe by the plan's rule; a loss that was
  never negative is not scored below :func:`score_floor`. With
  ``stalled_diverges`` a probe whose loss did not fall diverged."""
  value, diverged = SCORES[plan.score](plan, losses, observed, tau_probe, tau)
  if plan.stalled_diverges:
    diverged |= forecast_lib.stalled(losses, observed)
  never_negative = jnp.all(jnp.where(observed, losses >= 0, True))
  floor = score_floor(plan, losses, observed)
  return jnp.where(never_negative, jnp.maximum(value, floor), value), diverged


def below_a_diverged_rung(lrs, diverged, trial) -> jax.Array:
  """Whether probe ``trial`` runs below the probe before it, which diverged:
  the ladder's first rung under the edge of stability (a refinement probe,
  above the ladder's last rung, is none)."""
  before = jnp.maximum(trial - 1, 0)
  return (trial > 0) & (lrs[trial] < lrs[before]) & diverged[before]


def edge_penalty(margin: float, losses, observed) -> jax.Array:
  """What a rung next to one that diverged adds to its score: ``margin``
  standard errors of its probe's mean loss (:func:`forecast.noise` over the
  square root of its observed calls). At the edge of stability a rung that
  learns fastest in a short probe can end higher when held: it is held only
  where it beats the rung below by more than its noise."""
  calls = jnp.maximum(jnp.sum(observed & jnp.isfinite(losses)), 1).astype(jnp.float32)
  return margin * forecast_lib.noise(losses, observed) / jnp.sqrt(calls)


# --- The shape of a probe's LR ---------------------------------------------


def cooldown_steps(plan: _stages.BudgetPlan, tau_probe) -> jax.Array:
  """Steps at the end of a cooldown probe over which its LR decays."""
  return jnp.maximum(jnp.round(plan.cooldown_fraction * tau_probe), 1).astype(jnp.int32)


def warmup_steps(plan: _stages.BudgetPlan, tau_probe) -> jax.Array:
  """Steps at the start of a probe over which its LR ramps up."""
  return jnp.maximum(jnp.round(plan.probe_warmup * tau_probe), 1).astype(jnp.int32)


def ramp_up(step, steps) -> jax.Array:
  """The linear warm-up's fraction of the LR at step ``step`` of ``steps``:
  ``(step + 1) / (steps + 1)``, 1 from step ``steps`` on."""
  return jnp.minimum(1.0, (step + 1) / (steps + 1.0))


def probe_factor(plan: _stages.BudgetPlan, tau_probe, phase_step) -> jax.Array:
  """The fraction of its trial's LR that probe step ``phase_step`` applies.

  A probe warms up over its first ``probe_warmup`` fraction (``k / (w + 1)``,
  ``k = 1 .. w``) and, scored by ``'cooldown'``, decays over its last
  ``cooldown_steps`` (``k / (c + 1)``, ``k = c .. 1``); 1 otherwise.
  """
  factor = jnp.ones([], jnp.float32)
  if plan.probe_warmup > 0:
    factor = jnp.minimum(factor, ramp_up(phase_step, warmup_steps(plan, tau_probe)))
  if plan.score == "cooldown":
    factor = jnp.minimum(factor, (tau_probe - phase_step) / (cooldown_steps(plan, tau_probe) + 1.0))
  return jnp.clip(factor, 0.0, 1.0)


def drift_limit(drift_per_call: float | None, max_probe_drift: float, tau_probe) -> jax.Array:
  """How far, in snapshot norms, a probe's path may go: ``max_probe_drift``,
  or ``drift_per_call`` times the probe's calls (a bound on its mean step,
  whatever the probe's length)."""
  if drift_per_call is None:
    return jnp.asarray(max_probe_drift, jnp.float32)
  return drift_per_call * jnp.asarray(tau_probe, jnp.float32)


# --- The ladder --------------------------------------------------------------


def next_rung(plan: _stages.BudgetPlan, last_lr, min_lr: float) -> jax.Array:
  """The ladder's next LR: a factor below the last probed, at least ``min_lr``."""
  return jnp.maximum(last_lr / plan.ladder_factor, min_lr)


def ladder_passed(plan: _stages.BudgetPlan, scores, finished_ok, probe_score, probe_diverged,
                  probe_lr, min_lr: float) -> jax.Array:
  """Whether the ended probe scores worse than an LR above it, by more than
  ``ladder_plateau`` of that score, or hit ``min_lr``: the ladder has then
  passed the best LR of its descent."""
  best_above = jnp.min(jnp.where(finished_ok, scores, jnp.inf))
  worse = ~probe_diverged & ~scores_within(plan.ladder_plateau, probe_score, best_above)
  return worse | (probe_lr <= min_lr * (1 + 1e-6))


def ladder_full(plan: _stages.BudgetPlan, finished_ok, probe_diverged, trial, slots: int,
                planned_trials, tau_probe, calls_spent) -> jax.Array:
  """Whether the ladder has no probe left after the one that ends now.

  With ``count_diverged_rungs`` every rung counts against ``planned_trials``;
  otherwise only those that did not diverge, and the ladder also stops at its
  last slot or before its probes would take ``ladder_overrun`` times their
  planned calls (``calls_spent`` counts the ending probe's).
  """
  if plan.count_diverged_rungs:
    return trial == planned_trials - 1
  ok = jnp.sum(finished_ok) + (~probe_diverged).astype(jnp.int32)
  allowed = plan.ladder_overrun * planned_trials * tau_probe
  return (ok >= planned_trials) | (trial == slots - 1) | (calls_spent + tau_probe > allowed)


# --- The stage's choice --------------------------------------------------------


def scores_within(tolerance: float, score, best) -> jax.Array:
  """Whether ``score`` is at most ``tolerance`` (relative to ``|best|``) above
  ``best``; always when ``best`` is infinite (no score to compare with)."""
  margin = tolerance * jnp.abs(jnp.where(jnp.isfinite(best), best, 0.0))
  return score <= best + margin


def best_index(scores, finished) -> jax.Array:
  """Index of the finished trial with the lowest score."""
  return jnp.argmin(jnp.where(finished, scores, jnp.inf))


def largest_within(tolerance: float, lrs, scores, diverged, finished) -> jax.Array:
  """Index of the largest LR that did not diverge and scores within ``tolerance``
  (relative) of the best: short probes favour LRs below the best one for a
  whole budget. The best trial's when none qualifies."""
  best = best_index(scores, finished)
  top = scores[best]
  near = finished & ~diverged & scores_within(tolerance, scores, top)
  largest = jnp.argmax(jnp.where(near, lrs, -jnp.inf))
  return jnp.where(jnp.any(near), largest, best)


def parabola_vertex(lrs, scores, diverged, finished) -> tuple[jax.Array, jax.Array]:
  """``(lr, ok)``: the minimum of the parabola in log-LR through the
  best-scoring rung and the rungs above and below it (trial slots next to it).

  Its vertex lies between them: the ladder's coarse steps need not hold the
  best LR. ``ok`` is False without two neighbours that did not diverge (the
  best rung is the first or the last, or next to an LR that diverged: the
  edge of stability is no place to interpolate).
  """
  best = best_index(scores, finished)
  rungs = jnp.clip(best + jnp.arange(-1, 2), 0, lrs.shape[0] - 1)
  x, y = jnp.log(lrs[rungs]), scores[rungs]
  ok = (best >= 1) & (best + 1 < jnp.sum(finished)) & ~jnp.any(diverged[rungs])
  above, below = x[1] - x[0], x[1] - x[2]
  rise_above, rise_below = y[1] - y[0], y[1] - y[2]
  numerator = above**2 * rise_below - below**2 * rise_above
  denominator = above * rise_below - below * rise_above
  ok &= denominator != 0
  vertex = x[1] - 0.5 * numerator / jnp.where(ok, denominator, 1.0)
  vertex = jnp.clip(vertex, jnp.minimum(x[0], x[2]), jnp.maximum(x[0], x[2]))
  ok &= jnp.isfinite(vertex)
  return jnp.exp(vertex).astype(jnp.float32), ok


# --- Refining the ladder's choice ---------------------------------------------


def refinements_done(lrs, finished) -> jax.Array:
  """How many of the finished trials refine the ladder's choice.

  The ladder only descends (or stays at ``min_lr``), so that its first probe
  above the one before it is the first refinement, and every probe after it
  is one too.
  """
  rises = finished[1:] & (lrs[1:] > lrs[:-1])
  first = jnp.argmax(rises) + 1
  return jnp.where(jnp.any(rises), jnp.sum(finished) - first, 0).astype(jnp.int32)


def ladder_probes(lrs, finished) -> jax.Array:
  """Which finished trials are the ladder's rungs (not its refinements)."""
  done = refinements_done(lrs, finished)
  return finished & (jnp.arange(finished.shape[0]) < jnp.sum(finished) - done)


def refinement_lr(plan: _stages.BudgetPlan, k, lrs, scores, diverged,
                  finished) -> tuple[jax.Array, jax.Array]:
  """``(lr, ok)``: the LR of the ``k``-th probe refining the ladder's choice
  (``plan.refine``): the parabola's vertex ('vertex', on either side of the
  best rung), or half a rung above (``k = 0``) and below (``k = 1``) the best
  rung ('halves'). ``ok`` as :func:`parabola_vertex`'s: the best rung has two
  neighbours that did not diverge. Only the ladder's rungs are read."""
  rungs = ladder_probes(lrs, finished)
  vertex, ok = parabola_vertex(lrs, scores, diverged, rungs)
  if plan.refine == "vertex":
    return vertex, ok
  best = lrs[best_index(scores, rungs)]
  half = jnp.float32(plan.ladder_factor ** 0.5)
  return jnp.where(k == 0, best * half, best / half).astype(jnp.float32), ok


# --- The hold ------------------------------------------------------------------


def lost_progress(fraction: float, stage_loss, best, loss) -> jax.Array:
  """Whether an exploitation gave back ``fraction`` of what it gained, having
  gained at least ``fraction`` of its stage's starting loss.

  ``best`` is the lowest moving average of its losses so far and ``loss`` the
  current one. A short probe can favour an LR that trains in its first calls
  and collapses when held (back to chance, where the stage started); the
  armed condition keeps the noise of an exploitation that has not yet
  learned much from tripping it.
  """
  gained = stage_loss - best
  return (gained >= fraction * jnp.abs(stage_loss)) & (loss - best > fraction * gained)


# --- The end of the budget ---------------------------------------------------


def _left_of_anneal(plan: _stages.BudgetPlan, span: int, done) -> jax.Array:
  """The anneal's LR, up to its scale, after ``done`` of its ``span`` steps:
  ``span - done`` (linear) or ``sqrt(span) - sqrt(done)`` ('1-sqrt')."""
  done = jnp.clip(done, 0, span).astype(jnp.float32)
  if plan.anneal_shape == "1-sqrt":
    return jnp.sqrt(float(span)) - jnp.sqrt(done)
  return span - done


def anneal_factor(plan: _stages.BudgetPlan, total_steps: int, anneal_steps: int,
                  count) -> jax.Array:
  """What the anneal multiplies the LR of call ``count`` by for the next call.

  The anneal's calls ``E <= c < T`` (``E = T - anneal_steps``) go from the
  peak LR at ``E`` to 0 at ``T - 1`` in the plan's shape: linear, ``peak (T -
  1 - c) / (T - 1 - E)``, or '1-sqrt', ``peak (1 - sqrt((c - E) / (T - 1 -
  E)))``. Each call scales the LR by the shape's ratio from this call to the
  next; 0 from the last call on.
  """
  span = max(anneal_steps - 1, 1)
  done = count - (total_steps - anneal_steps)
  here = _left_of_anneal(plan, span, done)
  return jnp.where(here > 0, _left_of_anneal(plan, span, done + 1) / jnp.where(here > 0, here, 1.0),
                   0.0)
