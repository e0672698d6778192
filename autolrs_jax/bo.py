"""Bayesian optimisation over log learning rate: a GP and its acquisition.

The search space is ``x = (log lr - log min_lr) / (log max_lr - log min_lr)``
in ``[0, 1]``, discretised on a fixed grid, so that the acquisition is
minimised exactly (no local optimiser) and a proposal can never repeat an
observation. Observations live in fixed-size arrays with a mask, so one
compiled function serves every trial of every stage.

The surrogate is a Gaussian process (``tensorflow_probability.substrates.jax``)
with a Matern-5/2 kernel times an amplitude, plus observation noise, on
log-warped, standardised forecasts. Its three hyper-parameters maximise the marginal
likelihood (with a weak prior on the length scale) by a fixed number of Adam steps from a few starting length scales,
like the reference's scikit-optimize set-up (constant x Matern(5/2) + white
noise, noise dropped for prediction).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from tensorflow_probability.substrates import jax as tfp


tfd = tfp.distributions
tfk = tfp.math.psd_kernels

ACQUISITIONS = ("lcb", "ei")

# Bounds of the GP hyper-parameters, on standardised outputs and x in [0, 1].
# Weakly typed: with ``jax_enable_x64`` the fit still runs in its data's
# dtype (float32 in the controllers).
_LOG_AMPLITUDE_BOUNDS = (jnp.log(0.1), jnp.log(30.0))
_LOG_LENGTH_BOUNDS = (jnp.log(0.01), jnp.log(100.0))
_LOG_NOISE_BOUNDS = (jnp.log(1e-6), jnp.log(1.0))
_INITIAL_LENGTH_SCALES = (0.05, 0.2, 1.0)
# Weak log-normal prior on the length scale: with two or three observations
# the likelihood alone cannot tell a length of 0.01 from 1 (then every point
# far from the data looks equally uncertain, and proposals turn arbitrary).
_LENGTH_PRIOR_LOC, _LENGTH_PRIOR_SCALE = jnp.log(0.3), 1.0
_FIT_STEPS = 100
_FIT_LEARNING_RATE = 0.05
_EI_XI = 0.01  # Exploration margin of expected improvement, as in skopt.


class GPHyperparameters(NamedTuple):
  """Constrained GP hyper-parameters (natural units)."""

  amplitude: jax.Array  # Kernel standard deviation, on standardised outputs.
  length_scale: jax.Array  # In units of the [0, 1] search space.
  noise_variance: jax.Array  # Observation noise variance (fitting only).


def _squash(raw, bounds):
  lo, hi = bounds
  return jnp.exp(lo + (hi - lo) * jax.nn.sigmoid(raw))


def _unsquash(value, bounds):
  lo, hi = bounds
  u = (jnp.log(value) - lo) / (hi - lo)
  return jnp.log(u) - jnp.log1p(-u)


def _constrain(raw) -> GPHyperparameters:
  return GPHyperparameters(
      amplitude=_squash(raw[0], _LOG_AMPLITUDE_BOUNDS),
      length_scale=_squash(raw[1], _LOG_LENGTH_BOUNDS),
      noise_variance=_squash(raw[2], _LOG_NOISE_BOUNDS),
  )


def _kernel(hp: GPHyperparameters):
  return tfk.MaternFiveHalves(amplitude=hp.amplitude, length_scale=hp.length_scale)


def standardize(y, mask):
  """Centres and scales the observed entries of ``y``; others become 0."""
  n = jnp.maximum(jnp.sum(mask), 1)
  mean = jnp.sum(jnp.where(mask, y, 0.0)) / n
  var = jnp.sum(jnp.where(mask, (y - mean) ** 2, 0.0)) / n
  std = jnp.where(var > 1e-12, jnp.sqrt(var), 1.0)
  return jnp.where(mask, (y - mean) / std, 0.0), mean, std


def warp(y, mask):
  """Monotone log-warping that keeps diverged probes from flattening the rest.

  Forecasts span orders of magnitude once an LR diverges (1e6 against 0.3);
  standardising them raw would squeeze every good LR to one value. The warp
  ``log(y - min + delta)``, with ``delta`` a tenth of the median's distance to
  the minimum, keeps the order and the resolution among the good ones.
  """
  y_min = jnp.min(jnp.where(mask, y, jnp.inf))
  median = jnp.nanmedian(jnp.where(mask, y, jnp.nan))
  delta = 0.1 * (median - y_min) + 1e-6 * (1.0 + jnp.abs(median))
  return jnp.where(mask, jnp.log(jnp.where(mask, y - y_min, 0.0) + delta), 0.0)


def negative_log_marginal_likelihood(hp: GPHyperparameters, x, z, mask):
  """GP evidence of the observed entries of ``z`` (others marginalised out)."""
  gp = tfd.GaussianProcess(
      _kernel(hp),
      index_points=x[:, None],
      observation_noise_variance=hp.noise_variance,
  )
  return -gp.log_prob(z, is_missing=~mask)


def fit_hyperparameters(x, z, mask) -> GPHyperparameters:
  """Maximises the marginal likelihood (times a weak prior on the length scale)
  from several starting length scales."""
  opt = optax.adam(_FIT_LEARNING_RATE)
  def loss(raw):
    hp = _constrain(raw)
    nll = negative_log_marginal_likelihood(hp, x, z, mask)
    # Its parameters in the data's dtype: tfp does not mix float32 and float64.
    prior = tfd.LogNormal(jnp.asarray(_LENGTH_PRIOR_LOC, x.dtype),
                          jnp.asarray(_LENGTH_PRIOR_SCALE, x.dtype))
    return nll - prior.log_prob(hp.length_scale)

  def fit_from(raw):
    def step(carry, _):
      raw, opt_state = carry
      grads = jax.grad(loss)(raw)
      updates, opt_state = opt.update(grads, opt_state)
      return (optax.apply_updates(raw, updates), opt_state), None

    (raw, _), _ = jax.lax.scan(step, (raw, opt.init(raw)), None, _FIT_STEPS)
    return raw, loss(raw)

  starts = jnp.stack([
      jnp.array([
          _unsquash(1.0, _LOG_AMPLITUDE_BOUNDS),
          _unsquash(length, _LOG_LENGTH_BOUNDS),
          _unsquash(1e-2, _LOG_NOISE_BOUNDS),
      ], dtype=x.dtype)  # Python floats would make it float64 under x64.
      for length in _INITIAL_LENGTH_SCALES
  ])
  raws, losses = jax.vmap(fit_from)(starts)
  losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
  return _constrain(raws[jnp.argmin(losses)])


def posterior(hp: GPHyperparameters, x, z, mask, grid):
  """Posterior mean and standard deviation of the noise-free GP on ``grid``."""
  gprm = tfd.GaussianProcessRegressionModel.precompute_regression_model(
      kernel=_kernel(hp),
      index_points=grid[:, None],
      observation_index_points=x[:, None],
      observations=z,
      observations_is_missing=~mask,
      observation_noise_variance=hp.noise_variance,
      predictive_noise_variance=0.0,
  )
  return gprm.mean(), gprm.stddev()


def lower_confidence_bound(mean, std, kappa):
  return mean - kappa * std


def negative_expected_improvement(mean, std, best):
  """Minus the expected improvement below ``best`` (so lower is better)."""
  std = jnp.maximum(std, 1e-9)
  gap = best - _EI_XI - mean
  u = gap / std
  normal = tfd.Normal(jnp.zeros([], mean.dtype), jnp.ones([], mean.dtype))
  return -(gap * normal.cdf(u) + std * normal.prob(u))


def search_grid(num_points: int, dtype=jnp.float32) -> jax.Array:
  """The fixed grid of candidate points in ``[0, 1]`` (both ends included)."""
  return jnp.linspace(0.0, 1.0, num_points, dtype=dtype)


def is_observed(grid, x, mask):
  """Which grid points coincide (within half a cell) with an observation."""
  half_cell = 0.5 / (grid.shape[0] - 1)
  near = jnp.abs(grid[:, None] - x[None, :]) < half_cell
  return jnp.any(near & mask[None, :], axis=-1)


def propose(x, y, mask, grid, *, acquisition: str = "lcb", kappa: float = 2.0,
            allowed=None):
  """Next point to evaluate: the acquisition's minimiser on the grid.

  Args:
    x: observed points in ``[0, 1]``, shape ``(K,)``.
    y: observed values to minimise, shape ``(K,)``; finite where ``mask``.
    mask: boolean, shape ``(K,)``; needs at least one observation.
    grid: candidate points, from :func:`search_grid`.
    acquisition: ``'lcb'`` (mean - kappa * std) or ``'ei'`` (expected
      improvement over the best observation).
    kappa: exploration weight of ``'lcb'``.
    allowed: optional boolean mask over ``grid`` of the points that may be
      proposed (e.g. below an LR that diverged). With none allowed, the
      first grid point is proposed.

  Returns:
    ``(x_next, (mean, std))``: the proposed point (a grid point never
    observed before, while any is left) and the standardised posterior on the
    grid, for plots.
  """
  if acquisition not in ACQUISITIONS:
    raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {acquisition!r}.")
  z, _, _ = standardize(warp(y, mask), mask)
  hp = fit_hyperparameters(x, z, mask)
  mean, std = posterior(hp, x, z, mask, grid)
  if acquisition == "lcb":
    score = lower_confidence_bound(mean, std, kappa)
  else:
    best = jnp.min(jnp.where(mask, z, jnp.inf))
    score = negative_expected_improvement(mean, std, best)
  score = jnp.where(jnp.isfinite(score), score, jnp.inf)
  score = jnp.where(is_observed(grid, x, mask), jnp.inf, score)
  if allowed is not None:
    score = jnp.where(allowed, score, jnp.inf)
  return grid[jnp.argmin(score)], (mean, std)
