"""The exponential forecaster: recovery, sensible answers on hard series, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from autolrs_jax import forecast

N = 120
PROBE = 100


def curve(a, r, c, noise=0.0, seed=0):
  s = np.arange(N) / PROBE
  rng = np.random.default_rng(seed)
  return (a * np.exp(-r * s) + c + noise * rng.normal(size=N)).astype(np.float32)


MASK = np.arange(N) < PROBE


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0.5, 3.0), r=st.floats(2.0, 20.0), c=st.floats(0.0, 2.0),
       seed=st.integers(0, 1000))
def test_recovers_parameters_of_noisy_exponentials(a, r, c, seed):
  y = curve(a, r, c, noise=0.01, seed=seed)
  fit = forecast.fit_exponential(np.arange(N) / PROBE, y, MASK, max_rate=PROBE / 3)
  assert float(fit.amplitude) == pytest.approx(a, rel=0.1, abs=0.03)
  assert float(fit.rate) == pytest.approx(r, rel=0.2)
  assert float(fit.asymptote) == pytest.approx(c, abs=0.03)


def test_forecast_of_exact_curve_is_curve_at_horizon():
  y = curve(2.0, 3.0, 0.5)
  value, diverged = forecast.forecast(y, MASK, PROBE, 1000)
  assert not diverged
  assert float(value) == pytest.approx(2.0 * np.exp(-30.0) + 0.5, abs=1e-3)


def test_flat_series_forecasts_its_level():
  y = curve(0.0, 1.0, 1.0, noise=0.02)
  value, _ = forecast.forecast(y, MASK, PROBE, 1000)
  assert float(value) == pytest.approx(1.0, abs=0.02)


def test_increasing_series_forecasts_no_lower_than_its_end():
  y = (1.0 + 0.5 * np.arange(N) / PROBE).astype(np.float32)
  value, _ = forecast.forecast(y, MASK, PROBE, 1000)
  assert float(value) >= y[PROBE - 1] - 1e-3
  assert np.isfinite(float(value))


@pytest.mark.parametrize("name,y", [
    ("concave", 2.0 - (np.arange(N) / PROBE) ** 2),
    ("linear", 2.0 - np.arange(N) / PROBE),
])
def test_no_linear_extrapolation_to_nonsense(name, y):
  # A straight drop of 1.0 over the probe must not be extrapolated for ten
  # probes (a forecast of -8); at most about one more drop of the same size.
  del name
  y = y.astype(np.float32)
  value, _ = forecast.forecast(y, MASK, PROBE, 1000)
  drop = y[0] - y[PROBE - 1]
  assert y[PROBE - 1] - 1.1 * drop <= float(value) <= y[PROBE - 1]


def test_spikes_do_not_move_the_fit():
  clean = curve(2.0, 3.0, 0.5)
  spiky = clean.copy()
  spiky[::13] += 5.0
  v_clean, _ = forecast.forecast(clean, MASK, PROBE, 1000)
  v_spiky, _ = forecast.forecast(spiky, MASK, PROBE, 1000)
  assert float(v_spiky) == pytest.approx(float(v_clean), abs=0.02)


def test_masked_entries_are_ignored_even_if_nan():
  y = curve(2.0, 3.0, 0.5)
  y[PROBE:] = np.nan
  value, diverged = forecast.forecast(y, MASK, PROBE, 1000)
  assert not diverged and float(value) == pytest.approx(0.5, abs=1e-3)


def test_nan_inside_the_mask_is_reported_and_forecast_stays_finite():
  y = curve(2.0, 3.0, 0.5)
  y[40] = np.inf
  y[41] = np.nan
  value, diverged = forecast.forecast(y, MASK, PROBE, 1000)
  assert bool(diverged)
  assert np.isfinite(float(value))


def test_jits_and_vmaps_over_probes():
  ys = jnp.stack([curve(a, 3.0, 0.5) for a in (0.5, 1.0, 2.0)])
  values, diverged = jax.jit(jax.vmap(forecast.forecast, in_axes=(0, None, None, None)))(
      ys, MASK, PROBE, 1000)
  np.testing.assert_allclose(values, 0.5, atol=1e-3)
  assert not np.any(diverged)


@pytest.mark.parametrize("sigma", [0.02, 0.3])
def test_noise_is_a_point_s_spread_about_the_trend_whatever_its_slope(sigma):
  y = curve(2.0, 5.0, 1.0, noise=sigma, seed=3)
  y[40] += 50.0  # One spike moves a median of changes little.
  assert float(forecast.noise(y, MASK)) == pytest.approx(sigma, rel=0.2)
  assert float(forecast.noise(y, np.arange(N) < 1)) == 0.0  # No change to measure.
  assert float(forecast.noise(curve(2.0, 5.0, 1.0), MASK)) < 0.02 * 0.2  # A clean decay: ~0.
