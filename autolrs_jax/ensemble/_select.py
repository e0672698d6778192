"""Exhaustive and greedy ensemble selection, and evaluation on a test split."""

from typing import Callable

import jax
import numpy as np

from autolrs_jax.ensemble._combine import accuracy
from autolrs_jax.ensemble._combine import soft_vote
from autolrs_jax.ensemble._teams import best_team
from autolrs_jax.ensemble._teams import check_pool
from autolrs_jax.ensemble._teams import check_team_count
from autolrs_jax.ensemble._teams import DEFAULT_MAX_TEAMS
from autolrs_jax.ensemble._teams import make_selection
from autolrs_jax.ensemble._teams import member_probabilities
from autolrs_jax.ensemble._teams import nll_of_true_probs
from autolrs_jax.ensemble._teams import score_teams
from autolrs_jax.ensemble._teams import Selection
from autolrs_jax.ensemble._teams import true_class

GREEDY_METRICS = ("accuracy", "nll")
_NLL_DECIMALS = 12


def exhaustive_selection(logits: jax.typing.ArrayLike,
                         labels: jax.typing.ArrayLike,
                         max_size: int | None = None,
                         combiner: Callable = soft_vote,
                         *,
                         max_teams: int = DEFAULT_MAX_TEAMS) -> Selection:
  """Brute force: evaluates every team of 1..``max_size`` distinct members.

  The best team has the highest validation accuracy under ``combiner``; ties
  go to the lower validation NLL of the team's soft vote, then to the smaller
  team, then to the lexicographically first member indices.

  Args:
    logits: validation logits of the pool, shape ``(M, N, C)``.
    labels: validation labels, shape ``(N,)``.
    max_size: largest team size, in ``[1, M]``; default ``M``.
    combiner: JAX-traceable ``(K, N, C) logits -> (N, C) scores or (N,)
      labels``, e.g. :func:`soft_vote` or :func:`plurality_vote`.
    max_teams: guard on the number of teams evaluated.

  Returns:
    The selection (``method="exhaustive"``).

  Raises:
    ValueError: on a malformed pool, a ``max_size`` out of range, or more than
      ``max_teams`` teams.
  """
  logits, labels = check_pool(logits, labels)
  num_models = logits.shape[0]
  if max_size is None:
    max_size = num_models
  if not 1 <= max_size <= num_models:
    raise ValueError(f"max_size must be in [1, {num_models}], got {max_size}")
  sizes = range(1, max_size + 1)
  check_team_count(num_models, sizes, max_teams)
  scored = list(score_teams(logits, labels, sizes, combiner).values())
  teams = [tuple(int(m) for m in t) for s in scored for t in s.teams]
  best = best_team(teams, np.concatenate([s.accuracy for s in scored]),
                   np.concatenate([s.nll for s in scored]))
  return make_selection("exhaustive", teams[best], logits, labels, combiner)


