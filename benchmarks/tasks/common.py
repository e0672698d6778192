"""What every task shares: its splits, its loss (cross-entropy in nats), accuracy."""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


class Splits(NamedTuple):
  """Inputs and targets of the train, validation and test splits of a task."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def loss_on_logits(logits, labels):
  """Mean cross-entropy in nats (classification and next-byte prediction alike)."""
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def model_loss(graphdef: nnx.GraphDef, loss: Callable[[Any, Any], jax.Array] = loss_on_logits
               ) -> Callable[[Any, jax.Array, jax.Array], jax.Array]:
  """``loss(params, x, y)`` of the model ``nnx.merge(graphdef, params)``."""
  return lambda params, x, y: loss(nnx.merge(graphdef, params)(x), y)


def accuracy(graphdef: nnx.GraphDef, params, x, y) -> float:
  """Classification accuracy of the model on ``(x, y)``."""
  logits = nnx.merge(graphdef, params)(jnp.asarray(x))
  return float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(y)))


class TransformerBlock(nnx.Module):
  """Pre-norm self-attention and MLP; causal when given a causal ``mask``."""

  def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs):
    self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=dim, decode=False,
                                       rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
    self.up = nnx.Linear(dim, 4 * dim, rngs=rngs)
    self.down = nnx.Linear(4 * dim, dim, rngs=rngs)

  def __call__(self, x, mask=None):
    x = x + self.attn(self.norm1(x), mask=mask)
    return x + self.down(jax.nn.gelu(self.up(self.norm2(x))))
