"""A compiled Flax NNX training loop that feeds AutoLRS its losses.

It shows the intended use: the step is one ``nnx.jit`` function; it asks the
optimizer state whether this step wants a validation loss and computes that
loss under ``jax.lax.cond``, so there is no host round trip.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import autolrs_jax

LossFn = Callable[[nnx.Module, jax.Array, jax.Array], jax.Array]


class History(NamedTuple):
  """Per-step records of a run (NumPy arrays of length ``steps``)."""

  loss: np.ndarray  # Training minibatch loss before the step's update.
  learning_rate: np.ndarray  # LR applied by the step (NaN without AutoLRS).
  phase: np.ndarray  # AutoLRS phase of the step (-1 without AutoLRS).
  stage: np.ndarray  # AutoLRS stage of the step (-1 without AutoLRS).


def has_controller(opt_state, kind=autolrs_jax.AutoLRSState) -> bool:
  """Whether ``opt_state`` holds a controller state of ``kind``.

  ``kind`` as in :func:`autolrs_jax.find_state`: AutoLRS by default, None
  for any controller (AutoLRS or ExpTest).
  """
  try:
    autolrs_jax.find_state(opt_state, kind=kind)
  except ValueError:
    return False
  return True


def make_train_step(loss_fn: LossFn, x_train, y_train, x_val, y_val,
                    batch_size: int, *, pass_value: bool, pass_validation: bool):
  """Builds ``step(model, optimizer, key) -> (loss, lr, phase, stage)``.

  Args:
    loss_fn: ``loss_fn(model, x, y)``, a scalar.
    x_train, y_train: training data (placed on device once); batches are
      drawn with replacement inside the step.
    x_val, y_val: the validation subset scored when AutoLRS asks for it.
    batch_size: minibatch size.
    pass_value: pass the loss as ``value=`` (AutoLRS, reduce_on_plateau).
    pass_validation: pass ``validation_value=`` (AutoLRS only).
  """

  x_train, y_train, x_val, y_val = map(jnp.asarray, (x_train, y_train, x_val, y_val))

  @nnx.jit
  def step(model, optimizer, key):
    idx = jax.random.randint(key, (batch_size,), 0, x_train.shape[0])
    loss, grads = nnx.value_and_grad(loss_fn)(model, x_train[idx], y_train[idx])
    kwargs = {}
    if pass_value:
      kwargs["value"] = loss
    lr = phase = stage = None
    if pass_validation:
      state = autolrs_jax.find_state(optimizer.opt_state)
      kwargs["validation_value"] = jax.lax.cond(
          state.wants_validation,
          lambda: loss_fn(model, x_val, y_val),
          lambda: jnp.asarray(jnp.nan, jnp.float32),
      )
      lr, phase, stage = state.learning_rate, state.phase, state.stage
    optimizer.update(model, grads, **kwargs)
    nan = jnp.asarray(jnp.nan, jnp.float32)
    minus_one = jnp.asarray(-1, jnp.int32)
    return (loss, nan if lr is None else lr,
            minus_one if phase is None else phase,
            minus_one if stage is None else stage)

  return step


def train(model: nnx.Module, tx: optax.GradientTransformation, loss_fn: LossFn,
          data, *, steps: int, batch_size: int = 128, seed: int = 0,
          pass_value: bool | None = None, val_size: int = 512,
          stop_after_stage: int | None = None, progress: bool = False) -> History:
  """Trains ``model`` in place with ``tx`` and returns its :class:`History`.

  Args:
    model: a Flax NNX module, updated in place.
    tx: any optax transformation; AutoLRS is detected and fed ``value`` and
      ``validation_value``.
    loss_fn: ``loss_fn(model, x, y)``.
    data: an object with ``x_train, y_train, x_val, y_val``.
    steps: update calls (AutoLRS probe steps included).
    batch_size: minibatch size.
    seed: seeds the minibatch draws.
    pass_value: pass the loss as ``value=``; default: only to AutoLRS.
    val_size: validation samples scored when AutoLRS asks.
    stop_after_stage: stop (before ``steps``) once AutoLRS finishes this
      stage's exploitation, so that the model is not left in a probe. Costs a
      host sync per step.
    progress: show a tqdm bar with stage, phase, LR and loss.
  """
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  autolrs_inside = has_controller(optimizer.opt_state)
  if pass_value is None:
    pass_value = autolrs_inside
  step = make_train_step(
      loss_fn, data.x_train, data.y_train, data.x_val[:val_size], data.y_val[:val_size],
      batch_size, pass_value=pass_value, pass_validation=autolrs_inside)
  step = nnx.cached_partial(step, model, optimizer)
  keys = jax.random.split(jax.random.key(seed), steps)
  records = []
  bar = None
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    bar = tqdm(total=steps, unit="step")
  for i in range(steps):
    records.append(step(keys[i]))
    if (stop_after_stage is not None
        and int(autolrs_jax.find_state(optimizer.opt_state).stage) > stop_after_stage):
      break
    if bar is not None and (i % 50 == 49 or i == steps - 1):
      loss, lr, phase, stage = (np.asarray(r) for r in records[-1])
      postfix = {"loss": f"{float(loss):.3f}"}
      if autolrs_inside:
        postfix.update(stage=int(stage), phase=autolrs_jax.PHASE_NAMES[int(phase)],
                       lr=f"{float(lr):.2e}")
      bar.set_postfix(postfix, refresh=False)
      bar.update(i + 1 - bar.n)
  if bar is not None:
    bar.update(len(records) - bar.n)
    bar.close()
  columns = [np.asarray(jax.device_get(c)) for c in zip(*records)]
  return History(*columns)
