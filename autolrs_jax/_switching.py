"""LRBench's dynamic switching: move along a list of LR policies on a plateau."""

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from autolrs_jax import _common


class SwitchOnPlateauState(NamedTuple):
  """State of :func:`switch_on_plateau`."""

  count: jax.Array  # int32: update calls so far, the policies' global step.
  index: jax.Array  # int32: the policy that sets this call's LR.
  # float32[window]: the last checks' monitored values, oldest first; NaN
  # where fewer than ``window`` checks were made.
  history: jax.Array
  checks: jax.Array  # int32: checks made so far.
  accumulated: jax.Array  # float32: sum of the monitored values of this check's calls.
  cooldown: jax.Array  # int32: checks left before a plateau may switch again.
  learning_rate: jax.Array  # float32: the LR the last call applied.
  base_state: optax.OptState  # The base optimizer's state.


def plateaued(history: jax.Array, checks: jax.Array, threshold: float) -> jax.Array:
  """LRBench's plateau: more than ``len(history)`` checks were made and the
  largest improvement between consecutive checks of the last ones (older
  minus newer) is below ``threshold``."""
  improvements = history[:-1] - history[1:]
  return (checks > history.shape[0]) & (jnp.max(improvements) < threshold)


def switch_on_plateau(
    base_optimizer: optax.GradientTransformation,
    policies: Sequence[optax.Schedule],
    total_steps: int,
    *,
    start_index: int = 0,
    check_every: int = 1,
    window: int = 5,
    threshold: float = 0.05,
    cooldown: int = 5,
    increase_before: float = 0.8,
) -> optax.GradientTransformationExtraArgs:
  """Switches between LR policies on a plateau of a monitored value, as LRBench does.

  Wraps ``base_optimizer``, built with learning rate 1.0, and multiplies its
  updates by the LR of the current policy at the global step:
  ``policies[index](count)``. Every call passes the monitored value (a loss)
  as ``value``; every ``check_every`` calls their mean is one check (LRBench
  checks once an epoch, on the validation loss). After a check:

  1. A plateau is more than ``window`` checks, the largest improvement
     between consecutive ones among the last ``window`` below ``threshold``.
  2. On a plateau with the cooldown at zero, the cooldown restarts at
     ``cooldown`` checks and the index moves one step: towards the list's
     head ("increase": LRBench orders the list from the highest LR down)
     while ``count < increase_before * total_steps``, towards its tail
     ("decrease") after, clipped to the list.
  3. Otherwise the cooldown counts down by one (not below zero).

  Every policy is evaluated at every call and one is selected: they are
  scalar functions of the step, and the step holds no control flow.

  Args:
    base_optimizer: the optimizer to schedule, with learning rate 1.0.
    policies: the LR policies (``optax`` schedules of the global step, e.g.
      from :mod:`autolrs_jax.schedules`), highest LR first.
    total_steps: the run's update calls; the direction of a switch turns at
      ``increase_before`` of it.
    start_index: the policy of the first call.
    check_every: update calls per check (an epoch's, to follow LRBench).
    window: checks a plateau looks back over.
    threshold: an improvement below this is none (in the value's units).
    cooldown: checks after a switch before the next one may happen.
    increase_before: fraction of ``total_steps`` before which a plateau moves
      towards the list's head.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`; its ``update`` takes
    ``(updates, state, params=None, *, value, **extra_args)``.

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> from autolrs_jax import schedules, switch_on_plateau
    >>> tx = switch_on_plateau(optax.sgd(1.0), [schedules.fix(0.1), schedules.fix(0.01)],
    ...                        total_steps=100, start_index=1, window=2, cooldown=1)
    >>> params = {'w': jnp.ones(2)}
    >>> state = tx.init(params)
    >>> for _ in range(3):  # A flat loss: the third check is a plateau.
    ...   _, state = tx.update({'w': jnp.ones(2)}, state, params, value=1.0)
    >>> int(state.index)  # Early in the run: towards the head.
    0

  References:
    Wu, Liu et al., `Demystifying Learning Rate Policies for High Accuracy
    Training of Deep Neural Networks <https://arxiv.org/abs/1908.06477>`_,
    IEEE BigData 2019 (LRBench; its ``ChangeLROnPlateau`` callback).
  """
  policies = tuple(policies)
  _validate(policies, total_steps, start_index, check_every, window, threshold, cooldown,
            increase_before)
  base_optimizer = optax.with_extra_args_support(base_optimizer)
  last = len(policies) - 1

  def init_fn(params):
    return SwitchOnPlateauState(
        count=jnp.zeros([], jnp.int32), index=jnp.asarray(start_index, jnp.int32),
        history=jnp.full([window], jnp.nan, jnp.float32), checks=jnp.zeros([], jnp.int32),
        accumulated=jnp.zeros([], jnp.float32), cooldown=jnp.zeros([], jnp.int32),
        learning_rate=jnp.zeros([], jnp.float32), base_state=base_optimizer.init(params))

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    value = _common.check_loss(value, "value", "switch_on_plateau")
    lrs = jnp.stack([jnp.asarray(p(state.count), jnp.float32) for p in policies])
    lr = lrs[state.index]
    base_updates, base_state = base_optimizer.update(updates, state.base_state, params,
                                                     **extra_args)
    accumulated = state.accumulated + value
    checks_now = (state.count + 1) % check_every == 0
    history = jnp.where(checks_now, jnp.append(state.history[1:], accumulated / check_every),
                        state.history)
    checks = state.checks + checks_now.astype(jnp.int32)
    switches = checks_now & plateaued(history, checks, threshold) & (state.cooldown == 0)
    step = jnp.where(state.count < increase_before * total_steps, -1, 1)
    index = jnp.where(switches, jnp.clip(state.index + step, 0, last), state.index)
    counted_down = jnp.where(checks_now, jnp.maximum(state.cooldown - 1, 0), state.cooldown)
    new_state = SwitchOnPlateauState(
        count=state.count + 1, index=index.astype(jnp.int32), history=history, checks=checks,
        accumulated=jnp.where(checks_now, 0.0, accumulated),
        cooldown=jnp.where(switches, cooldown, counted_down).astype(jnp.int32),
        learning_rate=lr, base_state=base_state)
    return _common.scale_updates(base_updates, lr), new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _validate(policies, total_steps, start_index, check_every, window, threshold, cooldown,
              increase_before):
  """Raises ValueError naming the first bad hyper-parameter."""
  check = _common.check
  check(len(policies) >= 1, "policies", "a non-empty sequence of schedules", policies)
  check(all(callable(p) for p in policies), "policies", "schedules (callables)", policies)
  total_steps, start_index, check_every, window, cooldown = _common.static_ints(
      total_steps=total_steps, start_index=start_index, check_every=check_every,
      window=window, cooldown=cooldown)
  check(total_steps >= 1, "total_steps", ">= 1", total_steps)
  check(0 <= start_index < len(policies), "start_index", f"in [0, {len(policies)})",
        start_index)
  check(check_every >= 1, "check_every", ">= 1", check_every)
  check(window >= 2, "window", ">= 2 (an improvement needs two checks)", window)
  check(threshold >= 0, "threshold", ">= 0", threshold)
  check(cooldown >= 0, "cooldown", ">= 0", cooldown)
  check(0 <= increase_before <= 1, "increase_before", "in [0, 1]", increase_before)
