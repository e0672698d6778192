"""Reading a controller's state out of any optimizer state: find, describe, BO data.

Depends on the controllers; neither controller imports it.
"""

import sys
from typing import Any

import jax
import numpy as np

from autolrs_jax import _autolrs
from autolrs_jax import _exptest

# Each controller's state class and the function that describes it for logging.
_DESCRIBERS = {
    _autolrs.AutoLRSState: _autolrs.describe_state,
    _exptest.ExpTestState: _exptest.describe_state,
}


def _as_pure(tree: Any) -> Any:
  """Replaces ``flax.nnx`` variables (``nnx.Optimizer.opt_state``) by their values.

  Without ``flax.nnx`` imported, no tree can hold one.
  """
  nnx = sys.modules.get("flax.nnx")
  return tree if nnx is None else nnx.as_pure(tree)


def find_state(tree: Any, kind: Any = _autolrs.AutoLRSState) -> Any:
  """Finds a controller's state in an optimizer state tree.

  Args:
    tree: the state of :func:`autolrs_jax.autolrs` (or of another controller)
      itself, of an ``optax.chain`` holding it, or an ``nnx.Optimizer``'s
      ``opt_state``.
    kind: the state class to look for, or a tuple of them; None for any known
      controller state (:class:`autolrs_jax.AutoLRSState`,
      :class:`autolrs_jax.ExpTestState`). The default finds AutoLRS only, so
      that ``find_state`` raising still means "no AutoLRS here".

  Returns:
    The (single) matching state, with plain arrays as leaves. Works inside
    ``jit`` too, e.g. to read ``wants_validation``.

  Raises:
    ValueError: if the tree holds no matching state, or more than one.
  """
  return _as_pure(_find(tree, kind))


def _find(tree: Any, kind: Any) -> Any:
  """:func:`find_state`'s state as it lies in ``tree`` (its leaves may be
  ``flax.nnx`` variables)."""
  kinds = tuple(_DESCRIBERS) if kind is None else kind
  kinds = kinds if isinstance(kinds, tuple) else (kinds,)
  is_state = lambda x: isinstance(x, kinds)
  found = [x for x in jax.tree.leaves(tree, is_leaf=is_state) if is_state(x)]
  if len(found) != 1:
    names = " or ".join(k.__name__ for k in kinds)
    raise ValueError(f"expected one {names} in the tree, found {len(found)}.")
  return found[0]


def quiet_calls(tree: Any) -> int:
  """How many of the following update calls are known to end nothing.

  Those calls may run as ``update(..., quiet=True)``: a step compiled with no
  conditional and no loop, the controller's LR applied and its counters
  advanced (AutoLRS: the warm-up, an exploitation before its last call, the
  whole anneal; ExpTest: the calls before the one that fills a window). Read
  it on the host (a sync) after each call run without ``quiet``, then run
  that many quiet calls::

    quiet_left = autolrs_jax.quiet_calls(opt_state)
    for batch in batches:
      if quiet_left:
        params, opt_state = quiet_step(params, opt_state, batch)  # quiet=True
        quiet_left -= 1
      else:
        params, opt_state = step(params, opt_state, batch)
        quiet_left = autolrs_jax.quiet_calls(opt_state)

  Only the calls it counts may run quiet: a quiet call cannot start an
  event, so one run where an event falls (a probe's end, a window's) misses
  it, and the controller does not recover. Works for any known controller
  (``find_state(tree, kind=None)``).
  """
  state = _find(tree, kind=None)
  # The packed array to the host, then its entry: indexing on the device
  # would dispatch (and first compile) an op at every read. Only that array
  # is unwrapped from an nnx variable: unwrapping the whole state (its
  # params-sized trees) cost more than the quiet call it saves: 45-90 us a
  # read on the overhead benchmark's 1e4-parameter MLP, as long as its step.
  field, index = next((field, names.index("quiet_calls"))
                      for field, (_, names) in type(state).packed_scalars.items()
                      if "quiet_calls" in names)
  return int(np.asarray(_as_pure(getattr(state, field)))[..., index])


def describe(tree: Any) -> dict[str, Any]:
  """The controller's position as Python values, for logging (a host sync).

  Works for any known controller (``find_state(tree, kind=None)``).

  Returns:
    A dict with the common fields ``controller`` (``'autolrs'`` or
    ``'exptest'``), ``step``, ``phase`` (a name) and ``learning_rate``
    (applied by the next update), plus each controller's own: for AutoLRS
    ``stage``, ``trial``, ``phase_step`` and ``wants_validation``; for ExpTest
    ``windows`` (tested so far), ``window_step`` (points in the current
    window), ``block_size``, ``outcome`` (last window's, a name),
    ``statistic`` and ``p_value`` (last window's F and one-sided p-value),
    ``drop``, ``num_decreases`` and ``num_cuts``.
  """
  state = find_state(tree, kind=None)
  return _DESCRIBERS[type(state)](state)


def bo_observations(tree: Any) -> dict[str, jax.Array]:
  """The current stage's BO data: finished probes' LRs and forecasts.

  Returns:
    A dict of arrays ``learning_rates``, ``forecasts`` and ``diverged``, each
    holding one entry per finished probe of the current stage.
  """
  s = find_state(tree)
  n = int(s.trial)
  return {
      "learning_rates": s.trial_lrs[:n],
      "forecasts": s.trial_scores[:n],
      "diverged": s.trial_diverged[:n],
  }