def _soft_vote_scores(probs: np.ndarray,
                      labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Accuracy and NLL of (batches of) ensemble probabilities ``(..., N, C)``."""
  acc = np.mean(np.argmax(probs, axis=-1) == labels, axis=-1)
  return acc, nll_of_true_probs(true_class(probs, labels))


def _rank(acc: np.ndarray, nll: np.ndarray, metric: str,
          tie_break: np.ndarray) -> np.ndarray:
  """Indices from best to worst under ``metric``, then the other, then
  ``tie_break`` (ascending). NLLs equal to 12 decimals tie, so that rounding
  noise (e.g. of a member averaged with its own repeats) breaks no tie."""
  nll = np.round(nll, _NLL_DECIMALS)
  if metric == "nll":
    return np.lexsort((tie_break, -acc, nll))
  return np.lexsort((tie_break, nll, -acc))


def greedy_selection(logits: jax.typing.ArrayLike,
                     labels: jax.typing.ArrayLike,
                     max_size: int,
                     *,
                     metric: str = "accuracy",
                     init_size: int = 1) -> Selection:
  """Forward selection with replacement (Caruana et al., 2004).

  Starts from the ``init_size`` best single models ("sorted ensemble
  initialization"; ``init_size=1``: the best single model). Each round adds
  the pool model (possibly one already in) whose addition gives the best
  validation ``metric`` of the soft vote, until the ensemble has ``max_size``
  members. A round adds the best candidate even if it makes things worse,
  since later additions may recover; as in Caruana et al., the returned
  ensemble is the best of the nested ensembles built (ties: the smaller), so
  it is never worse under ``metric`` than the best ``init_size`` start.

  The default metric is ``"accuracy"``, ties broken by the NLL of the soft
  vote: accuracy is what the other selectors and the caller report, and
  Caruana et al. hill-climb the target metric. Accuracy alone is a step
  function whose plateaus leave many candidates tied; the NLL tie-break gives
  the climb a direction there. NLL alone (``"nll"``, ties broken by accuracy)
  suits calibration goals, but is a poor proxy for accuracy: averaging
  under-confident members can raise the NLL while it raises accuracy, and the
  climb then stops at one model. Remaining ties go to the lower pool index.

  Args:
    logits: validation logits of the pool, shape ``(M, N, C)``.
    labels: validation labels, shape ``(N,)``.
    max_size: number of members (with repeats) after the last round, at
      least ``init_size``.
    metric: ``"accuracy"`` (default) or ``"nll"``.
    init_size: number of best single models to start from, in ``[1, M]``.

  Returns:
    The selection (``method="greedy"``); ``members`` repeats models chosen
    several times, ``weights`` are the pick counts over ``len(members)``; the
    combiner is :func:`soft_vote` (weighted by the repeats).
  """
  logits, labels = check_pool(logits, labels)
  num_models = logits.shape[0]
  if metric not in GREEDY_METRICS:
    raise ValueError(f"metric must be one of {GREEDY_METRICS}, got {metric!r}")
  if not 1 <= init_size <= num_models:
    raise ValueError(f"init_size must be in [1, {num_models}], got {init_size}")
  if max_size < init_size:
    raise ValueError(f"max_size ({max_size}) must be >= init_size "
                     f"({init_size})")
  probs = member_probabilities(logits)
  model_order = np.arange(num_models)
  single_acc, single_nll = _soft_vote_scores(probs, labels)
  members = [int(m) for m in
             _rank(single_acc, single_nll, metric, model_order)[:init_size]]
  total = probs[members].sum(axis=0)
  history_acc, history_nll = _soft_vote_scores(total / len(members), labels)
  history_acc, history_nll = [history_acc], [history_nll]
  while len(members) < max_size:
    candidates = (total[None] + probs) / (len(members) + 1)
    acc, nll = _soft_vote_scores(candidates, labels)
    best = int(_rank(acc, nll, metric, model_order)[0])
    members.append(best)
    total = total + probs[best]
    history_acc.append(acc[best])
    history_nll.append(nll[best])
  num_rounds = len(history_acc)
  best_prefix = int(_rank(np.array(history_acc), np.array(history_nll), metric,
                          np.arange(num_rounds))[0])
  return make_selection("greedy", members[:init_size + best_prefix], logits,
                        labels, soft_vote)


def evaluate_selection(selection: Selection, test_logits: jax.typing.ArrayLike,
                       test_labels: jax.typing.ArrayLike) -> float:
  """Test accuracy of a selected ensemble.

  Args:
    selection: the result of a selector, fitted on validation.
    test_logits: the same pool's test logits, shape ``(M, N, C)``.
    test_labels: test labels, shape ``(N,)``.

  Returns:
    Accuracy of ``selection.combiner(test_logits[selection.members])``.
  """
  test_logits, test_labels = check_pool(test_logits, test_labels)
  if test_logits.shape[0] != len(selection.weights):
    raise ValueError(f"test_logits holds {test_logits.shape[0]} models but the "
                     f"selection was made from {len(selection.weights)}")
  team_logits = test_logits[np.array(selection.members)]
  return float(accuracy(selection.combiner(team_logits), test_labels))
