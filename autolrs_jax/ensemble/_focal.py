"""Focal-diversity ensemble selection, after EnsembleBench.

The steps are numbered as in :func:`focal_diversity_selection`'s docstring:
:func:`_focal_views` does steps 3 and 4, :func:`_short_list` step 5. The
2-means thresholds use a small Lloyd's algorithm (no sklearn).
"""

import math
from typing import Callable

import jax
import numpy as np

from autolrs_jax.ensemble._combine import soft_vote
from autolrs_jax.ensemble._diversity import DIVERSITY_METRICS
from autolrs_jax.ensemble._diversity import lower_is_more_diverse
from autolrs_jax.ensemble._diversity import pair_statistics
from autolrs_jax.ensemble._diversity import team_metrics
from autolrs_jax.ensemble._teams import best_team
from autolrs_jax.ensemble._teams import check_pool
from autolrs_jax.ensemble._teams import check_team_count
from autolrs_jax.ensemble._teams import DEFAULT_MAX_TEAMS
from autolrs_jax.ensemble._teams import make_selection
from autolrs_jax.ensemble._teams import score_teams
from autolrs_jax.ensemble._teams import ScoredTeams
from autolrs_jax.ensemble._teams import Selection

_KMEANS_MAX_ITERATIONS = 100


def _two_means(points: np.ndarray, init: np.ndarray) -> tuple[np.ndarray,
                                                              np.ndarray]:
  """Lloyd's 2-means from ``init``; an emptied cluster keeps its centre.

  Returns:
    ``(assignment (P,), centres (2, D))``; distance ties go to cluster 0.
  """
  centres = init.astype(np.float64).copy()
  assignment = None
  for _ in range(_KMEANS_MAX_ITERATIONS):
    distances = np.sum((points[:, None, :] - centres[None]) ** 2, axis=-1)
    new_assignment = np.argmin(distances, axis=1)
    if assignment is not None and np.array_equal(new_assignment, assignment):
      break
    assignment = new_assignment
    for c in range(2):
      if np.any(assignment == c):
        centres[c] = points[assignment == c].mean(axis=0)
  return assignment, centres


def _scale01(x: np.ndarray) -> np.ndarray:
  """Min-max scaling to [0, 1]; a constant array becomes zeros."""
  span = x.max() - x.min()
  return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def _strategic_two_means(acc: np.ndarray, score: np.ndarray):
  """2-means of (accuracy, diversity score) from EnsembleBench's "strategic"
  init ``[[max acc, min score], [min acc, max score]]``, both features scaled
  to [0, 1] first.

  Returns:
    ``(assignment, scaled centres, index of the low-accuracy cluster)``, or
    ``None`` if a cluster ends up empty. The low-accuracy cluster is the one
    whose centre has the lower accuracy, or on a tie the higher score.
  """
  points = np.stack([_scale01(acc), _scale01(score)], axis=1)
  assignment, centres = _two_means(points, np.array([[1.0, 0.0], [0.0, 1.0]]))
  if not (np.any(assignment == 0) and np.any(assignment == 1)):
    return None
  low = min(range(2), key=lambda c: (centres[c, 0], -centres[c, 1]))
  return assignment, centres, low


def _kmeans_boundary_threshold(acc: np.ndarray, score: np.ndarray) -> float:
  """Smallest score in the low-accuracy cluster (EnsembleBench's
  ``getThresholdClusteringKMeans``); +inf when 2-means finds one cluster."""
  clusters = _strategic_two_means(acc, score)
  if clusters is None:
    return math.inf
  assignment, _, low = clusters
  return float(score[assignment == low].min())


def _kmeans_center_threshold(acc: np.ndarray, score: np.ndarray) -> float:
  """Score of the low-accuracy cluster's centre (EnsembleBench's
  ``getThresholdClusteringKMeansCenter``); +inf when 2-means finds one
  cluster."""
  clusters = _strategic_two_means(acc, score)
  if clusters is None:
    return math.inf
  _, centres, low = clusters
  return float(score.min() + centres[low, 1] * (score.max() - score.min()))


