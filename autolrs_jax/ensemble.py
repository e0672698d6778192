"""Ensembles from the models that learning-rate tuning trains anyway.

*After* LREnsemble (Jin & Wu, arXiv 2410.07564), **not a reproduction of it.**
LREnsemble observes that tuning a network under different learning-rate
policies yields a pool of diverse models, records every model trained during
tuning, and picks high-quality ensembles from that pool with ensemble-selection
algorithms. Only its abstract and a third-party summary could be read: its
selection algorithms, their parameters and its combination rule could not be
consulted. This module therefore offers verifiable building blocks instead:

* combiners: soft voting (mean of member softmax) and plurality voting;
* the diversity metrics of Kuncheva & Whitaker (2003) as EnsembleBench's
  ``groupMetrics`` computes them, and EnsembleBench's "lower is more diverse"
  convention for them (:func:`focal_diversity_metrics`);
* three selectors, all run on a VALIDATION split (reporting on a test split is
  the caller's job, see :func:`evaluate_selection`):

  - :func:`exhaustive_selection`, the "brute force" selection that the
    third-party summary of LREnsemble names;
  - :func:`greedy_selection`, forward selection with replacement of Caruana et
    al. (2004);
  - :func:`focal_diversity_selection`, the focal-diversity selection of
    EnsembleBench (same group as LREnsemble; *not* confirmed to be what
    LREnsemble uses).

Inputs: a pool of ``M`` models' logits of shape ``(M, N, C)`` and integer
labels of shape ``(N,)``. Combiners and :func:`accuracy` are JAX functions
(traceable, usable under ``vmap``); diversity metrics and searches use NumPy,
vectorised over teams.

Decisions taken where the sources are silent or scale-dependent:

* Ties: every ``argmax`` (plurality vote, accuracy) takes the lowest class
  index; teams tie-break by validation NLL of the soft vote, then size
  (smaller first), then lexicographic order of member indices.
* Undefined metrics: Cohen's and Fleiss' kappa are 1 when chance agreement is
  1 (all raters predict one single class); the Q-statistic of a pair is 0 when
  its denominator is 0 (EnsembleBench's ``eps`` guard); generalized diversity
  is 0 when no member ever fails.
* Greedy selection hill-climbs validation accuracy by default, NLL breaking
  ties (see :func:`greedy_selection` for why).
* Focal-diversity selection, see that function's docstring.

References:
  Kuncheva & Whitaker, `Measures of Diversity in Classifier Ensembles and
  Their Relationship with the Ensemble Accuracy
  <https://doi.org/10.1023/A:1022859003006>`_, Machine Learning 51, 2003.

  Partridge & Krzanowski, Software diversity: practical statistics for its
  measurement and exploitation, Information and Software Technology 39, 1997.

  Caruana, Niculescu-Mizil, Crew & Ksikes, `Ensemble Selection from Libraries
  of Models <https://doi.org/10.1145/1015330.1015432>`_, ICML 2004.

  Wu, Liu, Xie, Chow & Wei, Boosting Ensemble Accuracy by Revisiting Ensemble
  Diversity Metrics, CVPR 2021; code: git-disl/EnsembleBench
  (``EnsembleBench/groupMetrics.py``, ``teamSelection.py``,
  ``demo/FocalDiversityBasedEnsembleSelection.ipynb``).

  Jin & Wu, `LREnsemble <https://arxiv.org/abs/2410.07564>`_, 2024.
"""

import functools
import itertools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Names of the diversity metrics, in EnsembleBench's order.
DIVERSITY_METRICS = ("CK", "QS", "BD", "FK", "KW", "GD")
GREEDY_METRICS = ("accuracy", "nll")
DEFAULT_MAX_TEAMS = 2**16
# Largest gathered logits block (elements) evaluated at once by a combiner.
_CHUNK_ELEMENTS = 2**23
_KMEANS_MAX_ITERATIONS = 100
_UNDEFINED_TOLERANCE = 1e-12
_NLL_DECIMALS = 12

# -----------------------------------------------------------------------------
# Combiners and scores (JAX).
# -----------------------------------------------------------------------------


