"""Diversity metrics of a team of models (NumPy, vectorised over teams).

The metrics of Kuncheva & Whitaker (2003) as EnsembleBench's ``groupMetrics``
computes them. Pair statistics are computed once for a whole pool; the metrics
of many teams then follow from them by products with the teams' masks.
"""

from typing import NamedTuple

import jax
import numpy as np

# Names of the diversity metrics, in EnsembleBench's order.
DIVERSITY_METRICS = ("CK", "QS", "BD", "FK", "KW", "GD")
_UNDEFINED_TOLERANCE = 1e-12


class _PairStatistics(NamedTuple):
  """Per-pair quantities of a pool of models on one set of samples."""

  agreement: np.ndarray  # (M, M) fraction of samples with equal labels.
  chance_agreement: np.ndarray  # (M, M) sum_c f_i(c) f_j(c).
  cohen_kappa: np.ndarray  # (M, M)
  q_statistic: np.ndarray  # (M, M)
  disagreement: np.ndarray  # (M, M) fraction where exactly one is correct.
  correct: np.ndarray  # (M, N) oracle outputs, float.


def predicted_labels(logits: jax.typing.ArrayLike) -> np.ndarray:
  """Each member's argmax (lowest index on ties), shape ``(M, N)``."""
  logits = np.asarray(logits)
  if logits.ndim != 3:
    raise ValueError(
        f"logits must have shape (M, N, C), got shape {logits.shape}")
  return np.argmax(logits, axis=-1)


