"""Fine-tuning: the digits MLP, pretrained on one part of the digits, trained on
a few shifted ones.

A user who fine-tunes starts from a checkpoint whose loss is already low, on
data unlike the data it learned from, where a large LR undoes what it knew.
The source is scikit-learn's digits (:mod:`benchmarks.tasks.digits`): the MLP
is pretrained on 997 of its training images (Adam, a cosine from 1e-3 over
1,000 calls, batch 64; the run's seed draws its initialisation and
minibatches). The target is the other 300 training images, each shifted half
a pixel to the right (the mean of the image and of its one-pixel shift), and
the validation and test images shifted alike, none of them seen in
pretraining. The pretrained model starts at a validation loss of 0.26-0.28
on the target (0.08-0.12 on the source; seeds 0-2); what the schedules reach
from there is in the benchmark's table.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from benchmarks import training
from benchmarks.tasks import digits
from benchmarks.tasks.common import model_loss
from benchmarks.tasks.common import Splits

NUM_TARGET_TRAIN = 300
PRETRAIN_STEPS = 1_000
PRETRAIN_LR = 1e-3
PRETRAIN_BATCH = 64


def half_pixel_shift(x: np.ndarray) -> np.ndarray:
  """Flattened 8x8 images moved half a pixel right: the mean of each image
  and of its one-pixel shift (zeros coming in at the left)."""
  images = x.reshape(-1, 8, 8)
  moved = np.zeros_like(images)
  moved[:, :, 1:] = images[:, :, :-1]
  return (0.5 * (images + moved)).reshape(x.shape)


@functools.cache
def _splits() -> tuple[Splits, Splits]:
  """``(source, target)``: the digits the MLP is pretrained on, and the shifted
  ones it is fine-tuned and scored on."""
  d = digits.load()
  keep = slice(NUM_TARGET_TRAIN, None)
  source = d._replace(x_train=d.x_train[keep], y_train=d.y_train[keep])
  target = Splits(half_pixel_shift(d.x_train[:NUM_TARGET_TRAIN]), d.y_train[:NUM_TARGET_TRAIN],
                  half_pixel_shift(d.x_val), d.y_val, half_pixel_shift(d.x_test), d.y_test)
  return source, target


def load() -> Splits:
  """The target: 300 shifted training images, 250 validation, 250 test."""
  return _splits()[1]


@functools.cache
def _pretrained_params(seed: int):
  graphdef, params = nnx.split(digits.MLP(rngs=nnx.Rngs(seed)))
  schedule = optax.cosine_decay_schedule(PRETRAIN_LR, PRETRAIN_STEPS)
  params, _, _ = training.train(params, optax.adam(schedule), model_loss(graphdef),
                                _splits()[0], steps=PRETRAIN_STEPS, batch_size=PRETRAIN_BATCH,
                                seed=seed)
  return graphdef, jax.device_get(params)


def pretrained_mlp(seed: int) -> digits.MLP:
  """A fresh copy of the MLP initialised from ``seed`` and pretrained on the
  source digits (pretrained once per seed)."""
  graphdef, params = _pretrained_params(seed)
  return nnx.merge(graphdef, jax.tree.map(jnp.array, params))