def _check_logits_shape(logits: jax.Array) -> None:
  if logits.ndim != 3:
    raise ValueError(
        f"logits must have shape (M, N, C), got shape {tuple(logits.shape)}")
  if logits.shape[0] == 0:
    raise ValueError("logits: the pool is empty (M = 0)")


def soft_vote(logits: jax.typing.ArrayLike) -> jax.Array:
  """Soft voting: the mean of the members' softmax vectors.

  Pass log-probabilities to combine probabilities: ``softmax(log p) = p``.
  Repeating a member in ``logits`` weights it accordingly.

  Args:
    logits: member logits, shape ``(M, N, C)``.

  Returns:
    Ensemble class probabilities, shape ``(N, C)``.
  """
  logits = jnp.asarray(logits)
  _check_logits_shape(logits)
  return jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)


def plurality_vote(logits: jax.typing.ArrayLike) -> jax.Array:
  """Plurality voting: the class most members predict (their argmax).

  Ties, both within a member's logits and between classes with equally many
  votes, go to the lowest class index. Repeating a member weights its vote.

  Args:
    logits: member logits, shape ``(M, N, C)``.

  Returns:
    Ensemble labels, shape ``(N,)``, integers.
  """
  logits = jnp.asarray(logits)
  _check_logits_shape(logits)
  num_classes = logits.shape[-1]
  votes = jnp.argmax(logits, axis=-1)  # (M, N)
  counts = jnp.sum(jax.nn.one_hot(votes, num_classes, dtype=jnp.int32), axis=0)
  return jnp.argmax(counts, axis=-1)


def accuracy(probs_or_labels: jax.typing.ArrayLike,
             labels: jax.typing.ArrayLike) -> jax.Array:
  """Fraction of samples whose predicted class is the label.

  Args:
    probs_or_labels: class scores ``(N, C)`` (probabilities or logits; argmax,
      lowest index on ties) or predicted labels ``(N,)``.
    labels: integer labels, shape ``(N,)``.

  Returns:
    Scalar accuracy in ``[0, 1]``.
  """
  predictions = jnp.asarray(probs_or_labels)
  labels = jnp.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
  if predictions.ndim == 2:
    predictions = jnp.argmax(predictions, axis=-1)
  elif predictions.ndim != 1:
    raise ValueError("probs_or_labels must have shape (N, C) or (N,), got "
                     f"{tuple(predictions.shape)}")
  if predictions.shape[0] != labels.shape[0]:
    raise ValueError(f"probs_or_labels has {predictions.shape[0]} samples but "
                     f"labels has {labels.shape[0]}")
  return jnp.mean(predictions == labels)


def negative_log_likelihood(probs: jax.typing.ArrayLike,
                            labels: jax.typing.ArrayLike) -> jax.Array:
  """Mean negative log-probability of the labels (probabilities floored).

  Args:
    probs: class probabilities, shape ``(N, C)``.
    labels: integer labels, shape ``(N,)``.

  Returns:
    Scalar mean NLL in nats.
  """
  probs = jnp.asarray(probs)
  labels = jnp.asarray(labels)
  if probs.ndim != 2 or labels.ndim != 1 or probs.shape[0] != labels.shape[0]:
    raise ValueError("expected probs (N, C) and labels (N,), got "
                     f"{tuple(probs.shape)} and {tuple(labels.shape)}")
  true_probs = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
  tiny = jnp.finfo(probs.dtype).tiny
  return -jnp.mean(jnp.log(jnp.maximum(true_probs, tiny)))


# -----------------------------------------------------------------------------
# Diversity metrics (NumPy, vectorised over teams).
# -----------------------------------------------------------------------------


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


