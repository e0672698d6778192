"""A pool's candidate teams, their validation scores and the Selection result.

Shared by every selector: pool validation, the members' probabilities, teams
enumerated by size and scored under a combiner, the tie-breaking order of
teams, and the :class:`Selection` they return.
"""

import functools
import itertools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from autolrs_jax.ensemble._combine import accuracy
from autolrs_jax.ensemble._combine import plurality_vote
from autolrs_jax.ensemble._combine import soft_vote

DEFAULT_MAX_TEAMS = 2**16
# Largest gathered logits block (elements) evaluated at once by a combiner.
_CHUNK_ELEMENTS = 2**23


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


class ScoredTeams(NamedTuple):
  """Every team of one size, scored on validation."""

  teams: np.ndarray  # (T, k) member indices, rows in lexicographic order.
  masks: np.ndarray  # (T, M) float, 1 where the model is in the team.
  accuracy: np.ndarray  # (T,) accuracy under the combiner.
  nll: np.ndarray  # (T,) NLL of the team's soft vote.


def check_pool(logits, labels) -> tuple[np.ndarray, np.ndarray]:
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


def member_probabilities(logits: np.ndarray) -> np.ndarray:
  """Softmax of each member in float64, shape ``(M, N, C)``."""
  z = logits.astype(np.float64)
  z = np.exp(z - z.max(axis=-1, keepdims=True))
  return z / z.sum(axis=-1, keepdims=True)


def true_class(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """``probs[..., n, labels[n]]``."""
  index = np.broadcast_to(labels[:, None], probs.shape[:-1] + (1,))
  return np.take_along_axis(probs, index, axis=-1)[..., 0]


def nll_of_true_probs(true_probs: np.ndarray) -> np.ndarray:
  tiny = np.finfo(np.float64).tiny
  return -np.mean(np.log(np.maximum(true_probs, tiny)), axis=-1)


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
    return member_probabilities(logits)
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


def score_teams(logits: np.ndarray, labels: np.ndarray, sizes,
                combiner) -> dict[int, ScoredTeams]:
  """Every team of each size in ``sizes``, scored on validation.

  Args:
    logits: validation logits of the pool, shape ``(M, N, C)``.
    labels: validation labels, shape ``(N,)``.
    sizes: team sizes, each in ``[1, M]``.
    combiner: the combiner whose accuracy is scored.

  Returns:
    ``{size: ScoredTeams}``, in the order of ``sizes``.
  """
  num_models = logits.shape[0]
  true_probs = true_class(member_probabilities(logits), labels)  # (M, N)
  scored = {}
  for size in sizes:
    teams = _teams_of_size(num_models, size)
    masks = _team_masks(teams, num_models)
    scored[size] = ScoredTeams(
        teams, masks, _team_accuracies(logits, labels, teams, combiner),
        nll_of_true_probs(masks @ true_probs / size))
  return scored


def check_team_count(num_models: int, sizes, max_teams: int) -> None:
  count = sum(math.comb(num_models, k) for k in sizes)
  if count > max_teams:
    raise ValueError(
        f"{count} candidate teams of sizes {min(sizes)}..{max(sizes)} from "
        f"{num_models} models exceed max_teams={max_teams}: lower max_size or "
        "raise max_teams")


def best_team(teams: list[tuple[int, ...]], acc: np.ndarray,
              nll: np.ndarray) -> int:
  """Index of the best team: accuracy, then NLL, then size, then indices."""
  return min(range(len(teams)),
             key=lambda i: (-acc[i], nll[i], len(teams[i]), teams[i]))


def _member_weights(members, num_models: int) -> np.ndarray:
  counts = np.bincount(np.asarray(members), minlength=num_models)
  return counts / counts.sum()


def make_selection(method, members, logits, labels, combiner, candidates=()):
  """The :class:`Selection` of ``members``, scored on validation."""
  members = tuple(int(m) for m in members)
  val_accuracy = float(
      accuracy(combiner(logits[np.array(members)]), labels))
  return Selection(method, members, _member_weights(members, logits.shape[0]),
                   val_accuracy, combiner, tuple(candidates))
