"""End to end: the Flax NNX CNN on MNIST-1D under AutoLRS, against a fixed LR."""

import numpy as np
import optax
import pytest
from flax import nnx

import autolrs_jax
from benchmarks import training
from benchmarks.tasks import accuracy
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss

MIN_LR, MAX_LR = 1e-3, 1.0
STAGES = 3  # 300 + 600 + 600 update calls, probe steps included, and any retries.


@pytest.fixture(scope="module")
def data():
  return mnist1d.load(num_samples=6000, num_val=500)


def train(data, tx, steps, **kw):
  graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(0)), nnx.Param)
  params, _, history = training.train(params, tx, model_loss(graphdef), data, steps=steps,
                                      seed=0, **kw)
  return accuracy(graphdef, params, data.x_test, data.y_test), history


def retried_calls(history) -> int:
  """Calls of exploitations that blew up and were restarted from their snapshot:
  the exploitation calls the final parameters do not carry."""
  kept = autolrs_jax._export.kept_calls(history.phase, history.stage, history.restored)
  return int(np.sum(~kept & (history.phase == autolrs_jax.EXPLOIT)))


@pytest.mark.slow
def test_autolrs_beats_the_worst_lr_of_its_range_and_reaches_80_percent(data):
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=MIN_LR, max_lr=MAX_LR,
                           tau=200, num_trials=5, tau_max=400)
  # Stop after a stage's exploitation: a run stopped inside a probe would be
  # judged on a probe's parameters.
  accuracy, history = train(data, tx, 3000, stop_after_stage=STAGES - 1)
  steps = len(history.loss)
  # The stages' plan, and each exploitation that blew up run again.
  assert steps - retried_calls(history) <= 1500, (steps, retried_calls(history))
  fixed = {lr: train(data, optax.sgd(lr, momentum=0.9), steps)[0] for lr in (MIN_LR, MAX_LR)}
  assert accuracy > min(fixed.values()) + 0.2, (accuracy, fixed)
  assert accuracy >= 0.80, (accuracy, steps)
