"""LRBench's metrics on hand-made logits whose values are known."""

import numpy as np
import pytest

from benchmarks import lrbench_metrics as M

# Four samples, three classes. Softmax rows (by construction of the logits):
#   sample 0: label 0, probabilities (0.5, 0.25, 0.25)  -> correct, top 0.5
#   sample 1: label 1, (0.25, 0.5, 0.25)                -> correct, top 0.5
#   sample 2: label 1, (0.8, 0.1, 0.1)                  -> wrong (predicts 0)
#   sample 3: label 0, (0.8, 0.1, 0.1)                  -> correct, top 0.8
PROBS = np.array([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])
LOGITS = np.log(PROBS) + 3.0  # A shift leaves the softmax unchanged.
LABELS = np.array([0, 1, 1, 0])


def test_top_k_accuracy():
  assert M.top_k_accuracy(LOGITS, LABELS, 1) == 0.75
  # Sample 2's label (1) ties with class 2 for second place: argsort keeps the
  # lower index first, so it is within the top 2.
  assert M.top_k_accuracy(LOGITS, LABELS, 2) == 1.0
  assert M.top_k_accuracy(LOGITS, np.array([2, 2, 2, 2]), 1) == 0.0


def test_confidence_over_the_correct_samples_and_cdac_over_classes():
  conf = M.confidence(LOGITS, LABELS)
  tops = np.array([0.5, 0.5, 0.8])  # Samples 0, 1, 3.
  assert conf["mean"] == pytest.approx(tops.mean())
  assert conf["std"] == pytest.approx(tops.std())
  # Class 0: mean of 0.5 and 0.8 = 0.65; class 1: 0.5 -> std of (0.65, 0.5) = 0.075.
  assert conf["cdac"] == pytest.approx(0.075)


def test_no_correct_sample_has_no_confidence():
  conf = M.confidence(LOGITS, np.array([2, 2, 2, 2]))
  assert all(np.isnan(v) for v in conf.values())


def test_classification_metrics_and_robustness():
  m = M.classification_metrics(LOGITS.astype(np.float16), LABELS)
  assert m["top1"] == 0.75 and m["top5"] == 1.0  # Top-5 of 3 classes: all of them.
  assert m["confidence_mean"] == pytest.approx(0.6, abs=1e-3)
  assert M.final_train_loss(np.array([9.0, 1.0, 2.0, 3.0]), 2) == 2.5
  # LRBench: final training loss minus test loss (its variable names are swapped).
  assert M.robustness(0.2, 0.5) == pytest.approx(-0.3)
