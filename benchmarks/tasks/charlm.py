"""A character-level Transformer LM on the Python standard library's own sources.

The corpus is on every machine that runs Python: the ``.py`` files under
``sysconfig.get_paths()['stdlib']``, sorted by path and concatenated as bytes
(so the vocabulary is the 256 byte values). The split is fixed by position:
the first 90% of the bytes train, the next 5% validate, the last 5% test.
The exact text depends on the Python version: numbers are comparable within
one machine, not across Python versions.
"""

import math
import pathlib
import sysconfig
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from benchmarks.tasks.common import Splits
from benchmarks.tasks.common import TransformerBlock

VOCAB = 256



def corpus(max_bytes: int) -> bytes:
  """The first ``max_bytes`` of the sorted, concatenated stdlib sources."""
  root = pathlib.Path(sysconfig.get_paths()["stdlib"])
  chunks, size = [], 0
  for path in sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts):
    try:
      data = path.read_bytes()
    except OSError:
      continue
    chunks.append(data)
    size += len(data)
    if size >= max_bytes:
      break
  return b"".join(chunks)[:max_bytes]


def _windows(data: np.ndarray, context: int):
  n = (len(data) - 1) // context
  starts = np.arange(n) * context
  idx = starts[:, None] + np.arange(context + 1)[None, :]
  w = data[idx].astype(np.int32)
  return w[:, :-1], w[:, 1:]


def load(context: int = 64, max_bytes: int = 2_000_000) -> Splits:
  """Splits the corpus into non-overlapping windows of ``context`` bytes."""
  data = np.frombuffer(corpus(max_bytes), dtype=np.uint8)
  a, b = int(0.9 * len(data)), int(0.95 * len(data))
  return Splits(*_windows(data[:a], context), *_windows(data[a:b], context),
                *_windows(data[b:], context))


class CharTransformer(nnx.Module):
  """A small GPT-style byte model (about 110k parameters with the defaults)."""

  def __init__(self, context: int = 64, dim: int = 64, heads: int = 4, layers: int = 2, *,
               rngs: nnx.Rngs):
    self.embed = nnx.Embed(VOCAB, dim, rngs=rngs)
    self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (context, dim)))
    self.blocks = nnx.List([TransformerBlock(dim, heads, rngs=rngs) for _ in range(layers)])
    self.norm = nnx.LayerNorm(dim, rngs=rngs)
    self.head = nnx.Linear(dim, VOCAB, rngs=rngs)

  def __call__(self, tokens):
    x = self.embed(tokens) + self.pos[...][: tokens.shape[-1]]
    mask = nnx.make_causal_mask(tokens)
    for block in self.blocks:
      x = block(x, mask)
    return self.head(self.norm(x))