def _average_ranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks within each row (1 = smallest), ties share the mean rank."""
  lower = np.sum(values[..., :, None] > values[..., None, :], axis=-1)
  equal = np.sum(values[..., :, None] == values[..., None, :], axis=-1)
  return lower + (equal + 1) / 2.0


def _draw_negative_subsets(negatives: np.ndarray, num_samples: int,
                           num_repeats: int, seed: int) -> np.ndarray:
  """``num_repeats`` draws of ``num_samples`` negatives, with replacement."""
  rng = np.random.default_rng(seed)
  return rng.choice(negatives, size=(num_repeats, num_samples), replace=True)


def _check_focal_arguments(num_models: int, max_size: int | None,
                           metrics: tuple[str, ...], num_negative_samples: int,
                           num_repeats: int) -> tuple[int, tuple[str, ...]]:
  """Validates the arguments; returns ``max_size`` (default filled in) and
  ``metrics`` as a tuple."""
  if num_models < 3:
    raise ValueError(
        f"focal diversity selection needs at least 3 models, got {num_models}")
  if max_size is None:
    max_size = num_models - 1
  if not 2 <= max_size <= num_models - 1:
    raise ValueError(
        f"max_size must be in [2, {num_models - 1}], got {max_size}")
  metrics = tuple(metrics)
  unknown = [m for m in metrics if m not in DIVERSITY_METRICS]
  if not metrics or unknown:
    raise ValueError(f"metrics must be a non-empty subset of "
                     f"{DIVERSITY_METRICS}, got {metrics}")
  if num_negative_samples < 1 or num_repeats < 1:
    raise ValueError("num_negative_samples and num_repeats must be >= 1, got "
                     f"{num_negative_samples} and {num_repeats}")
  return max_size, metrics


def _focal_group_views(stats: list, group_masks: np.ndarray,
                       group_acc: np.ndarray,
                       columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
  """Step 4 for one focal model and the teams of one size that contain it.

  Args:
    stats: pair statistics of the pool on each subset of the focal model's
      negative samples.
    group_masks: ``(G, M)`` masks of the teams containing the focal model.
    group_acc: ``(G,)`` validation accuracies of those teams.
    columns: indices of the selected metrics in ``DIVERSITY_METRICS``.

  Returns:
    ``(passed, scaled)``, both ``(G, J)`` for the ``J`` metrics: whether the
    team's score is strictly below the threshold, and the score min-max
    normalised over the group.
  """
  scores = np.mean([
      lower_is_more_diverse(team_metrics(st, group_masks))[:, columns]
      for st in stats
  ], axis=0)
  thresholds = np.array([
      min(np.mean(column), _kmeans_boundary_threshold(group_acc, column))
      for column in scores.T
  ])
  scaled = np.stack([_scale01(column) for column in scores.T], axis=1)
  return scores < thresholds, scaled


def _focal_views(predictions: np.ndarray, labels: np.ndarray,
                 scored: dict[int, ScoredTeams], columns: list[int],
                 num_negative_samples: int, num_repeats: int,
                 seed: int) -> tuple[dict[int, np.ndarray],
                                     dict[int, np.ndarray]]:
  """Steps 3 and 4: every focal model's view of the teams containing it.

  Args:
    predictions: validation labels predicted by each member, ``(M, N)``.
    labels: validation labels, shape ``(N,)``.
    scored: the candidate teams by size.
    columns: indices of the selected metrics in ``DIVERSITY_METRICS``.
    num_negative_samples: size of each random subset of negative samples.
    num_repeats: number of random subsets per focal model.
    seed: seed of the subsets, re-used for every focal model.

  Returns:
    ``(passed, scaled)``: by team size, arrays ``(M, T, J)`` indexed by focal
    model, team and metric; ``passed`` is False and ``scaled`` NaN where the
    focal model is not in the team or has no negative samples.
  """
  num_models = predictions.shape[0]
  shapes = {k: (num_models, len(size_teams.teams), len(columns))
            for k, size_teams in scored.items()}
  passed = {k: np.zeros(shape, bool) for k, shape in shapes.items()}
  scaled = {k: np.full(shape, np.nan) for k, shape in shapes.items()}
  for focal in range(num_models):
    negatives = np.flatnonzero(predictions[focal] != labels)
    if negatives.size == 0:
      continue
    subsets = _draw_negative_subsets(negatives, num_negative_samples,
                                     num_repeats, seed)
    stats = [pair_statistics(predictions[:, s], labels[s]) for s in subsets]
    for k, size_teams in scored.items():
      in_group = size_teams.masks[:, focal] > 0
      passed[k][focal, in_group], scaled[k][focal, in_group] = (
          _focal_group_views(stats, size_teams.masks[in_group],
                             size_teams.accuracy[in_group], columns))
  return passed, scaled


def _team_scores(scaled: np.ndarray, members: np.ndarray,
                 team_ids: np.ndarray, member_acc: np.ndarray) -> np.ndarray:
  """Each team's score: its members' focal views of it, weighted by the
  members' accuracy ranks; a member without a view (NaN) weighs 0.

  Args:
    scaled: ``(M, T)`` normalised focal scores of one metric and team size.
    members: ``(P, k)`` members of the scored teams.
    team_ids: ``(P,)`` indices of those teams among the ``T``.
    member_acc: ``(M,)`` validation accuracy of each model.
  """
  views = scaled[members, team_ids[:, None]]  # (P, k)
  weights = np.where(np.isnan(views), 0.0,
                     _average_ranks(member_acc[members]))
  return np.sum(weights * np.nan_to_num(views), axis=1) / weights.sum(1)


def _short_list(passed: dict[int, np.ndarray], scaled: dict[int, np.ndarray],
                scored: dict[int, ScoredTeams],
                member_acc: np.ndarray) -> set[tuple[int, int]]:
  """Step 5: ``(size, team index)`` of the teams short-listed by any metric.

  Per metric and size, the teams passing for at least one focal model are
  scored by :func:`_team_scores`; those strictly below the score of the
  low-accuracy 2-means centre are kept. Every team when none is.
  """
  short_list = set()
  num_metrics = next(iter(passed.values())).shape[-1]
  for j in range(num_metrics):
    for k, size_teams in scored.items():
      team_ids = np.flatnonzero(passed[k][:, :, j].any(axis=0))
      if team_ids.size == 0:
        continue
      score = _team_scores(scaled[k][:, :, j], size_teams.teams[team_ids],
                           team_ids, member_acc)
      threshold = _kmeans_center_threshold(size_teams.accuracy[team_ids],
                                           score)
      short_list.update((k, int(t)) for t in team_ids[score < threshold])
  if not short_list:
    short_list = {(k, t) for k, size_teams in scored.items()
                  for t in range(len(size_teams.teams))}
  return short_list


def focal_diversity_selection(
    logits: jax.typing.ArrayLike,
    labels: jax.typing.ArrayLike,
    *,
    max_size: int | None = None,
    metrics: tuple[str, ...] = DIVERSITY_METRICS,
    combiner: Callable = soft_vote,
    num_negative_samples: int = 100,
    num_repeats: int = 3,
    seed: int = 2021,
    max_teams: int = DEFAULT_MAX_TEAMS,
) -> Selection:
  """Focal-diversity ensemble selection, after EnsembleBench.

  Steps (spec section C; EnsembleBench's focal-diversity demo):

  1. Team accuracy: ``combiner`` (soft voting by default) on validation.
  2. Candidates: every team of 2..``max_size`` distinct models.
  3. Focal scores: for each focal model f, its negative samples (validation
     samples f misclassifies); ``num_repeats`` random subsets of
     ``num_negative_samples`` of them, drawn with replacement with
     ``np.random.default_rng(seed)`` re-seeded per focal model (so all teams
     of one focal model see the same subsets, as EnsembleBench's
     ``calFocalDiversityScores`` re-seeds per call). Each team containing f
     gets each metric (lower = more diverse, see
     :func:`focal_diversity_metrics`) averaged over the subsets.
  4. Per (focal model, team size, metric): threshold = min(mean score,
     smallest score in the low-accuracy cluster of a 2-means of
     (team accuracy, score) from the strategic init); teams strictly below
     pass. Scores are then min-max normalised to [0, 1] within the group.
  5. Per (metric, size), every team passing for at least one focal model is
     scored by the average of its members' normalised focal scores weighted
     by the members' accuracy ranks; teams strictly below the score of the
     low-accuracy 2-means centre (of team accuracy, team score) are
     selected. The union over sizes and over ``metrics`` is the short list,
     and the final team is its member with the best validation accuracy
     (ties as in :func:`exhaustive_selection`).

  Decisions where the sources are silent, scale-dependent or buggy:

  * Sizes default to 2..M-1, as EnsembleBench's loop ``range(2, M)``: the
    whole pool is a single team and cannot be clustered. ``M >= 3`` needed.
  * 2-means is a small Lloyd's algorithm here (no sklearn); both features are
    min-max scaled first, since EnsembleBench clusters accuracy in percent
    against raw scores, so accuracy alone decided. A cluster left empty means
    one cluster: that threshold is +inf. On equal centre accuracies the
    cluster with the higher score is the low one.
  * Thresholds are compared unrounded (the demo rounds to 3 decimals).
  * A constant score is normalised to 0 (EnsembleBench leaves it raw).
  * Weights are 1-based average ranks of member validation accuracy
    (EnsembleBench uses ``np.argsort`` of the accuracies, which is an
    ordering, not a rank, and gives the least accurate member weight 0).
  * A focal model without negative samples contributes no score; a team is
    scored from its other members.
  * The short list combines metrics by union (the demo also reports an
    intersection of the three best metrics, chosen on accuracies, not done
    here). If it is empty, all candidate teams are considered.

  Args:
    logits: validation logits of the pool, shape ``(M, N, C)``, ``M >= 3``.
    labels: validation labels, shape ``(N,)``.
    max_size: largest team size, in ``[2, M - 1]``; default ``M - 1``.
    metrics: names from ``DIVERSITY_METRICS`` to select with.
    combiner: JAX-traceable combiner for team accuracy.
    num_negative_samples: size of each random subset of negative samples.
    num_repeats: number of random subsets per focal model.
    seed: seed of the subsets.
    max_teams: guard on the number of candidate teams.

  Returns:
    The selection (``method="focal_diversity"``), with the short list in
    ``candidates``.

  Raises:
    ValueError: on a malformed pool, fewer than 3 models, a bad ``max_size``,
      unknown metrics, or more than ``max_teams`` candidate teams.
  """
  logits, labels = check_pool(logits, labels)
  num_models = logits.shape[0]
  max_size, metrics = _check_focal_arguments(num_models, max_size, metrics,
                                             num_negative_samples, num_repeats)
  sizes = range(2, max_size + 1)
  check_team_count(num_models, sizes, max_teams)
  columns = [DIVERSITY_METRICS.index(m) for m in metrics]

  predictions = np.argmax(logits, axis=-1)
  member_acc = np.mean(predictions == labels, axis=1)
  scored = score_teams(logits, labels, sizes, combiner)
  passed, scaled = _focal_views(predictions, labels, scored, columns,
                                num_negative_samples, num_repeats, seed)
  short_list = _short_list(passed, scaled, scored, member_acc)

  ordered = sorted(short_list)
  candidate_teams = [tuple(int(m) for m in scored[k].teams[t])
                     for k, t in ordered]
  acc = np.array([scored[k].accuracy[t] for k, t in ordered])
  nll = np.array([scored[k].nll[t] for k, t in ordered])
  best = best_team(candidate_teams, acc, nll)
  return make_selection("focal_diversity", candidate_teams[best], logits,
                        labels, combiner, candidates=sorted(candidate_teams))
