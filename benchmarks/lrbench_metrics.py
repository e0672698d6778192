"""LRBench's metrics of a trained model: utility, robustness, confidence, cost.

As LRBench computes them (``LRBench/framework/keras/compute_metrics.py``):

- utility: top-1 and top-5 test accuracy (classification); elsewhere the test loss;
- robustness: the final training loss minus the test loss (LRBench's code
  computes ``history['loss'][-1] - score[0]`` into variables whose names are
  swapped); the final training loss is the mean minibatch loss of the last
  evaluation interval, as Keras's last epoch's ``loss`` is its mean;
- confidence: the mean and standard deviation of the top softmax probability
  over the correctly classified test samples; CDAC, the standard deviation
  over classes of each class's mean such confidence (classes with no correct
  sample left out);
- cost: update calls, wall seconds and runs of compute (in the benchmark's
  rows).
"""

import numpy as np
from scipy import special


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
  """Fraction of samples whose label is among the ``k`` largest logits."""
  top = np.argsort(-logits, axis=-1)[:, :k]
  return float(np.mean(np.any(top == labels[:, None], axis=-1)))


def confidence(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """``mean``, ``std`` and ``cdac`` of the top softmax probability over the
  correctly classified samples (NaN where there is none)."""
  probs = special.softmax(logits.astype(np.float64), axis=-1)
  correct = probs.argmax(-1) == labels
  top = probs.max(-1)[correct]
  if not top.size:
    return {"mean": float("nan"), "std": float("nan"), "cdac": float("nan")}
  per_class = [top[labels[correct] == c].mean() for c in np.unique(labels[correct])]
  return {"mean": float(top.mean()), "std": float(top.std()), "cdac": float(np.std(per_class))}


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
  """Utility and confidence of a classifier's test logits."""
  logits, labels = np.asarray(logits, np.float32), np.asarray(labels)
  conf = confidence(logits, labels)
  return {"top1": top_k_accuracy(logits, labels, 1),
          "top5": top_k_accuracy(logits, labels, min(5, logits.shape[-1])),
          "confidence_mean": conf["mean"], "confidence_std": conf["std"], "cdac": conf["cdac"]}


def final_train_loss(train_losses: np.ndarray, interval: int) -> float:
  """The mean minibatch loss of the last ``interval`` update calls."""
  return float(np.mean(np.asarray(train_losses, np.float64)[-interval:]))


def robustness(train_loss: float, test_loss: float) -> float:
  """LRBench's robustness: the final training loss minus the test loss."""
  return float(train_loss - test_loss)
