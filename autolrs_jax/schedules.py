"""LRBench's 13 learning-rate policies as pure, jit-able optax schedules.

LRBench (Wu et al., "Demystifying Learning Rate Policies for High Accuracy
Training of Deep Neural Networks", IEEE BigData 2019, arXiv 1908.06477; Jin et
al., "Selecting and Composing Learning Rate Policies for Deep Neural
Networks", ACM TIST 2023, arXiv 2210.12936) defines its policies by a table
(``LRBench/static/lr_policy_table.PNG``) and by code (``lr/LRfunctions.py``).
This module follows the table; where the two disagree (``cos``, ``poly``) the
function's docstring says how.

Every factory returns an ``optax.Schedule``: a pure function ``step -> LR``
that accepts Python ints and traced integer arrays and returns a float32
array, so it can be passed as ``learning_rate`` to any optax optimizer, or
composed with :func:`compose`.

* Decaying policies: ``eta(t) = k0 * g(t)`` with ``g(0) = 1``.
* Cyclic (CLR) policies: ``eta(t) = k0 + (k1 - k0) * g(t)`` with ``g`` in
  ``[0, 1]``; ``k0`` is the low bound, ``k1`` the high bound.

Where optax already implements exactly the same function it is reused
(``fix``, ``nstep``, ``exp``, ``compose``). ``step`` and ``poly`` are written
here although optax has the same formulas, because under ``jax.jit`` optax's
versions go wrong at the boundaries (see their docstrings): XLA replaces a
division by a constant with a multiplication by its rounded reciprocal, so
``floor(t / l)`` can be one short at ``t = l`` and ``1 - t / l`` slightly
negative at ``t = l``.

Hyper-parameters keep LRBench's names (``k0``, ``k1``, ``gamma``, ``p``,
``l``), except NSTEP's list of change points, which LRBench also calls ``l``
and which is ``boundaries`` here (:func:`from_lrbench` maps ``l`` to it).
``t`` is whatever step count the optimizer passes (usually the iteration).

Example:
  >>> import optax
  >>> from autolrs_jax import schedules
  >>> lr = schedules.compose([
  ...     (schedules.triexp(k0=0.05, k1=0.3, gamma=0.999, l=100), 400),
  ...     (schedules.nstep(k0=0.05, gamma=0.1, boundaries=[150, 180]), None),
  ... ])
  >>> opt = optax.sgd(learning_rate=lr, momentum=0.9)
"""

import inspect
import math
import numbers
from typing import Any, Callable, Optional, Sequence

import jax.numpy as jnp
import optax


# -- Validation ---------------------------------------------------------------


def _real(name: str, value: Any) -> float:
  """Returns ``value`` as a finite float, or raises ValueError naming it."""
  if isinstance(value, bool):
    raise ValueError(f"{name} must be a real number, got {name} = {value!r}.")
  try:
    v = float(value)
  except (TypeError, ValueError):
    raise ValueError(
        f"{name} must be a real number, got {name} = {value!r}.") from None
  if not math.isfinite(v):
    raise ValueError(f"{name} must be finite, got {name} = {value!r}.")
  return v


def _non_negative(name: str, value: Any) -> float:
  v = _real(name, value)
  if v < 0:
    raise ValueError(f"{name} must be >= 0, got {name} = {value!r}.")
  return v


def _positive(name: str, value: Any) -> float:
  v = _real(name, value)
  if v <= 0:
    raise ValueError(f"{name} must be > 0, got {name} = {value!r}.")
  return v


# -- Helpers ------------------------------------------------------------------


def _float32(schedule: Callable[[Any], Any]) -> optax.Schedule:
  """Wraps a schedule so that it always returns a float32 array.

  optax's schedules may return the bare Python number (``constant_schedule``)
  or a weakly typed array; an LR schedule should have one dtype whatever the
  step's type.
  """

  def wrapped(count):
    value = jnp.asarray(schedule(count), dtype=jnp.float32)
    # constant_schedule ignores the step; give the LR the step's shape anyway.
    return jnp.broadcast_to(value, jnp.shape(count))

  return wrapped


