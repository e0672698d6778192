"""The exponential loss forecaster of AutoLRS, jit-able and without failure modes.

A probe trains a few steps at one learning rate; AutoLRS forecasts the loss
that learning rate would reach after a whole stage by fitting

  y(s) = a * exp(-r * s) + c,   s = t / probe_length,   r > 0,

to the probe's losses and evaluating the curve at ``s = horizon / probe_length``.

The reference fits ``r`` by Nelder-Mead after spline smoothing, which crashes
on flat or concave series and extrapolates linear ones to nonsense. Here:

* ``r`` is searched on a fixed log-spaced grid, then refined by two zooms; for
  every ``r`` the linear parameters ``(a, c)`` have a closed form (weighted
  least squares on the basis ``[exp(-r s), 1]``). No iteration can diverge.
* ``r >= ln 2`` (the curve must lose at least half of its remaining decay over
  one probe). A nearly linear series is then forecast to fall at most about as
  much again as it fell during the probe, instead of linearly for ten probes.
* Outliers (spiky minibatch losses) are down-weighted by iteratively
  reweighted least squares (Huber, then Tukey bisquare weights), replacing
  the reference's spline-and-drop trick.
* Flat series give their level, increasing ones their (higher) asymptote, and
  the forecast is clipped to the data's range widened by the data's span.

Everything works on fixed-size arrays with a mask, so one compiled function
serves every probe length.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


# Decay rates per unit of normalised time (one probe). ln 2 is the slowest
# decay allowed (see module docstring). The fastest decays over
# ``MIN_DECAY_STEPS`` steps, so that a lone spike on the first loss cannot be
# absorbed as a "transient" of the curve.
MIN_RATE = math.log(2.0)
MIN_DECAY_STEPS = 3.0
_NUM_COARSE_RATES = 48
_NUM_ZOOM_RATES = 17
_NUM_ZOOMS = 2
_NUM_HUBER_ROUNDS = 4
_NUM_BISQUARE_ROUNDS = 2
_HUBER_K = 1.345  # 95% efficiency at Gaussian noise.
_BISQUARE_C = 4.685  # Likewise, for Tukey's bisquare.
_MAD_TO_SIGMA = 1.4826


class ExponentialFit(NamedTuple):
  """Parameters of ``y(s) = amplitude * exp(-rate * s) + asymptote``."""

  amplitude: jax.Array  # a; > 0 for a decreasing curve.
  rate: jax.Array  # r, per unit of normalised time; >= MIN_RATE.
  asymptote: jax.Array  # c, the level the curve tends to.


def _weighted_linear_fit(phi, y, w):
  """Closed-form weighted least squares of ``y ~ a * phi + c`` for each row.

  Args:
    phi: basis values, shape ``(R, N)`` (one row per decay rate).
    y: targets, shape ``(N,)``.
    w: non-negative weights, shape ``(N,)``.

  Returns:
    ``(a, c, sse)``, each of shape ``(R,)``.
  """
  sw = jnp.maximum(jnp.sum(w), 1e-12)
  y_mean = jnp.sum(w * y) / sw
  phi_mean = jnp.sum(w * phi, axis=-1, keepdims=True) / sw
  dphi = phi - phi_mean
  dy = y - y_mean
  var = jnp.sum(w * dphi * dphi, axis=-1)
  cov = jnp.sum(w * dphi * dy, axis=-1)
  # A basis that is constant on the data carries no slope: fit the mean.
  a = jnp.where(var > 1e-12, cov / jnp.where(var > 1e-12, var, 1.0), 0.0)
  c = y_mean - a * phi_mean[..., 0]
  resid = dy - a[:, None] * dphi
  sse = jnp.sum(w * resid * resid, axis=-1)
  return a, c, sse


def _best_rate(s, y, w, log_rates):
  """Returns the fit with the smallest weighted error among ``log_rates``."""
  phi = jnp.exp(-jnp.exp(log_rates)[:, None] * s[None, :])
  a, c, sse = _weighted_linear_fit(phi, y, w)
  i = jnp.argmin(sse)
  return log_rates[i], a[i], c[i]


def _fit_weighted(s, y, w, max_rate) -> ExponentialFit:
  """Grid search over the decay rate, then zooms around the best one."""
  lo = math.log(MIN_RATE)
  hi = jnp.log(jnp.maximum(max_rate, 2.0 * MIN_RATE))
  # In the series' dtype: a Python max_rate would make the grid float64 under x64.
  coarse = jnp.linspace(lo, hi, _NUM_COARSE_RATES, dtype=s.dtype)
  coarse_width = (hi - lo) / (_NUM_COARSE_RATES - 1)

  # Search 0 is the coarse grid, the others zoom around the best rate so far.
  # One loop, not unrolled: its body, one search, is compiled once (each
  # search compiled apart cost XLA:CPU about a fifth of the step's compile).
  def search(i, carry):
    log_rate, _, _, half_width = carry
    zoom = jnp.clip(log_rate + jnp.linspace(-half_width, half_width, _NUM_ZOOM_RATES,
                                            dtype=s.dtype), lo, hi)
    # As long as the coarse grid: a repeated rate cannot win (the first of
    # equal errors does).
    zoom = jnp.concatenate([zoom, jnp.full([_NUM_COARSE_RATES - _NUM_ZOOM_RATES], zoom[-1])])
    found = _best_rate(s, y, w, jnp.where(i == 0, coarse, zoom))
    return (*found, jnp.where(i == 0, coarse_width, 2.0 * half_width / (_NUM_ZOOM_RATES - 1)))

  zero = jnp.zeros([], s.dtype)
  log_rate, a, c, _ = jax.lax.fori_loop(0, 1 + _NUM_ZOOMS, search, (zero, zero, zero, zero))
  return ExponentialFit(amplitude=a, rate=jnp.exp(log_rate), asymptote=c)


def evaluate(fit: ExponentialFit, s: jax.typing.ArrayLike) -> jax.Array:
  """The fitted curve at normalised time(s) ``s``."""
  return fit.amplitude * jnp.exp(-fit.rate * s) + fit.asymptote


def _masked_median(x, mask):
  return jnp.nanmedian(jnp.where(mask, x, jnp.nan))


def fit_exponential(
    s: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    mask: jax.typing.ArrayLike,
    max_rate: jax.typing.ArrayLike,
) -> ExponentialFit:
  """Robustly fits ``a * exp(-r * s) + c`` to the points where ``mask`` holds.

  Args:
    s: normalised times, shape ``(N,)``; the probe spans ``s`` in ``[0, 1)``.
    y: losses, shape ``(N,)``. Entries outside ``mask`` may hold anything,
      NaN included.
    mask: boolean, shape ``(N,)``: which entries are observations. Needs at
      least two for a slope; with fewer the fit is flat at their mean.
    max_rate: the largest decay rate considered (at least ``2 ln 2``).

  Returns:
    The :class:`ExponentialFit`.
  """
  s = jnp.asarray(s, jnp.float32)
  mask = jnp.asarray(mask, bool)
  y = jnp.where(mask, jnp.asarray(y, jnp.float32), 0.0)
  w = mask.astype(jnp.float32)

  # Round 0 is the least-squares fit; Huber rounds converge from it; bisquare
  # rounds then give gross outliers (loss spikes) no weight at all. One loop,
  # not unrolled: its body, a fit, is compiled once.
  def reweight(round_, fit):
    resid = jnp.abs(y - evaluate(fit, s))
    scale = _MAD_TO_SIGMA * _masked_median(resid, mask)
    # A perfect fit has zero scale: keep every point at full weight then.
    scale = jnp.maximum(scale, 1e-6 * (1.0 + jnp.abs(fit.asymptote)))
    huber = jnp.minimum(1.0, _HUBER_K * scale / jnp.maximum(resid, 1e-30))
    bisquare = jnp.square(jnp.maximum(0.0, 1.0 - jnp.square(resid / (_BISQUARE_C * scale))))
    robust = jnp.where(round_ <= _NUM_HUBER_ROUNDS, huber, bisquare)
    return _fit_weighted(s, y, w * jnp.where(round_ == 0, 1.0, robust), max_rate)

  no_fit = ExponentialFit(*(jnp.zeros([], jnp.float32) for _ in ExponentialFit._fields))
  rounds = 1 + _NUM_HUBER_ROUNDS + _NUM_BISQUARE_ROUNDS
  return jax.lax.fori_loop(0, rounds, reweight, no_fit)


def forecast(
    losses: jax.typing.ArrayLike,
    mask: jax.typing.ArrayLike,
    probe_length: jax.typing.ArrayLike,
    horizon: jax.typing.ArrayLike,
) -> tuple[jax.Array, jax.Array]:
  """Forecasts the loss after ``horizon`` steps from a probe's losses.

  Args:
    losses: shape ``(N,)``; ``losses[t]`` is the loss observed ``t`` steps
      after the probe started from its checkpoint.
    mask: boolean, shape ``(N,)``: which entries were observed.
    probe_length: the probe's length in steps (normalises time).
    horizon: steps after the checkpoint at which to forecast the loss.

  Returns:
    ``(forecast, diverged)``: a finite float32 forecast and a boolean that is
    True when an observed loss is NaN or infinite. Then the forecast is only a
    placeholder (the largest finite observation, or 0) and the caller must
    score the probe itself.
  """
  losses = jnp.asarray(losses, jnp.float32)
  mask = jnp.asarray(mask, bool)
  finite = jnp.isfinite(losses)
  diverged = jnp.any(mask & ~finite)
  ok = mask & finite
  t = jnp.arange(losses.shape[0], dtype=jnp.float32)
  probe_length = jnp.asarray(probe_length, jnp.float32)
  fit = fit_exponential(t / probe_length, losses, ok,
                        max_rate=probe_length / MIN_DECAY_STEPS)
  value = evaluate(fit, jnp.asarray(horizon, jnp.float32) / probe_length)
  lo = jnp.min(jnp.where(ok, losses, jnp.inf))
  hi = jnp.max(jnp.where(ok, losses, -jnp.inf))
  span = hi - lo
  value = jnp.clip(value, lo - span, hi + span)
  placeholder = jnp.where(jnp.any(ok), hi, 0.0)
  value = jnp.where(diverged | ~jnp.isfinite(value), placeholder, value)
  return value, diverged


def first_and_last_quarter(losses: jax.typing.ArrayLike,
                           mask: jax.typing.ArrayLike) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(n, start, end)``: how many finite points were observed, and the medians
  of the first and the last quarter of them (medians, so that single
  minibatch spikes do not count)."""
  losses = jnp.asarray(losses, jnp.float32)
  mask = jnp.asarray(mask, bool) & jnp.isfinite(losses)
  rank = jnp.cumsum(mask) - 1  # Index of each observed point among observed.
  n = jnp.sum(mask)
  quarter = jnp.maximum(n // 4, 1)
  # Both medians in one batched sort: a step pays for every sort compiled into it.
  quarters = mask & jnp.stack([rank < quarter, rank >= n - quarter])
  start, end = jax.vmap(_masked_median, in_axes=(None, 0))(losses, quarters)
  return n, start, end


def noise(losses: jax.typing.ArrayLike, mask: jax.typing.ArrayLike) -> jax.Array:
  """The spread of a loss series about its trend: ``1.4826 / sqrt(6)`` times
  the median absolute second difference of neighbouring observed points (a
  robust standard deviation of one point, blind to a locally linear trend;
  0 with fewer than three points)."""
  losses = jnp.asarray(losses, jnp.float32)
  mask = jnp.asarray(mask, bool) & jnp.isfinite(losses)
  three = mask[2:] & mask[1:-1] & mask[:-2]
  curvature = jnp.abs(losses[2:] - 2.0 * losses[1:-1] + losses[:-2])
  spread = _MAD_TO_SIGMA / math.sqrt(6.0) * _masked_median(curvature, three)
  return jnp.where(jnp.any(three), spread, 0.0)


def exploded(losses: jax.typing.ArrayLike, mask: jax.typing.ArrayLike,
             factor: float = 3.0) -> jax.Array:
  """Whether a finite probe blew up: its end sits far above its start.

  Compares the medians of the first and the last quarter of the observed
  points: the probe exploded when the end exceeds the start by more than
  ``factor - 1`` times the start's magnitude (for positive losses: end >
  ``factor`` x start).
  """
  n, start, end = first_and_last_quarter(losses, mask)
  return (n >= 4) & (end - start > (factor - 1.0) * jnp.abs(start))


def stalled(losses: jax.typing.ArrayLike, mask: jax.typing.ArrayLike) -> jax.Array:
  """Whether a finite probe did not train: the median of the last quarter of
  its observed points is not below that of the first quarter."""
  n, start, end = first_and_last_quarter(losses, mask)
  return (n >= 4) & (end >= start)
