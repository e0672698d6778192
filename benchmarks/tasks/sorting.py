"""An algorithmic task: sort a sequence of digits with a small Transformer encoder.

Each example is ``LENGTH`` tokens drawn uniformly from ``VOCAB`` values; the
target at every position is the token the sorted sequence holds there. The
encoder attends over the whole input (no causal mask) and predicts every
position at once, so the loss is a per-position cross-entropy and the metric
the fraction of positions right. The data are generated with a fixed seed.
"""

import jax
import numpy as np
from flax import nnx

from benchmarks.tasks.common import Splits
from benchmarks.tasks.common import TransformerBlock

LENGTH, VOCAB = 16, 64
NUM_TRAIN, NUM_VAL, NUM_TEST = 20_000, 2_000, 2_000


def load(seed: int = 0) -> Splits:
  """Draws the sequences once (fixed seed) and splits them 20,000 / 2,000 / 2,000."""
  rng = np.random.default_rng(seed)
  x = rng.integers(0, VOCAB, size=(NUM_TRAIN + NUM_VAL + NUM_TEST, LENGTH)).astype(np.int32)
  y = np.sort(x, axis=1)
  a, b = NUM_TRAIN, NUM_TRAIN + NUM_VAL
  return Splits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


class Sorter(nnx.Module):
  """Token and position embeddings, two blocks, a per-position head (about 30k parameters)."""

  def __init__(self, dim: int = 32, heads: int = 2, layers: int = 2, *, rngs: nnx.Rngs):
    self.embed = nnx.Embed(VOCAB, dim, rngs=rngs)
    self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (LENGTH, dim)))
    self.blocks = nnx.List([TransformerBlock(dim, heads, rngs=rngs) for _ in range(layers)])
    self.norm = nnx.LayerNorm(dim, rngs=rngs)
    self.head = nnx.Linear(dim, VOCAB, rngs=rngs)

  def __call__(self, tokens):
    x = self.embed(tokens) + self.pos[...]
    for block in self.blocks:
      x = block(x)
    return self.head(self.norm(x))
