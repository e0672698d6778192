"""Gradient accumulation that shows a controller the mean loss of its micro-batches."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class MultiStepsMeanState(NamedTuple):
  """State of :func:`multi_steps`."""

  value_sum: jax.Array  # Sum of the current accumulation's losses (``value``) so far.
  inner: optax.MultiStepsState  # optax.MultiSteps' own state.


def multi_steps(
    opt: optax.GradientTransformation,
    every_k_schedule: int | optax.Schedule,
    **multi_steps_kwargs: Any,
) -> optax.GradientTransformationExtraArgs:
  """``optax.MultiSteps`` whose inner optimizer sees the mean loss as ``value``.

  ``optax.MultiSteps`` averages the gradients of ``k`` micro-batches but hands
  the inner optimizer the ``value`` of the last call only. A learning-rate
  controller (:func:`autolrs_jax.autolrs`, :func:`autolrs_jax.exptest`) then
  scores the accumulated step by one micro-batch's loss. This wrapper passes
  the mean of the accumulation's values instead, the loss that matches the
  averaged gradient. Calls without ``value`` pass through unchanged; a
  micro-step that ``should_skip_update_fn`` skips does not count.

  Args:
    opt: the optimizer to apply every ``k`` calls, e.g. ``autolrs(...)``.
    every_k_schedule: ``k``, an int or a schedule of the gradient step.
    **multi_steps_kwargs: passed on to ``optax.MultiSteps``.

  Returns:
    A ``GradientTransformationExtraArgs``; its ``update`` takes ``value=``.

  Examples:
    >>> import jax.numpy as jnp, optax, autolrs_jax
    >>> tx = autolrs_jax.multi_steps(autolrs_jax.autolrs(
    ...     optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, tau=20, tau_probe=4,
    ...     num_trials=3), every_k_schedule=4)
    >>> params = jnp.ones(3)
    >>> state = tx.init(params)
    >>> updates, state = tx.update(params, state, params, value=jnp.float32(1.5))
  """
  accumulate = optax.MultiSteps(opt, every_k_schedule, **multi_steps_kwargs)

  def init_fn(params):
    return MultiStepsMeanState(value_sum=jnp.zeros([], jnp.float32),
                               inner=accumulate.init(params))

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    if value is None:
      new_updates, inner = accumulate.update(updates, state.inner, params, **extra_args)
      return new_updates, state._replace(inner=inner)
    total = state.value_sum + jnp.asarray(value, jnp.float32)
    mean = total / (state.inner.mini_step + 1).astype(jnp.float32)
    new_updates, inner = accumulate.update(updates, state.inner, params,
                                           value=mean.astype(jnp.result_type(value)),
                                           **extra_args)
    skipped = (inner.mini_step == state.inner.mini_step) & (
        inner.gradient_step == state.inner.gradient_step)
    value_sum = jnp.where(skipped, state.value_sum, jnp.where(inner.mini_step == 0, 0.0, total))
    return new_updates, MultiStepsMeanState(value_sum=value_sum, inner=inner)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
