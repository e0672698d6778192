"""scikit-learn's handwritten digits (shipped with the package) and an MLP for them.

``sklearn.datasets.load_digits`` holds 1,797 8x8 images of the ten digits; it
is read from scikit-learn's own files, never downloaded. The split is a fixed
permutation: 1,297 train, 250 validation, 250 test.
"""

import jax
import numpy as np
from flax import nnx

from benchmarks.tasks.common import Splits

NUM_VAL = NUM_TEST = 250



def load(seed: int = 0) -> Splits:
  """Loads the digits, splits them by a fixed permutation, scales by train statistics."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top

  x, y = load_digits(return_X_y=True)
  order = np.random.default_rng(seed).permutation(len(y))
  x, y = x[order].astype(np.float32), y[order].astype(np.int32)
  test, val = slice(0, NUM_TEST), slice(NUM_TEST, NUM_TEST + NUM_VAL)
  train = slice(NUM_TEST + NUM_VAL, None)
  mean, std = x[train].mean(axis=0), x[train].std(axis=0) + 1.0  # Some pixels are always 0.
  norm = lambda a: (a - mean) / std
  return Splits(norm(x[train]), y[train], norm(x[val]), y[val], norm(x[test]), y[test])


class MLP(nnx.Module):
  """64 -> hidden -> hidden -> 10 with ReLUs (about 13k parameters by default)."""

  def __init__(self, hidden: int = 96, *, rngs: nnx.Rngs):
    self.fc1 = nnx.Linear(64, hidden, rngs=rngs)
    self.fc2 = nnx.Linear(hidden, hidden, rngs=rngs)
    self.head = nnx.Linear(hidden, 10, rngs=rngs)

  def __call__(self, x):
    x = jax.nn.relu(self.fc1(x))
    x = jax.nn.relu(self.fc2(x))
    return self.head(x)
