"""An ExpTest-style learning-rate controller: hypothesis tests on the loss curve.

*After* ExpTest (Chaudhry & Mizuno, `arXiv 2411.16975
<https://arxiv.org/abs/2411.16975>`_), not a reproduction of it. Only the
paper's abstract could be read: under a stable learning rate the loss decays
exponentially, and hypothesis tests on the loss curve, read as a real-time
signal, first find the initial learning rate and then tune it during training.
The paper's test statistic, windows, thresholds, factors and defaults could not
be consulted, so every choice below is ours and is documented as such.

Training is cut into windows at a constant learning rate. At the end of each
window the AutoLRS forecaster (:func:`autolrs_jax.forecast.fit_exponential`)
fits ``y(s) = a exp(-r s) + c`` to the window's losses and an F-test, whose
null distribution is calibrated by simulation, tests H0 "no exponential decay"
against "the loss decays" (:func:`window_test`). A *search* phase grows the
learning rate geometrically from a tiny value while the windows keep decaying
and improving; a *tuning* phase then divides it whenever a window shows no
significant decay. Everything runs inside one compiled ``update``.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from optax._src import base

from autolrs_jax import forecast as forecast_lib
# Shared with the AutoLRS controller: the ``value=`` check, the finiteness
# test, the tree select, and the placement of a fresh state on the params' mesh.
from autolrs_jax.autolrs import _all_finite
from autolrs_jax.autolrs import _build_on_mesh_of
from autolrs_jax.autolrs import _check_value
from autolrs_jax.autolrs import _select

# Phases of the controller (values of ``ExpTestState.phase``).
SEARCH = 0
TUNE = 1
PHASE_NAMES = ("search", "tune")

# Outcomes of a window's test (values of ``ExpTestState.outcome``); NONE
# before the first window ends.
NONE = -1
FLAT = 0
DECAYING = 1
RISING = 2
OUTCOME_NAMES = ("flat", "decaying", "rising")  # Indexed by outcome >= 0.

# Null samples drawn to calibrate the test (doubled by symmetry, see
# ``null_statistics``): the p-value resolution is 1 / (2 * NULL_SAMPLES + 1).
NULL_SAMPLES = 4096
_NULL_SEED = 20241125

# Smoothing of the loss for the divergence bound: an exponential moving
# average with this decay (about 10 steps of memory), so that one minibatch
# spike alone needs to be ~10 x divergence_factor above the best to count.
EMA_DECAY = 0.9

# Largest learning rate the search may set when ``max_lr`` is None: keeps the
# state finite if the loss never reacts to the learning rate.
_LR_CEILING = 1e30


class ExpTestState(NamedTuple):
  """State of :func:`exptest`. Shapes depend only on ``window``."""

  count: jax.Array  # int32: update calls so far.
  phase: jax.Array  # int32: SEARCH or TUNE.
  learning_rate: jax.Array  # float32: LR the next update applies.
  block_size: jax.Array  # int32: steps averaged into one point of the window.
  block_step: jax.Array  # int32: steps already summed into the current point.
  window_step: jax.Array  # int32: complete points in the current window.
  losses: jax.Array  # float32[window]: the window's per-point loss sums.
  windows: jax.Array  # int32: windows tested so far.
  outcome: jax.Array  # int32: last window's outcome (NONE, FLAT, DECAYING, RISING).
  statistic: jax.Array  # float32: last window's F statistic.
  p_value: jax.Array  # float32: its one-sided p-value for "decaying".
  drop: jax.Array  # float32: its fitted relative drop over the window.
  best_drop: jax.Array  # float32: largest drop of a confirmed search window.
  decay_streak: jax.Array  # int32: decaying windows in a row; frozen once >= confirm_windows.
  bad_windows: jax.Array  # int32: consecutive search windows failing after confirmation.
  smoothed_loss: jax.Array  # float32: EMA of the loss; NaN until (re)started.
  best_smoothed_loss: jax.Array  # float32: lowest EMA since the last (re)start.
  num_decreases: jax.Array  # int32: plateau decreases in the tuning phase.
  num_cuts: jax.Array  # int32: divergence cuts (skipped steps).
  base_state: base.OptState  # State of the base optimizer.


class WindowTest(NamedTuple):
  """Result of :func:`window_test` on one window of losses."""

  statistic: jax.Array  # F of the exponential fit against the constant.
  p_decay: jax.Array  # one-sided p-value of H0 against "decaying".
  p_rise: jax.Array  # one-sided p-value of H0 against "rising".
  drop: jax.Array  # (fit(first) - fit(last)) / |fit(first)|.
  fit: forecast_lib.ExponentialFit  # Fitted on normalised time s = t / window.


def _f_statistic(losses):
  """``(F, signed F, drop, fit)`` of one window (a 1-D array of losses).

  The series is standardised first (the fit is affine-equivariant, so this
  changes nothing but the floating-point range: losses near 1e-20 would
  otherwise square to zero). A series whose spread is below 1e-6 of its
  largest magnitude (float32 rounding) counts as constant: F = 0.
  """
  y = jnp.asarray(losses, jnp.float32)
  n = y.shape[0]
  s = jnp.arange(n, dtype=jnp.float32) / n
  peak = jnp.max(jnp.abs(y))
  peak = jnp.where(peak > 0, peak, 1.0)
  relative_scale = jnp.std(y / peak)
  nonconstant = relative_scale > 1e-6
  mean = jnp.mean(y)
  scale = relative_scale * peak
  z = jnp.where(nonconstant, (y - mean) / jnp.where(nonconstant, scale, 1.0), 0.0)
  fit = forecast_lib.fit_exponential(
      s, z, jnp.ones([n], bool), max_rate=n / forecast_lib.MIN_DECAY_STEPS)
  sse_exp = jnp.sum(jnp.square(z - forecast_lib.evaluate(fit, s)))
  sse_const = jnp.sum(jnp.square(z))  # z has mean 0.
  # The robust fit does not minimise the plain SSE, so it can lose to the mean.
  numerator = jnp.maximum(sse_const - sse_exp, 0.0) / 2.0
  denominator = jnp.maximum(sse_exp / (n - 3), 1e-30)
  f = jnp.where(nonconstant, jnp.minimum(numerator / denominator, 1e30), 0.0)
  signed = f * jnp.sign(fit.amplitude)
  first = forecast_lib.evaluate(fit, 0.0) * scale + mean
  last = forecast_lib.evaluate(fit, (n - 1) / n) * scale + mean
  drop = jnp.where(nonconstant, (first - last) / jnp.maximum(jnp.abs(first), 1e-30), 0.0)
  fit = forecast_lib.ExponentialFit(
      amplitude=fit.amplitude * scale, rate=fit.rate,
      asymptote=fit.asymptote * scale + mean)
  return f, signed, drop, fit


@functools.lru_cache(maxsize=None)
def null_statistics(window: int) -> np.ndarray:
  """Sorted null distribution of the signed F statistic for ``window`` losses.

  ``NULL_SAMPLES`` windows of i.i.d. standard normal noise (a fixed seed, so
  the test is deterministic), each scored exactly as :func:`window_test` scores
  losses. The statistic is invariant to the noise's mean and scale, so one
  table serves every loss level. The null is symmetric (``y -> -y`` flips the
  fit's sign and keeps ``F``), so the table holds each value and its negation.
  Computed once per window length and cached.
  """
  if window < 8:
    raise ValueError(f"window must be >= 8, got window = {window}.")
  with jax.ensure_compile_time_eval():
    noise = jax.random.normal(jax.random.key(_NULL_SEED), (NULL_SAMPLES, window))
    signed = jax.jit(jax.vmap(lambda y: _f_statistic(y)[1]))(noise)
  signed = np.asarray(signed, np.float32)
  table = np.sort(np.concatenate([signed, -signed]))
  table.flags.writeable = False  # Shared by every caller through the cache.
  return table


def window_test(losses: jax.typing.ArrayLike, null: jax.typing.ArrayLike | None = None
                ) -> WindowTest:
  """Tests one window of (finite) losses for exponential decay.

  **Statistic.** The exponential fit ``y = a exp(-r t / W) + c`` of
  :func:`autolrs_jax.forecast.fit_exponential` (robust, ``r`` searched on a
  grid in ``[ln 2, W / 3]``) against the constant model ``y = mean``:
  ``F = ((SSE_const - SSE_exp) / 2) / (SSE_exp / (W - 3))``, with SSE_exp the
  plain sum of squared residuals of the fit. It is signed by ``a``: positive
  for a decreasing fitted curve, negative for an increasing one.

  **Null distribution.** Were ``r`` fixed, ``F`` would follow ``F(1, W - 2)``
  under H0 (i.i.d. Gaussian noise around a constant), and counting ``r`` as a
  parameter gives the textbook ``F(2, W - 3)``. But ``r`` is chosen by a
  search and the fit is robust, so neither holds. Measured on 20000 noise
  windows at alpha in {0.01, 0.05, 0.1}, the one-sided test from
  ``F(2, W - 3)`` (half its p-value, when ``a > 0``) rejects at 0.3-0.4 alpha
  (W = 12), 0.6 alpha (W = 50) and 0.7-0.8 alpha (W = 200), the one from
  ``F(1, W - 2)`` at 1.1-2.5 alpha: the effective degrees of freedom of the
  searched rate grow with W. So the p-value is a Monte Carlo one: the signed
  statistic's rank among ``null`` (:func:`null_statistics`), ``p_decay =
  (1 + #{null >= T}) / (len(null) + 1)`` and ``p_rise = (1 + #{null <= T}) /
  (len(null) + 1)``. It is exact for i.i.d. Gaussian noise of any mean and
  scale (the statistic is invariant to both) up to the table's Monte Carlo
  error (about +-0.003 at alpha = 0.05). Minibatch losses are neither exactly
  Gaussian nor independent: there, as for any F-test, it is approximate.

  Args:
    losses: shape ``(W,)``, ``W >= 8``.
    null: the sorted null table; default ``null_statistics(W)``.

  Returns:
    The :class:`WindowTest`; vmap it over windows freely.
  """
  losses = jnp.asarray(losses, jnp.float32)
  if null is None:
    null = null_statistics(losses.shape[-1])
  null = jnp.asarray(null, jnp.float32)
  f, signed, drop, fit = _f_statistic(losses)
  m = null.shape[0]
  at_least = m - jnp.searchsorted(null, signed, side="left")
  at_most = jnp.searchsorted(null, signed, side="right")
  return WindowTest(
      statistic=f,
      p_decay=((1.0 + at_least) / (m + 1.0)).astype(jnp.float32),
      p_rise=((1.0 + at_most) / (m + 1.0)).astype(jnp.float32),
      drop=drop,
      fit=fit,
  )


def exptest(
    base_optimizer: base.GradientTransformation,
    *,
    initial_lr: float | None = None,
    search: bool = True,
    search_start_lr: float = 1e-6,
    window: int = 100,
    alpha: float = 0.05,
    growth_factor: float = 2.0,
    confirm_windows: int = 2,
    improvement: float = 0.0,
    patience: int = 2,
    backoff_factor: float = 4.0,
    decrease_factor: float = 2.0,
    max_block_size: int = 16,
    min_lr: float = 0.0,
    max_lr: float | None = None,
    divergence_factor: float = 4.0,
    divergence_cut: float = 10.0,
    axis_name: str | None = None,
) -> base.GradientTransformationExtraArgs:
  """ExpTest-style control of the learning rate by tests on the loss curve.

  *After* ExpTest (Chaudhry & Mizuno, arXiv 2411.16975), built on the idea its
  abstract states: under a stable learning rate the loss decays exponentially,
  so hypothesis tests on the loss curve can find the initial learning rate and
  then tune it during training. The paper's test, windows and thresholds could
  not be consulted: every choice here (the statistic, its calibration, the
  window, alpha, all factors and defaults) is ours, not the paper's.

  Wraps ``base_optimizer``, built with learning rate 1.0, and multiplies its
  updates by the controller's learning rate (as :func:`autolrs_jax.autolrs`
  does; exact for optimizers linear in the learning rate). Every call passes
  the minibatch loss of the current parameters as ``value``. Nothing is ever
  restored: every step trains.

  **Windows.** The learning rate is constant over a window of ``window``
  points; a point is the mean loss of ``block_size`` consecutive steps (1 in
  the search). At the end of a window :func:`window_test` (an F-test of the
  core's exponential fit against a constant, Monte Carlo calibrated) judges it
  at level ``alpha``: *decaying* when ``p_decay < alpha`` (the fitted curve
  then falls), *rising* when ``p_rise < alpha``, *flat* otherwise. Its *drop*
  is the fitted curve's fall over the window relative to its start,
  ``(fit(first) - fit(last)) / |fit(first)|``. Losses are taken to be
  positive, as cross-entropies and squared errors are.

  **Search** (phase ``'search'``). Starts at ``initial_lr``, default
  ``search_start_lr``, and multiplies the learning rate by ``growth_factor``
  after every window until the decay is *confirmed* by ``confirm_windows``
  decaying windows in a row (a single one could be one of the false
  positives, rate alpha, among the dozen flat windows that a tiny start
  gives; before that, flat and rising windows only mean "too small to move
  the loss"). From then on a window is *good* when it is decaying and
  *improving*: its drop is at least ``improvement`` times the best drop of the
  search so far. The default 0 asks only for a decay: a smaller drop is as
  often the loss landscape as the learning rate (MNIST-1D's loss slows down
  near 1.5 whatever the learning rate; from 1e-3 with ``improvement=0.5``,
  two of three benchmark seeds ended their search there at 4e-3 and finished
  at a validation loss of 1.2-1.3 instead of 0.10-0.13).
  A good window grows the learning rate; a bad one holds it for a second look;
  ``patience`` bad windows in a row, or one rising window, end the search,
  dividing the learning rate by ``backoff_factor`` (default 4: half the last
  learning rate that was good). The search also ends at ``max_lr`` (kept) and
  at a divergence (below). On MNIST-1D every search we ran ended so: the
  loss kept decaying faster up to the edge of stability, and the divergence
  was caught within the first window past it.

  **Tuning** (phase ``'tune'``). A window that is not decaying (a plateau, or
  a rise) divides the learning rate by ``decrease_factor``, down to
  ``min_lr``, and doubles ``block_size`` up to ``max_block_size``: the next
  window looks twice as far, averaging twice as many steps per point, so that
  a slow decay lost in minibatch noise over a short window is still found
  over a long one. A decaying window keeps both.

  **Divergence.** A step whose loss or scaled update is NaN/Inf, or whose
  smoothed loss ``S`` (EMA, decay ``EMA_DECAY``, this step's loss included)
  exceeds the best smoothed loss ``B`` since the last (re)start by
  ``(divergence_factor - 1) |B|`` (``S > divergence_factor B`` for positive
  losses), is skipped: zero update, base state kept, so NaN never reaches the
  params. Nothing is restored; the learning rate is divided by
  ``divergence_cut`` (down to ``min_lr``), the window restarts, a search ends
  (tuning starts), and the smoothing restarts from the next loss (else a loss
  level that stays high after the cut would cut again at every step). The
  bound uses the smoothed loss so that a lone minibatch spike must be about
  ``10 * divergence_factor`` times the best to count: on MNIST-1D at batch
  128 single losses reach 3.6 times the best smoothed loss.

  Args:
    base_optimizer: the optimizer to control, with learning rate 1.0.
    initial_lr: first learning rate. With ``search`` the search starts there
      (default ``search_start_lr``); without, tuning starts there (required).
    search: run the initial search; False tunes from ``initial_lr``.
    search_start_lr: where the search starts when ``initial_lr`` is None.
    window: points per window (>= 8), the test's sample size. 100 after
      MNIST-1D runs, where 50 ended searches early and decreased too often.
      The first :func:`exptest` of a given ``window`` spends a few seconds
      simulating its null table (:func:`null_statistics`, then cached).
    alpha: significance level of every window test, in (1/8193, 0.5).
    growth_factor: the search's learning-rate factor per window, > 1.
    confirm_windows: decaying windows in a row that confirm the decay, >= 1.
    improvement: fraction of the search's best drop a window must reach to
      count as improving, >= 0 (0: any decaying window is good; > 1 demands
      a growing drop).
    patience: bad search windows in a row that end the search, >= 1.
    backoff_factor: the learning rate is divided by it when the search ends on
      its own, >= 1.
    decrease_factor: tuning divides the learning rate by it after a window
      that is not decaying, > 1.
    max_block_size: cap of ``block_size`` (so of a window, ``window *
      max_block_size`` steps), >= 1.
    min_lr: floor of every decrease and cut, >= 0 and <= the first LR.
    max_lr: cap of the search; None for none.
    divergence_factor: bound on the smoothed loss relative to its best, > 1.
    divergence_cut: the learning rate is divided by it on a divergence, > 1.
    axis_name: set under ``jax.pmap``/``shard_map``: ``value`` is averaged
      over this axis, so that every replica takes the same decisions.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`. Its ``update`` takes
    ``(updates, state, params, *, value, **extra_args)``; extra arguments are
    forwarded to ``base_optimizer``. Read the state with
    :func:`autolrs_jax.autolrs.describe`, or
    ``autolrs_jax.autolrs.find_state(tree, kind=None)`` (also under ``jit``).

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> from autolrs_jax.exptest import exptest
    >>> tx = exptest(optax.sgd(1.0), window=10)
    >>> params = {'w': jnp.ones(3)}
    >>> state = tx.init(params)
    >>> loss_fn = lambda p: jnp.sum(p['w'] ** 2)
    >>> for _ in range(30):
    ...   loss, grads = jax.value_and_grad(loss_fn)(params)
    ...   updates, state = tx.update(grads, state, params, value=loss)
    ...   params = optax.apply_updates(params, updates)

  References:
    Z. Chaudhry and N. Mizuno, `arXiv 2411.16975
    <https://arxiv.org/abs/2411.16975>`_, 2024 (ExpTest; only its abstract
    was consulted).
  """
  _validate(initial_lr, search, search_start_lr, window, alpha, growth_factor,
            confirm_windows, improvement, patience, backoff_factor, decrease_factor,
            max_block_size, min_lr, max_lr, divergence_factor, divergence_cut)
  first_lr = initial_lr if initial_lr is not None else search_start_lr
  lr_cap = _LR_CEILING if max_lr is None else max_lr
  null = null_statistics(window)

  def init_controller() -> ExpTestState:
    i32 = lambda v: jnp.asarray(v, jnp.int32)
    f32 = lambda v: jnp.asarray(v, jnp.float32)
    return ExpTestState(
        count=i32(0),
        phase=i32(SEARCH if search else TUNE),
        learning_rate=f32(first_lr),
        block_size=i32(1),
        block_step=i32(0),
        window_step=i32(0),
        losses=jnp.zeros([window], jnp.float32),
        windows=i32(0),
        outcome=i32(NONE),
        statistic=f32(0.0),
        p_value=f32(1.0),
        drop=f32(0.0),
        best_drop=f32(0.0),
        decay_streak=i32(0),
        bad_windows=i32(0),
        smoothed_loss=f32(jnp.nan),
        best_smoothed_loss=f32(jnp.inf),
        num_decreases=i32(0),
        num_cuts=i32(0),
        base_state=None,
    )

  def init_fn(params):
    controller = _build_on_mesh_of(params, init_controller)
    return controller._replace(base_state=base_optimizer.init(params))

  def on_window_end(state):
    test = window_test(state.losses / state.block_size.astype(jnp.float32), null)
    decaying = test.p_decay < alpha
    rising = test.p_rise < alpha
    outcome = jnp.where(decaying, DECAYING, jnp.where(rising, RISING, FLAT))
    lr = state.learning_rate
    searching = state.phase == SEARCH

    # Search. Before the decay is confirmed every window grows the LR. After,
    # a window is good when it decays and keeps `improvement` of the best drop;
    # `patience` bad windows in a row (the LR held meanwhile), or one rising
    # window, end the search with a back-off.
    confirmed = state.decay_streak >= confirm_windows
    good = decaying & (test.drop >= improvement * state.best_drop)
    bad = confirmed & ~good
    bad_windows = jnp.where(bad, state.bad_windows + 1, 0)
    give_up = confirmed & (rising | (bad_windows >= patience))
    at_cap = lr >= lr_cap
    grown = jnp.minimum(lr * growth_factor, lr_cap)
    search_lr = jnp.where(give_up, jnp.maximum(lr / backoff_factor, min_lr),
                          jnp.where(bad, lr, grown))
    search_ends = give_up | at_cap
    best_drop = jnp.where(searching & confirmed & good,
                          jnp.maximum(state.best_drop, test.drop), state.best_drop)
    # The first confirmed window sets the reference drop.
    best_drop = jnp.where(searching & ~confirmed & decaying,
                          jnp.maximum(best_drop, test.drop), best_drop)

    # Tuning: a window that is not decaying divides the LR, and doubles the
    # averaging block (the next window looks twice as far).
    decrease = ~searching & ~decaying
    tune_lr = jnp.where(decrease, jnp.maximum(lr / decrease_factor, min_lr), lr)
    block_size = jnp.where(decrease, jnp.minimum(2 * state.block_size, max_block_size),
                           state.block_size)

    return state._replace(
        phase=jnp.where(searching & ~search_ends, SEARCH, TUNE).astype(jnp.int32),
        learning_rate=jnp.where(searching, search_lr, tune_lr).astype(jnp.float32),
        block_size=block_size.astype(jnp.int32),
        window_step=jnp.zeros_like(state.window_step),
        losses=jnp.zeros_like(state.losses),
        windows=state.windows + 1,
        outcome=outcome.astype(jnp.int32),
        statistic=test.statistic,
        p_value=test.p_decay,
        drop=test.drop,
        best_drop=best_drop,
        # Once confirmed, the search stays confirmed.
        decay_streak=jnp.where(
            confirmed, state.decay_streak,
            jnp.where(decaying, state.decay_streak + 1, 0)).astype(jnp.int32),
        bad_windows=jnp.where(searching, bad_windows, 0).astype(jnp.int32),
        num_decreases=state.num_decreases + decrease.astype(jnp.int32),
    )

  def on_record(state, value, smoothed):
    block_step = state.block_step + 1
    point_done = block_step == state.block_size
    state = state._replace(
        block_step=jnp.where(point_done, 0, block_step),
        window_step=state.window_step + point_done.astype(jnp.int32),
        losses=state.losses.at[state.window_step].add(value),
        smoothed_loss=smoothed,
        best_smoothed_loss=jnp.minimum(state.best_smoothed_loss, smoothed),
    )
    return jax.lax.cond(state.window_step == window, on_window_end, lambda s: s, state)

  def on_diverge(state, value, smoothed):
    del value, smoothed
    lr = jnp.maximum(state.learning_rate / divergence_cut, min_lr)
    return state._replace(
        phase=jnp.asarray(TUNE, jnp.int32),
        learning_rate=lr.astype(jnp.float32),
        block_step=jnp.zeros_like(state.block_step),
        window_step=jnp.zeros_like(state.window_step),
        losses=jnp.zeros_like(state.losses),
        decay_streak=jnp.zeros_like(state.decay_streak),
        bad_windows=jnp.zeros_like(state.bad_windows),
        smoothed_loss=jnp.full_like(state.smoothed_loss, jnp.nan),
        best_smoothed_loss=jnp.full_like(state.best_smoothed_loss, jnp.inf),
        num_cuts=state.num_cuts + 1,
    )

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    value = _check_value(value, "value")
    if axis_name is not None:
      value = jax.lax.pmean(value, axis_name)
    base_updates, new_base_state = base_optimizer.update(
        updates, state.base_state, params, **extra_args)
    lr = state.learning_rate
    scaled = jax.tree.map(lambda u: (lr * u).astype(u.dtype), base_updates)

    started = ~jnp.isnan(state.smoothed_loss)
    smoothed = jnp.where(
        started, EMA_DECAY * state.smoothed_loss + (1.0 - EMA_DECAY) * value, value)
    best = state.best_smoothed_loss
    bound = best + (divergence_factor - 1.0) * jnp.abs(best)
    exploded = started & (smoothed > bound)
    diverged = ~jnp.isfinite(value) | ~_all_finite(scaled) | exploded

    zeros = jax.tree.map(jnp.zeros_like, scaled)
    new_updates = _select(diverged, zeros, scaled)
    base_state = _select(diverged, state.base_state, new_base_state)
    controller = state._replace(base_state=None)
    controller = jax.lax.cond(diverged, on_diverge, on_record, controller, value, smoothed)
    return new_updates, controller._replace(count=state.count + 1, base_state=base_state)

  return base.GradientTransformationExtraArgs(init_fn, update_fn)


def _validate(initial_lr, search, search_start_lr, window, alpha, growth_factor,
              confirm_windows, improvement, patience, backoff_factor, decrease_factor,
              max_block_size, min_lr, max_lr, divergence_factor, divergence_cut):
  """Raises ValueError naming the first bad hyper-parameter."""
  if initial_lr is not None and not initial_lr > 0:
    raise ValueError(f"initial_lr must be > 0, got initial_lr = {initial_lr}.")
  if not search and initial_lr is None:
    raise ValueError("initial_lr is required when search=False.")
  if not search_start_lr > 0:
    raise ValueError(f"search_start_lr must be > 0, got search_start_lr = {search_start_lr}.")
  if window < 8:
    raise ValueError(f"window must be >= 8, got window = {window}.")
  resolution = 1.0 / (2 * NULL_SAMPLES + 1)
  if not resolution < alpha < 0.5:
    raise ValueError(f"alpha must be in ({resolution:.1e}, 0.5), got alpha = {alpha}.")
  if not growth_factor > 1:
    raise ValueError(f"growth_factor must be > 1, got growth_factor = {growth_factor}.")
  if confirm_windows < 1:
    raise ValueError(f"confirm_windows must be >= 1, got confirm_windows = {confirm_windows}.")
  if not improvement >= 0:
    raise ValueError(f"improvement must be >= 0, got improvement = {improvement}.")
  if patience < 1:
    raise ValueError(f"patience must be >= 1, got patience = {patience}.")
  if not backoff_factor >= 1:
    raise ValueError(f"backoff_factor must be >= 1, got backoff_factor = {backoff_factor}.")
  if not decrease_factor > 1:
    raise ValueError(f"decrease_factor must be > 1, got decrease_factor = {decrease_factor}.")
  if max_block_size < 1:
    raise ValueError(f"max_block_size must be >= 1, got max_block_size = {max_block_size}.")
  if not min_lr >= 0:
    raise ValueError(f"min_lr must be >= 0, got min_lr = {min_lr}.")
  start = initial_lr if initial_lr is not None else search_start_lr
  if max_lr is not None and not max_lr >= start:
    raise ValueError(
        f"max_lr must be >= the first learning rate {start}, got max_lr = {max_lr}.")
  if not min_lr <= start:
    raise ValueError(
        f"min_lr must be <= the first learning rate {start}, got min_lr = {min_lr}.")
  if not divergence_factor > 1:
    raise ValueError(
        f"divergence_factor must be > 1, got divergence_factor = {divergence_factor}.")
  if not divergence_cut > 1:
    raise ValueError(f"divergence_cut must be > 1, got divergence_cut = {divergence_cut}.")
  if not math.isfinite(start):
    raise ValueError(f"initial_lr must be finite, got initial_lr = {initial_lr}.")