def _cyclic(k0: float, k1: float, g: Callable[[Any], Any]) -> optax.Schedule:
  """``eta(t) = k0 + (k1 - k0) * g(t)``, with ``t`` cast to float32."""

  def schedule(count):
    t = jnp.asarray(count, dtype=jnp.float32)
    return jnp.asarray(k0 + (k1 - k0) * g(t), dtype=jnp.float32)

  return schedule


def _phase(t, period: float):
  """``(t mod period) / period`` in ``[0, 1)``.

  Reducing ``t`` modulo the period first (``fmod`` is exact) keeps the
  periodic policies accurate in float32 at large ``t``, where
  ``sin(pi * t / period)`` would lose most of its digits.
  """
  return jnp.mod(t, period) / period


def _floor_div(t, period: float):
  """``floor(t / period)``, exact at multiples of ``period`` even under jit.

  Under jit XLA computes ``t / period`` as ``t * fl(1 / period)``, so
  ``jnp.floor(t / period)`` is one short at ``t = period`` for e.g.
  ``period = 41`` (``41 * fl(1 / 41) < 1``). ``t - (t mod period)`` is an exact
  multiple of ``period`` (``fmod`` is exact), so rounding its quotient gives
  the right integer.
  """
  return jnp.round((t - jnp.mod(t, period)) / period)


def _tri_wave(t, l: float):
  """``TRI(t) = (2 / pi) |asin(sin(pi t / (2 l)))|``, period ``2 l``.

  That is exactly the triangle wave ``1 - |2 x - 1|`` with ``x`` the phase in
  the period: 0 at ``t = 0``, 1 at ``t = l``, back to 0 at ``t = 2 l``. The
  closed form is used because it is exact in float32 at the corners.
  """
  return 1.0 - jnp.abs(2.0 * _phase(t, 2.0 * l) - 1.0)


def _sin_wave(t, l: float):
  """``SIN(t) = |sin(pi t / (2 l))|``, period ``2 l``."""
  # The phase is in [0, 1), so the sine is already non-negative.
  return jnp.sin(jnp.pi * _phase(t, 2.0 * l))


def _halving(t, l: float):
  """``1 / 2^floor(t / (2 l))``: the amplitude halves every period."""
  return jnp.exp2(-_floor_div(t, 2.0 * l))


# -- Fixed and decaying policies ----------------------------------------------


def fix(k0: float) -> optax.Schedule:
  """FIX: a constant learning rate, ``eta(t) = k0``.

  This is ``optax.constant_schedule(k0)``, returning a float32 array.

  Args:
    k0: the learning rate, >= 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0 = _non_negative("k0", k0)
  return _float32(optax.constant_schedule(k0))


def step(k0: float, gamma: float, l: float) -> optax.Schedule:
  """STEP: decay by ``gamma`` every ``l`` steps.

  ``eta(t) = k0 * gamma^floor(t / l)``. The LR changes *at* ``t = l, 2 l, ...``.

  ``optax.exponential_decay(k0, l, gamma, staircase=True)`` is the same formula
  and equals it in eager mode, but under ``jax.jit`` it computes
  ``floor(t * fl(1 / l))``, which for some ``l`` (41, 47, 55, 61, ... on CPU)
  is one short at ``t = l``: the LR changes one step late. Hence this
  version, whose ``floor`` is exact at every multiple of ``l``. (optax would
  also turn ``gamma = 0`` into a constant and hold ``k0`` for ``t < 0``.)

  Args:
    k0: the initial learning rate, >= 0.
    gamma: the factor applied every ``l`` steps, > 0 (``< 1`` to decay).
    l: the step size (number of steps between two changes), > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0 = _non_negative("k0", k0)
  gamma = _positive("gamma", gamma)
  l = _positive("l", l)

  def schedule(count):
    t = jnp.asarray(count, dtype=jnp.float32)
    return jnp.asarray(k0 * jnp.power(gamma, _floor_div(t, l)),
                       dtype=jnp.float32)

  return schedule


