"""English prose, character by character, with an n-gram MLP (Bengio et al. 2003 style).

The text is the documentation CPython ships for ``help()``: the topics of
``pydoc_data.topics``, sorted by name and joined, as bytes. Each example is
the ``CONTEXT`` bytes before a position and the byte at it. The split is by
position: the first 90% of the text trains, the next 5% validates, the last
5% tests. The exact text depends on the Python version, as the LM's does.
"""

import jax
import numpy as np
from flax import nnx

from benchmarks.tasks.common import Splits

CONTEXT, VOCAB = 12, 256


def text() -> bytes:
  """``help()``'s topics, sorted by name, joined by blank lines."""
  from pydoc_data import topics  # pylint: disable=g-import-not-at-top
  return "\n\n".join(topics.topics[k] for k in sorted(topics.topics)).encode("utf-8")


def _examples(data: np.ndarray, stride: int):
  ends = np.arange(CONTEXT, len(data), stride)
  x = data[ends[:, None] - CONTEXT + np.arange(CONTEXT)[None, :]].astype(np.int32)
  return x, data[ends].astype(np.int32)


def load(stride: int = 2) -> Splits:
  """Examples every ``stride`` bytes of each split (contexts stay within it)."""
  data = np.frombuffer(text(), dtype=np.uint8)
  a, b = int(0.9 * len(data)), int(0.95 * len(data))
  return Splits(*_examples(data[:a], stride), *_examples(data[a:b], stride),
                *_examples(data[b:], stride))


class NGramMLP(nnx.Module):
  """Byte embeddings of the context, concatenated, a LayerNorm'd hidden layer, a head
  (about 290k parameters)."""

  def __init__(self, embed: int = 24, hidden: int = 512, *, rngs: nnx.Rngs):
    self.embed = nnx.Embed(VOCAB, embed, rngs=rngs)
    self.fc = nnx.Linear(CONTEXT * embed, hidden, rngs=rngs)
    self.norm = nnx.LayerNorm(hidden, rngs=rngs)
    self.head = nnx.Linear(hidden, VOCAB, rngs=rngs)

  def __call__(self, context):
    x = self.embed(context).reshape(context.shape[:-1] + (-1,))
    return self.head(jax.nn.relu(self.norm(self.fc(x))))
