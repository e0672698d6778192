"""Combiners and scores of an ensemble's predictions (JAX, traceable)."""

import jax
import jax.numpy as jnp


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