def nstep(k0: float, gamma: float,
          boundaries: Sequence[float]) -> optax.Schedule:
  """NSTEP: decay by ``gamma`` at each of the given steps.

  ``eta(t) = k0 * gamma^i`` with ``i = #{j : t >= l_j}``, i.e. ``k0 * gamma^i``
  for ``l_{i-1} <= t < l_i``: the LR changes *at* each boundary.

  LRBench calls the list of boundaries ``l`` (``l = [l_0, ..., l_{n-1}]``);
  :func:`from_lrbench` accepts either name. LRBench's own NSTEP is stateful
  (it advances one boundary per call and assumes increasing calls); this
  function is the stateless equivalent, correct at any ``t``.

  This is ``optax.piecewise_constant_schedule(k0, {l_j: gamma, ...})``, which
  scales by ``gamma`` once ``t >= l_j``.

  Args:
    k0: the initial learning rate, >= 0.
    gamma: the factor applied at each boundary, > 0.
    boundaries: the steps ``l_0 < l_1 < ...`` (LRBench's ``l``), >= 0 and
      strictly increasing. An empty list gives the constant ``k0``.

  Returns:
    An ``optax.Schedule``.
  """
  k0 = _non_negative("k0", k0)
  gamma = _positive("gamma", gamma)
  if isinstance(boundaries, (str, bytes)) or not isinstance(
      boundaries, Sequence):
    raise ValueError(
        "boundaries must be a sequence of steps (LRBench's l), got "
        f"boundaries = {boundaries!r}.")
  values = [_non_negative(f"boundaries[{i}]", b)
            for i, b in enumerate(boundaries)]
  for i in range(1, len(values)):
    if values[i] <= values[i - 1]:
      raise ValueError(
          "boundaries must be strictly increasing, got "
          f"boundaries = {list(boundaries)!r}.")
  return _float32(optax.piecewise_constant_schedule(
      init_value=k0, boundaries_and_scales={b: gamma for b in values}))


def exp(k0: float, gamma: float) -> optax.Schedule:
  """EXP: exponential decay applied every step, ``eta(t) = k0 * gamma^t``.

  This is ``optax.exponential_decay(k0, 1, gamma)``, equal to the formula for
  every ``t >= 0``. TIST 2023 uses ``gamma`` close to 1 (e.g. 0.99994); in
  float32 ``gamma`` is rounded to 24 bits, so ``gamma^t`` carries a relative
  error of about ``t * 6e-8``.

  Args:
    k0: the initial learning rate, >= 0.
    gamma: the per-step factor, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0 = _non_negative("k0", k0)
  gamma = _positive("gamma", gamma)
  return _float32(optax.exponential_decay(
      init_value=k0, transition_steps=1, decay_rate=gamma))


def inv(k0: float, gamma: float, p: float) -> optax.Schedule:
  """INV: inverse-time decay, ``eta(t) = k0 * (1 + gamma t)^(-p)``.

  optax has no inverse-time schedule, so it is written here.

  Args:
    k0: the initial learning rate, >= 0.
    gamma: the time scale of the decay, > 0.
    p: the power, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0 = _non_negative("k0", k0)
  gamma = _positive("gamma", gamma)
  p = _positive("p", p)

  def schedule(count):
    t = jnp.asarray(count, dtype=jnp.float32)
    return jnp.asarray(k0 * jnp.power(1.0 + gamma * t, -p), dtype=jnp.float32)

  return schedule


