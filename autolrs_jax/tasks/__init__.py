"""Real-data training tasks shared by the examples, the tests and the benchmarks."""

from typing import NamedTuple

import numpy as np


class Splits(NamedTuple):
  """Inputs and targets of the train, validation and test splits of a task."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_val: np.ndarray
  y_val: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
