"""The window test of the ExpTest-style controller: does a loss curve decay?

An F-test of an exponential fit (:func:`autolrs_jax.forecast.fit_exponential`)
against a constant, on one window of losses, with a null distribution
calibrated by simulation (:func:`null_statistics`).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from autolrs_jax import forecast as forecast_lib

# Null samples drawn to calibrate the test (doubled by symmetry, see
# ``null_statistics``): the p-value resolution is 1 / (2 * NULL_SAMPLES + 1).
NULL_SAMPLES = 4096
_NULL_SEED = 20241125


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
