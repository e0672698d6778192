"""End to end: the Flax NNX CNN on MNIST-1D under AutoLRS, against a fixed LR."""

import optax
import pytest
from flax import nnx

import autolrs_jax
from autolrs_jax.tasks import loop
from autolrs_jax.tasks import mnist1d

STEPS = 2000  # Update calls, probe steps included.
MIN_LR, MAX_LR = 1e-3, 1.0


@pytest.fixture(scope="module")
def data():
  return mnist1d.load(num_samples=6000, num_val=500)


def accuracy_after_training(data, tx):
  model = mnist1d.CNN(rngs=nnx.Rngs(0))
  loop.train(model, tx, mnist1d.cross_entropy, data, steps=STEPS, seed=0)
  return mnist1d.accuracy(model, data.x_test, data.y_test)


@pytest.mark.slow
def test_autolrs_beats_the_worst_lr_of_its_range_and_reaches_80_percent(data):
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=MIN_LR, max_lr=MAX_LR,
                           tau=200, num_trials=5, tau_max=400)
  autolrs_accuracy = accuracy_after_training(data, tx)
  fixed = {lr: accuracy_after_training(data, optax.sgd(lr, momentum=0.9)) for lr in (MIN_LR, MAX_LR)}
  assert autolrs_accuracy > min(fixed.values()) + 0.2, (autolrs_accuracy, fixed)
  assert autolrs_accuracy >= 0.80, autolrs_accuracy