def oracle_outputs(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Whether each member is correct on each sample, bool ``(L, N)``."""
  predictions, labels = _check_team_predictions(predictions, labels)
  return predictions == labels[None, :]


def pair_statistics(predictions: np.ndarray,
                     labels: np.ndarray) -> _PairStatistics:
  """Pairwise statistics of every pair of rows of ``predictions`` ``(M, N)``."""
  num_models, num_samples = predictions.shape
  correct = (predictions == labels[None, :]).astype(np.float64)
  wrong = 1.0 - correct
  # Label agreement, for Cohen's and Fleiss' kappa.
  agreement = np.mean(predictions[:, None, :] == predictions[None, :, :], -1)
  _, codes = np.unique(predictions, return_inverse=True)
  codes = codes.reshape(num_models, num_samples)
  num_codes = int(codes.max()) + 1
  offsets = np.arange(num_models)[:, None] * num_codes
  frequencies = np.bincount(
      (codes + offsets).ravel(), minlength=num_models * num_codes
  ).reshape(num_models, num_codes) / num_samples
  chance = frequencies @ frequencies.T
  undefined = 1.0 - chance <= _UNDEFINED_TOLERANCE
  kappa = np.where(
      undefined, 1.0,
      (agreement - chance) / np.where(undefined, 1.0, 1.0 - chance))
  # Oracle counts: n11 both correct, n00 both wrong, n10 i correct j wrong.
  n11 = correct @ correct.T
  n00 = wrong @ wrong.T
  n10 = correct @ wrong.T
  n01 = n10.T
  numerator = n11 * n00 - n01 * n10
  denominator = n11 * n00 + n01 * n10
  q = np.where(denominator > 0,
               numerator / np.where(denominator > 0, denominator, 1.0), 0.0)
  disagreement = (n01 + n10) / num_samples
  return _PairStatistics(agreement, chance, kappa, q, disagreement, correct)


def _mean_over_pairs(pair_values: np.ndarray,
                     team_masks: np.ndarray) -> np.ndarray:
  """Mean of ``pair_values[i, j]`` over unordered member pairs of each team."""
  off_diagonal = pair_values * (1.0 - np.eye(pair_values.shape[0]))
  size = team_masks.sum(axis=1)
  ordered_sum = np.sum((team_masks @ off_diagonal) * team_masks, axis=1)
  return ordered_sum / (size * (size - 1))


def team_metrics(stats: _PairStatistics, team_masks: np.ndarray) -> np.ndarray:
  """Raw metrics (CK, QS, BD, FK, KW, GD) of each team, shape ``(T, 6)``.

  Args:
    stats: pair statistics of the whole pool.
    team_masks: float ``(T, M)``, 1 where the model is in the team (>= 2).
  """
  size = team_masks.sum(axis=1)
  ck = _mean_over_pairs(stats.cohen_kappa, team_masks)
  qs = _mean_over_pairs(stats.q_statistic, team_masks)
  bd = _mean_over_pairs(stats.disagreement, team_masks)
  # Fleiss: observed agreement = mean pairwise agreement; chance agreement =
  # sum_c p_c^2 with p_c the team's mean class frequency.
  observed = _mean_over_pairs(stats.agreement, team_masks)
  chance = np.sum((team_masks @ stats.chance_agreement) * team_masks,
                  axis=1) / size**2
  undefined = 1.0 - chance <= _UNDEFINED_TOLERANCE
  fk = np.where(undefined, 1.0,
                (observed - chance) / np.where(undefined, 1.0, 1.0 - chance))
  num_correct = team_masks @ stats.correct  # (T, N)
  num_wrong = size[:, None] - num_correct
  kw = np.mean(num_correct * num_wrong, axis=1) / size**2
  p1 = np.mean(num_wrong, axis=1) / size
  p2 = np.mean(num_wrong * (num_wrong - 1), axis=1) / (size * (size - 1))
  gd = np.where(p1 > 0, 1.0 - p2 / np.where(p1 > 0, p1, 1.0), 0.0)
  return np.stack([ck, qs, bd, fk, kw, gd], axis=1)


def lower_is_more_diverse(raw: np.ndarray) -> np.ndarray:
  """EnsembleBench's conversion: BD, KW and GD become one minus themselves."""
  converted = raw.copy()
  for name in ("BD", "KW", "GD"):
    column = DIVERSITY_METRICS.index(name)
    converted[..., column] = 1.0 - raw[..., column]
  return converted


def _check_team_predictions(predictions, labels=None):
  predictions = np.asarray(predictions)
  if predictions.ndim != 2 or predictions.shape[1] == 0:
    raise ValueError("predictions must have shape (L, N) with N >= 1, got "
                     f"{predictions.shape}")
  if not np.issubdtype(predictions.dtype, np.integer):
    raise ValueError("predictions must be integer labels (use "
                     "predicted_labels(logits)), got dtype "
                     f"{predictions.dtype}")
  if labels is None:
    return predictions, None
  labels = np.asarray(labels)
  if labels.shape != predictions.shape[1:]:
    raise ValueError(f"labels must have shape ({predictions.shape[1]},), got "
                     f"{labels.shape}")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
  return predictions, labels


def _single_team_metrics(predictions, labels=None) -> np.ndarray:
  predictions, labels = _check_team_predictions(predictions, labels)
  if predictions.shape[0] < 2:
    raise ValueError("diversity needs a team of at least 2 members, got "
                     f"{predictions.shape[0]}")
  if labels is None:  # Label-only metrics: any labels do.
    labels = predictions[0]
  stats = pair_statistics(predictions, labels)
  return team_metrics(stats, np.ones((1, predictions.shape[0])))[0]


def pairwise_cohen_kappa(predictions: np.ndarray) -> float:
  """Cohen's kappa on predicted labels, averaged over member pairs.

  ``kappa_ij = (p_o - p_e) / (1 - p_e)``, ``p_o`` the fraction of samples on
  which members i and j predict the same label, ``p_e = sum_c f_i(c) f_j(c)``
  with ``f_i(c)`` the fraction of samples i labels ``c`` (as sklearn's
  ``cohen_kappa_score``); 1 when ``p_e = 1``. Identical members: 1; lower is
  more diverse.

  Args:
    predictions: predicted labels, shape ``(L, N)``, ``L >= 2``.

  Returns:
    Mean pairwise kappa in ``[-1, 1]``.
  """
  return float(_single_team_metrics(predictions)[0])


def q_statistic(predictions: np.ndarray, labels: np.ndarray) -> float:
  """Yule's Q-statistic of correctness, averaged over member pairs.

  ``Q_ij = (N11 N00 - N01 N10) / (N11 N00 + N01 N10)`` with ``Nab`` the number
  of samples where i is correct (a = 1) or not (0) and j is (b). 0 when the
  denominator is 0. In ``[-1, 1]``; lower is more diverse.

  Args:
    predictions: predicted labels, shape ``(L, N)``, ``L >= 2``.
    labels: true labels, shape ``(N,)``.

  Returns:
    Mean pairwise Q.
  """
  return float(_single_team_metrics(predictions, labels)[1])


def binary_disagreement(predictions: np.ndarray, labels: np.ndarray) -> float:
  """Fraction of samples where exactly one of two members is correct.

  ``D_ij = (N01 + N10) / N``, averaged over member pairs. In ``[0, 1]``;
  HIGHER is more diverse (EnsembleBench uses ``1 - D``).

  Args:
    predictions: predicted labels, shape ``(L, N)``, ``L >= 2``.
    labels: true labels, shape ``(N,)``.

  Returns:
    Mean pairwise disagreement.
  """
  return float(_single_team_metrics(predictions, labels)[2])


def fleiss_kappa(predictions: np.ndarray) -> float:
  """Fleiss' kappa of the members as raters of the samples' labels.

  ``(P_bar - P_e) / (1 - P_e)``: ``P_bar`` is the mean over samples of the
  fraction of agreeing member pairs, ``P_e = sum_c p_c^2`` with ``p_c`` the
  fraction of all predictions that are ``c`` (as statsmodels' ``fleiss_kappa``
  on ``aggregate_raters``); 1 when ``P_e = 1``. Lower is more diverse.

  Args:
    predictions: predicted labels, shape ``(L, N)``, ``L >= 2``.

  Returns:
    Fleiss' kappa, at most 1.
  """
  return float(_single_team_metrics(predictions)[3])


def kohavi_wolpert_variance(predictions: np.ndarray,
                            labels: np.ndarray) -> float:
  """Kohavi-Wolpert variance of correctness.

  ``KW = 1 / (N L^2) sum_n l_n (L - l_n)``, ``l_n`` the number of members
  correct on sample n. In ``[0, 1/4]``; HIGHER is more diverse (EnsembleBench
  uses ``1 - KW``).

  Args:
    predictions: predicted labels, shape ``(L, N)``, ``L >= 2``.
    labels: true labels, shape ``(N,)``.

  Returns:
    The KW variance.
  """
  return float(_single_team_metrics(predictions, labels)[4])


def generalized_diversity(predictions: np.ndarray, labels: np.ndarray) -> float:
  """Generalized diversity of Partridge & Krzanowski.

  With ``p_i`` the fraction of samples on which exactly ``i`` of the ``L``
  members fail, ``p(1) = sum_i i/L p_i`` (a random member fails) and
  ``p(2) = sum_i i(i-1)/(L(L-1)) p_i`` (two random distinct members both
  fail), ``GD = 1 - p(2)/p(1)``; 0 when no member fails. In ``[0, 1]``:
  0 when failures coincide, 1 when one failure never comes with another;
  HIGHER is more diverse (EnsembleBench uses ``1 - GD``).

  Args:
    predictions: predicted labels, shape ``(L, N)``, ``L >= 2``.
    labels: true labels, shape ``(N,)``.

  Returns:
    GD.
  """
  return float(_single_team_metrics(predictions, labels)[5])


def focal_diversity_metrics(predictions: np.ndarray,
                            labels: np.ndarray) -> dict[str, float]:
  """All six metrics, converted so that LOWER IS MORE DIVERSE everywhere.

  As EnsembleBench's ``calDiversityMetric``: ``CK`` (pairwise Cohen's kappa),
  ``QS`` (Q-statistic), ``BD`` (1 - binary disagreement), ``FK`` (Fleiss'
  kappa), ``KW`` (1 - Kohavi-Wolpert variance), ``GD`` (1 - generalized
  diversity). Computed on the samples given; focal diversity passes the focal
  model's negative samples.

  Args:
    predictions: predicted labels, shape ``(L, N)``, ``L >= 2``.
    labels: true labels, shape ``(N,)``.

  Returns:
    ``{name: score}`` for the names in ``DIVERSITY_METRICS``.
  """
  converted = lower_is_more_diverse(_single_team_metrics(predictions, labels))
  return {name: float(v) for name, v in zip(DIVERSITY_METRICS, converted)}