def _pair_statistics(predictions: np.ndarray,
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


def _team_metrics(stats: _PairStatistics, team_masks: np.ndarray) -> np.ndarray:
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


def _lower_is_more_diverse(raw: np.ndarray) -> np.ndarray:
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
  stats = _pair_statistics(predictions, labels)
  return _team_metrics(stats, np.ones((1, predictions.shape[0])))[0]


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
  converted = _lower_is_more_diverse(_single_team_metrics(predictions, labels))
  return {name: float(v) for name, v in zip(DIVERSITY_METRICS, converted)}


# -----------------------------------------------------------------------------
# Selection.
# -----------------------------------------------------------------------------


class Selection(NamedTuple):
  """An ensemble chosen from a pool on the validation split.

  Attributes:
    method: ``"exhaustive"``, ``"greedy"`` or ``"focal_diversity"``.
    members: pool indices; greedy selection may repeat a member (in the order
      added), which weights it.
    weights: shape ``(M,)``, each pool model's share of ``members`` (sums to 1).
    val_accuracy: validation accuracy of ``combiner(logits[members])``.
    combiner: the combiner the ensemble uses.
    candidates: teams short-listed before the final pick (focal diversity
      only; empty otherwise).
  """

  method: str
  members: tuple[int, ...]
  weights: np.ndarray
  val_accuracy: float
  combiner: Callable[[jax.Array], jax.Array] = soft_vote
  candidates: tuple[tuple[int, ...], ...] = ()


def _check_pool(logits, labels) -> tuple[np.ndarray, np.ndarray]:
  """Validates a pool and returns it as NumPy arrays."""
  logits = np.asarray(logits)
  labels = np.asarray(labels)
  if logits.ndim != 3:
    raise ValueError(f"logits must have shape (M, N, C), got {logits.shape}")
  num_models, num_samples, num_classes = logits.shape
  if num_models == 0:
    raise ValueError("logits: the pool is empty (M = 0)")
  if num_samples == 0 or num_classes == 0:
    raise ValueError(f"logits has no samples or no classes: {logits.shape}")
  if not np.issubdtype(logits.dtype, np.floating):
    raise ValueError(f"logits must be floating point, got {logits.dtype}")
  if not np.all(np.isfinite(logits)):
    raise ValueError("logits contain NaN or infinite values")
  if labels.shape != (num_samples,):
    raise ValueError(f"labels must have shape ({num_samples},) to match "
                     f"logits {logits.shape}, got {labels.shape}")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"labels must lie in [0, {num_classes}), got range "
                     f"[{labels.min()}, {labels.max()}]")
  return logits, labels