def poly(k0: float, p: float, l: float) -> optax.Schedule:
  """POLY: polynomial decay to 0 over ``l`` steps, per LRBench's table.

  ``eta(t) = k0 * (1 - t / l)^p`` for ``0 <= t <= l``, ``0`` for ``t > l``
  (and ``k0`` for ``t < 0``).

  Table vs code: the table has ``k0`` as the initial LR and ``k1 = 0`` (end
  LR; ``l = max_iter``). LRBench's code instead computes
  ``(k1 - k0) * (1 - t / l)^p + k0``: there ``k1`` is the *initial* LR and
  ``k0`` the *end* LR (0 by default, after Caffe). This function follows the
  table, so ``poly(k0=a, ...)`` equals the code with ``k1 = a, k0 = 0``.
  :func:`from_lrbench` refuses a non-zero ``k1`` for POLY rather than guess
  which convention the caller meant. Past ``l`` the bare formula raises a
  negative number to the power ``p`` (NaN for a fractional ``p``, a growing
  or negative LR for an integer one); here, as in optax, ``t`` is clipped to
  ``[0, l]``, so the LR stays 0.

  ``optax.polynomial_schedule(k0, 0.0, p, l)`` is this function in eager
  mode, but under ``jax.jit`` its ``1 - t / l`` becomes
  ``1 - t * fl(1 / l)``, slightly negative at ``t = l`` unless ``l`` is a
  power of 2: the LR is then NaN for every ``t >= l`` with a fractional
  ``p`` (e.g. ``l = 20, p = 0.9``), and ``-7e-10`` with ``p = 1``. Computing
  ``(l - t) / l`` avoids it: ``l - t`` is exactly 0 at ``t = l``.

  Args:
    k0: the initial learning rate, >= 0.
    p: the power, > 0.
    l: the number of steps to reach 0 (``max_iter``), > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0 = _non_negative("k0", k0)
  p = _positive("p", p)
  l = _positive("l", l)

  def schedule(count):
    t = jnp.clip(jnp.asarray(count, dtype=jnp.float32), 0.0, l)
    return jnp.asarray(k0 * jnp.power((l - t) / l, p), dtype=jnp.float32)

  return schedule


# -- Cyclic (CLR) policies ----------------------------------------------------


def _cyclic_args(k0, k1, l):
  return (_non_negative("k0", k0), _non_negative("k1", k1),
          _positive("l", l))


def tri(k0: float, k1: float, l: float) -> optax.Schedule:
  """TRI: triangular cyclic LR.

  ``eta(t) = k0 + (k1 - k0) * TRI(t)``,
  ``TRI(t) = (2 / pi) * |asin(sin(pi t / (2 l)))|``: a triangle wave of
  period ``2 l``, ``k0`` at ``t = 0``, ``k1`` at ``t = l``, ``k0`` at ``2 l``.

  Args:
    k0: the low bound, >= 0.
    k1: the high bound, >= 0.
    l: the half period (steps from ``k0`` to ``k1``), > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0, k1, l = _cyclic_args(k0, k1, l)
  return _cyclic(k0, k1, lambda t: _tri_wave(t, l))


def tri2(k0: float, k1: float, l: float) -> optax.Schedule:
  """TRI2: triangular cyclic LR whose amplitude halves every period.

  ``eta(t) = k0 + (k1 - k0) * TRI(t) / 2^floor(t / (2 l))``.

  Args:
    k0: the low bound, >= 0.
    k1: the high bound of the first cycle, >= 0.
    l: the half period, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0, k1, l = _cyclic_args(k0, k1, l)
  return _cyclic(k0, k1, lambda t: _tri_wave(t, l) * _halving(t, l))


def triexp(k0: float, k1: float, gamma: float, l: float) -> optax.Schedule:
  """TRIEXP: triangular cyclic LR with an exponentially decaying amplitude.

  ``eta(t) = k0 + (k1 - k0) * gamma^t * TRI(t)``.

  Args:
    k0: the low bound, >= 0.
    k1: the high bound before decay, >= 0.
    gamma: the per-step decay of the amplitude, > 0.
    l: the half period, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0, k1, l = _cyclic_args(k0, k1, l)
  gamma = _positive("gamma", gamma)
  return _cyclic(k0, k1, lambda t: jnp.power(gamma, t) * _tri_wave(t, l))


def sin(k0: float, k1: float, l: float) -> optax.Schedule:
  """SIN: sine cyclic LR.

  ``eta(t) = k0 + (k1 - k0) * SIN(t)``, ``SIN(t) = |sin(pi t / (2 l))|``:
  period ``2 l``, ``k0`` at ``t = 0``, ``k1`` at ``t = l``.

  Args:
    k0: the low bound, >= 0.
    k1: the high bound, >= 0.
    l: the half period, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0, k1, l = _cyclic_args(k0, k1, l)
  return _cyclic(k0, k1, lambda t: _sin_wave(t, l))


def sin2(k0: float, k1: float, l: float) -> optax.Schedule:
  """SIN2: sine cyclic LR whose amplitude halves every period.

  ``eta(t) = k0 + (k1 - k0) * SIN(t) / 2^floor(t / (2 l))``.

  Args:
    k0: the low bound, >= 0.
    k1: the high bound of the first cycle, >= 0.
    l: the half period, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0, k1, l = _cyclic_args(k0, k1, l)
  return _cyclic(k0, k1, lambda t: _sin_wave(t, l) * _halving(t, l))


def sinexp(k0: float, k1: float, gamma: float, l: float) -> optax.Schedule:
  """SINEXP: sine cyclic LR with an exponentially decaying amplitude.

  ``eta(t) = k0 + (k1 - k0) * gamma^t * SIN(t)``.

  Args:
    k0: the low bound, >= 0.
    k1: the high bound before decay, >= 0.
    gamma: the per-step decay of the amplitude, > 0.
    l: the half period, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0, k1, l = _cyclic_args(k0, k1, l)
  gamma = _positive("gamma", gamma)
  return _cyclic(k0, k1, lambda t: jnp.power(gamma, t) * _sin_wave(t, l))


def cos(k0: float, k1: float, l: float) -> optax.Schedule:
  """COS: cosine cyclic LR, per LRBench's table.

  ``eta(t) = k0 + (k1 - k0) * COS(t)``,
  ``COS(t) = (1 + cos(pi * 2 t / l)) / 2``: period ``l``, ``k1`` at ``t = 0``,
  ``k0`` at ``t = l / 2``, back to ``k1`` at ``t = l``.

  Table vs code: LRBench's code computes ``(1 + cos(pi t / l)) / 2``, i.e.
  period ``2 l``: ``k1`` at 0, ``k0`` at ``t = l``, ``k1`` again at ``2 l``
  (so that ``l`` is a half period, as in TRI and SIN). This function follows
  the table; to get the code's curve, pass ``l = 2 * l_code``.

  Unlike ``optax.cosine_decay_schedule`` (which stops at its end) and
  ``optax.sgdr_schedule`` (which jumps back up), this cosine rises back
  smoothly and runs forever, so no optax schedule is reused.

  Args:
    k0: the low bound, >= 0.
    k1: the high bound (the LR at ``t = 0``), >= 0.
    l: the period, > 0.

  Returns:
    An ``optax.Schedule``.
  """
  k0, k1, l = _cyclic_args(k0, k1, l)
  return _cyclic(
      k0, k1, lambda t: 0.5 * (1.0 + jnp.cos(2.0 * jnp.pi * _phase(t, l))))


# -- Composite (multi-policy) LR ----------------------------------------------


def compose(
    segments: Sequence[tuple[optax.Schedule, Optional[int]]],
) -> optax.Schedule:
  """Chains schedules, restarting each one's clock at its start (multi-policy).

  ``segments = [(s_0, n_0), (s_1, n_1), ...]`` runs ``s_0`` for ``n_0`` steps,
  then ``s_1`` for ``n_1`` steps, and so on. With ``b_k = n_0 + ... +
  n_{k-1}``, the LR at step ``t`` in ``[b_k, b_{k+1})`` is ``s_k(t - b_k)``:
  every policy starts at its own ``t = 0``. This is LRBench's ``piecewiseLR``
  (TIST 2023, homogeneous or heterogeneous multi-policy LR), whose
  ``subRegions`` are the absolute boundaries ``[b_1, b_2, ...]``, built with
  ``optax.join_schedules(schedules, boundaries=[b_1, b_2, ...])``.

  Args:
    segments: a non-empty sequence of ``(schedule, num_steps)`` pairs, with
      ``num_steps`` a positive int. The last segment's ``num_steps`` may be
      ``None``; either way the last schedule keeps running past the end.

  Returns:
    An ``optax.Schedule``.
  """
  if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence):
    raise ValueError(
        "segments must be a sequence of (schedule, num_steps) pairs, got "
        f"segments = {segments!r}.")
  if not segments:
    raise ValueError("segments must hold at least one (schedule, num_steps) "
                     "pair, got an empty sequence.")
  schedules, boundaries, total = [], [], 0
  for i, segment in enumerate(segments):
    try:
      schedule, num_steps = segment
    except (TypeError, ValueError):
      raise ValueError(
          f"segments[{i}] must be a (schedule, num_steps) pair, got "
          f"{segment!r}.") from None
    if not callable(schedule):
      raise ValueError(
          f"segments[{i}]: the schedule must be callable, got {schedule!r}.")
    is_last = i == len(segments) - 1
    if num_steps is None:
      if not is_last:
        raise ValueError(
            f"segments[{i}]: only the last segment's num_steps may be None.")
    elif (isinstance(num_steps, bool)
          or not isinstance(num_steps, numbers.Integral) or num_steps <= 0):
      raise ValueError(
          f"segments[{i}]: num_steps must be a positive int, got "
          f"num_steps = {num_steps!r}.")
    elif not is_last:
      total += int(num_steps)
      boundaries.append(total)
    schedules.append(schedule)
  return _float32(optax.join_schedules(schedules, boundaries))


# -- Registry -----------------------------------------------------------------

POLICIES: dict[str, Callable[..., optax.Schedule]] = {
    "FIX": fix,
    "STEP": step,
    "NSTEP": nstep,
    "EXP": exp,
    "INV": inv,
    "POLY": poly,
    "TRI": tri,
    "TRI2": tri2,
    "TRIEXP": triexp,
    "SIN": sin,
    "SIN2": sin2,
    "SINEXP": sinexp,
    "COS": cos,
}


def from_lrbench(name: str, **params: Any) -> optax.Schedule:
  """Builds a schedule from an LRBench policy name and its parameters.

  Accepts LRBench's parameter dictionaries as they are, e.g.
  ``from_lrbench(d.pop("lrPolicy"), **d)`` for
  ``d = {"lrPolicy": "NSTEP", "k0": 0.05, "gamma": 0.1, "l": [150, 180]}``:

  * parameters set to ``None`` (LRBench's "unused") are dropped;
  * NSTEP's ``l`` is passed as ``boundaries``;
  * ``k1`` for a non-cyclic policy is dropped when it is the table's value
    (``k0`` for FIX, 0 for the decaying ones) and refused otherwise; for POLY
    LRBench's code reads ``k1`` as the start LR (see :func:`poly`).

  Args:
    name: the LRBench abbreviation (a key of ``POLICIES``; any case).
    **params: the policy's hyper-parameters.

  Returns:
    An ``optax.Schedule``.

  Raises:
    ValueError: unknown name, unknown/missing parameters or bad values.
  """
  key = str(name).upper()
  if key not in POLICIES:
    raise ValueError(
        f"Unknown LRBench policy name = {name!r}; expected one of "
        f"{sorted(POLICIES)}.")
  factory = POLICIES[key]
  params = {k: v for k, v in params.items() if v is not None}
  if key == "NSTEP" and "l" in params:
    if "boundaries" in params:
      raise ValueError("NSTEP takes its boundaries as l or as boundaries, "
                       "not both.")
    params["boundaries"] = params.pop("l")
  accepted = inspect.signature(factory).parameters
  if "k1" in params and "k1" not in accepted:
    implied = params.get("k0") if key == "FIX" else 0.0
    if _real("k1", params["k1"]) != implied:
      hint = (" LRBench's code uses k1 as POLY's start LR and k0 as its end "
              "LR; the table (followed here) starts at k0 and ends at 0."
              if key == "POLY" else "")
      raise ValueError(
          f"{key} has no k1 (the table's k1 is "
          f"{'k0' if key == 'FIX' else 0}), got k1 = {params['k1']!r}.{hint}")
    del params["k1"]
  unknown = sorted(set(params) - set(accepted))
  if unknown:
    raise ValueError(
        f"{key} does not take {unknown}; it takes {list(accepted)}.")
  missing = [n for n in accepted if n not in params]
  if missing:
    raise ValueError(f"{key} needs {missing}; it takes {list(accepted)}.")
  return factory(**params)