def _member_probabilities(logits: np.ndarray) -> np.ndarray:
  """Softmax of each member in float64, shape ``(M, N, C)``."""
  z = logits.astype(np.float64)
  z = np.exp(z - z.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def _true_class(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """``probs[..., n, labels[n]]``."""
  index = np.broadcast_to(labels[:, None], probs.shape[:-1] + (1,))
  return np.take_along_axis(probs, index, axis=-1)[..., 0]


def _nll_of_true_probs(true_probs: np.ndarray) -> np.ndarray:
  tiny = np.finfo(np.float64).tiny
  return -np.mean(np.log(np.maximum(true_probs, tiny)), axis=-1)


def _soft_vote_scores(probs: np.ndarray,
                      labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Accuracy and NLL of (batches of) ensemble probabilities ``(..., N, C)``."""
  acc = np.mean(np.argmax(probs, axis=-1) == labels, axis=-1)
  return acc, _nll_of_true_probs(_true_class(probs, labels))


def _team_masks(teams: np.ndarray, num_models: int) -> np.ndarray:
  masks = np.zeros((teams.shape[0], num_models))
  np.put_along_axis(masks, teams, 1.0, axis=1)
  return masks


@functools.lru_cache(maxsize=16)
def _batched_accuracy(combiner):
  """Jitted accuracy of ``combiner`` over a batch of teams' logits."""
  return jax.jit(
      jax.vmap(lambda team_logits, labels: accuracy(combiner(team_logits),
                                                    labels),
               in_axes=(0, None)))


def _class_scores_of_members(logits: np.ndarray, combiner) -> np.ndarray:
  """Per-member class scores whose team sum the built-in combiner argmaxes.

  Soft vote: the members' softmax. Plurality vote: one-hot of each member's
  argmax (the team sum is the vote count). Both argmax to the lowest index on
  ties, like the JAX combiners.
  """
  if combiner is soft_vote:
    return _member_probabilities(logits)
  votes = np.argmax(logits, axis=-1)
  return (votes[..., None] == np.arange(logits.shape[-1])).astype(np.float64)


def _team_accuracies(logits: np.ndarray, labels: np.ndarray, teams: np.ndarray,
                     combiner) -> np.ndarray:
  """Validation accuracy of ``combiner`` on each team (rows of ``teams``).

  The built-in combiners are evaluated in NumPy as one matrix product per
  chunk of teams (no compilation per team size); any other combiner is
  ``vmap``-ed and jitted over chunks of gathered team logits.
  """
  num_teams, size = teams.shape
  num_models, num_samples, num_classes = logits.shape
  chunk = max(1, _CHUNK_ELEMENTS // (max(size, num_models) * num_samples *
                                     num_classes))
  results = []
  if combiner is soft_vote or combiner is plurality_vote:
    scores = _class_scores_of_members(logits, combiner).reshape(num_models, -1)
    masks = _team_masks(teams, num_models)
    for i in range(0, num_teams, chunk):
      team_scores = (masks[i:i + chunk] @ scores).reshape(
          -1, num_samples, num_classes)
      results.append(np.mean(np.argmax(team_scores, axis=-1) == labels, -1))
  else:
    evaluate = _batched_accuracy(combiner)
    device_labels = jnp.asarray(labels)
    for i in range(0, num_teams, chunk):
      results.append(np.asarray(evaluate(
          jnp.asarray(logits[teams[i:i + chunk]]), device_labels)))
  return np.concatenate(results).astype(np.float64)


def _teams_of_size(num_models: int, size: int) -> np.ndarray:
  teams = list(itertools.combinations(range(num_models), size))
  return np.array(teams, dtype=np.int64).reshape(len(teams), size)


def _check_team_count(num_models: int, sizes, max_teams: int) -> None:
  count = sum(math.comb(num_models, k) for k in sizes)
  if count > max_teams:
    raise ValueError(
        f"{count} candidate teams of sizes {min(sizes)}..{max(sizes)} from "
        f"{num_models} models exceed max_teams={max_teams}: lower max_size or "
        "raise max_teams")


def _best_team(teams: list[tuple[int, ...]], acc: np.ndarray,
               nll: np.ndarray) -> int:
  """Index of the best team: accuracy, then NLL, then size, then indices."""
  return min(range(len(teams)),
             key=lambda i: (-acc[i], nll[i], len(teams[i]), teams[i]))


def _member_weights(members, num_models: int) -> np.ndarray:
  counts = np.bincount(np.asarray(members), minlength=num_models)
  return counts / counts.sum()


def _selection(method, members, logits, labels, combiner, candidates=()):
  members = tuple(int(m) for m in members)
  val_accuracy = float(
      accuracy(combiner(logits[np.array(members)]), labels))
  return Selection(method, members, _member_weights(members, logits.shape[0]),
                   val_accuracy, combiner, tuple(candidates))


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
  logits, labels = _check_pool(logits, labels)
  num_models = logits.shape[0]
  if max_size is None:
    max_size = num_models
  if not 1 <= max_size <= num_models:
    raise ValueError(f"max_size must be in [1, {num_models}], got {max_size}")
  sizes = range(1, max_size + 1)
  _check_team_count(num_models, sizes, max_teams)
  true_probs = _true_class(_member_probabilities(logits), labels)  # (M, N)
  teams, accs, nlls = [], [], []
  for size in sizes:
    size_teams = _teams_of_size(num_models, size)
    masks = _team_masks(size_teams, num_models)
    accs.append(_team_accuracies(logits, labels, size_teams, combiner))
    nlls.append(_nll_of_true_probs(masks @ true_probs / size))
    teams.extend(tuple(int(m) for m in t) for t in size_teams)
  best = _best_team(teams, np.concatenate(accs), np.concatenate(nlls))
  return _selection("exhaustive", teams[best], logits, labels, combiner)


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
  logits, labels = _check_pool(logits, labels)
  num_models = logits.shape[0]
  if metric not in GREEDY_METRICS:
    raise ValueError(f"metric must be one of {GREEDY_METRICS}, got {metric!r}")
  if not 1 <= init_size <= num_models:
    raise ValueError(f"init_size must be in [1, {num_models}], got {init_size}")
  if max_size < init_size:
    raise ValueError(f"max_size ({max_size}) must be >= init_size "
                     f"({init_size})")
  probs = _member_probabilities(logits)
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
  return _selection("greedy", members[:init_size + best_prefix], logits, labels,
                    soft_vote)


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
  logits, labels = _check_pool(logits, labels)
  num_models = logits.shape[0]
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
  sizes = range(2, max_size + 1)
  _check_team_count(num_models, sizes, max_teams)
  columns = [DIVERSITY_METRICS.index(m) for m in metrics]

  predictions = np.argmax(logits, axis=-1)
  member_acc = np.mean(predictions == labels, axis=1)
  true_probs = _true_class(_member_probabilities(logits), labels)
  teams = {k: _teams_of_size(num_models, k) for k in sizes}
  masks = {k: _team_masks(teams[k], num_models) for k in sizes}
  team_acc = {k: _team_accuracies(logits, labels, teams[k], combiner)
              for k in sizes}
  team_nll = {k: _nll_of_true_probs(masks[k] @ true_probs / k) for k in sizes}

  # Steps 3 and 4: per focal model, scores of the teams containing it.
  num_metrics = len(columns)
  passed = {k: np.zeros((num_models, len(teams[k]), num_metrics), bool)
            for k in sizes}
  scaled = {k: np.full((num_models, len(teams[k]), num_metrics), np.nan)
            for k in sizes}
  for focal in range(num_models):
    negatives = np.flatnonzero(predictions[focal] != labels)
    if negatives.size == 0:
      continue
    subsets = _draw_negative_subsets(negatives, num_negative_samples,
                                     num_repeats, seed)
    stats = [_pair_statistics(predictions[:, s], labels[s]) for s in subsets]
    for k in sizes:
      in_group = masks[k][:, focal] > 0
      group_masks = masks[k][in_group]
      scores = np.mean([
          _lower_is_more_diverse(_team_metrics(st, group_masks))[:, columns]
          for st in stats
      ], axis=0)
      group_acc = team_acc[k][in_group]
      for j in range(num_metrics):
        threshold = min(np.mean(scores[:, j]),
                        _kmeans_boundary_threshold(group_acc, scores[:, j]))
        passed[k][focal, in_group, j] = scores[:, j] < threshold
        scaled[k][focal, in_group, j] = _scale01(scores[:, j])

  # Step 5: per metric and size, a team score from its members' focal views.
  short_list = set()
  for j in range(num_metrics):
    for k in sizes:
      team_ids = np.flatnonzero(passed[k][:, :, j].any(axis=0))
      if team_ids.size == 0:
        continue
      members = teams[k][team_ids]  # (T, k)
      views = scaled[k][members, team_ids[:, None], j]  # (T, k)
      weights = np.where(np.isnan(views), 0.0,
                         _average_ranks(member_acc[members]))
      score = np.sum(weights * np.nan_to_num(views), axis=1) / weights.sum(1)
      threshold = _kmeans_center_threshold(team_acc[k][team_ids], score)
      short_list.update((k, int(t)) for t in team_ids[score < threshold])

  if not short_list:
    short_list = {(k, t) for k in sizes for t in range(len(teams[k]))}
  ordered = sorted(short_list)
  candidate_teams = [tuple(int(m) for m in teams[k][t]) for k, t in ordered]
  acc = np.array([team_acc[k][t] for k, t in ordered])
  nll = np.array([team_nll[k][t] for k, t in ordered])
  best = _best_team(candidate_teams, acc, nll)
  return _selection("focal_diversity", candidate_teams[best], logits, labels,
                    combiner, candidates=sorted(candidate_teams))


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
  test_logits, test_labels = _check_pool(test_logits, test_labels)
  if test_logits.shape[0] != len(selection.weights):
    raise ValueError(f"test_logits holds {test_logits.shape[0]} models but the "
                     f"selection was made from {len(selection.weights)}")
  team_logits = test_logits[np.array(selection.members)]
  return float(accuracy(selection.combiner(team_logits), test_labels))
