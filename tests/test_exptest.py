"""The ExpTest-style controller: its test's calibration, search, tuning, divergence, jit."""

import json
import math
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.scipy.special import betainc

from autolrs_jax import describe
from autolrs_jax import ExpTestState
from autolrs_jax import exptest
from autolrs_jax import find_state
from autolrs_jax import null_statistics
from autolrs_jax import SEARCH
from autolrs_jax import TUNE
from autolrs_jax import window_test
from autolrs_jax._exptest import DECAYING

ALPHA = 0.05


def binomial_interval(p, n, sigmas=3.0):
  """``p +- sigmas`` binomial standard deviations of a rate over ``n`` trials."""
  half = sigmas * math.sqrt(p * (1 - p) / n)
  return p - half, p + half


# --- The window test ------------------------------------------------------------


@pytest.fixture(scope="module")
def test50():
  null = null_statistics(50)
  return jax.jit(jax.vmap(lambda y: window_test(y, null)))


def test_false_positive_rate_on_flat_windows(test50):
  """400 flat windows of Gaussian noise: each tail rejects at about alpha.

  Tolerance: 3 binomial standard deviations, 0.05 +- 0.033 for 400 windows.
  (Measured on 20000 windows: 0.051 at alpha = 0.05 and 0.0103 at 0.01.)
  """
  n = 400
  y = 2.0 + 0.1 * jax.random.normal(jax.random.key(1), (n, 50))
  r = test50(y)
  lo, hi = binomial_interval(ALPHA, n)
  decay_rate = float(jnp.mean(r.p_decay < ALPHA))
  rise_rate = float(jnp.mean(r.p_rise < ALPHA))
  assert lo < decay_rate < hi, decay_rate
  assert lo < rise_rate < hi, rise_rate
  # The p-value is about uniform: its mean is about 1/2.
  assert abs(float(jnp.mean(r.p_decay)) - 0.5) < 0.05


def test_power_on_exponential_decays(test50):
  """A clear decay is found nearly always; the fitted curve falls.

  Amplitude 5 sigma: power 1.0; 2 sigma (rate 3 per window): about 0.97,
  measured on 4000 windows, so >= 0.9 here over 400.
  """
  n = 400
  s = jnp.arange(50) / 50
  noise = 0.1 * jax.random.normal(jax.random.key(2), (n, 50))
  clear = test50(1.0 + 0.5 * jnp.exp(-3.0 * s) + noise)
  assert float(jnp.mean(clear.p_decay < ALPHA)) > 0.99
  assert bool(jnp.all(clear.fit.amplitude > 0))
  assert bool(jnp.all(clear.drop > 0))
  weak = test50(1.0 + 0.2 * jnp.exp(-3.0 * s) + noise)
  assert float(jnp.mean(weak.p_decay < ALPHA)) > 0.9
  # The test is one-sided: a rising curve is never "decaying".
  rising = test50(1.0 - 0.5 * jnp.exp(-3.0 * s) + noise)
  assert float(jnp.mean(rising.p_decay < ALPHA)) == 0.0
  assert float(jnp.mean(rising.p_rise < ALPHA)) > 0.99


def test_textbook_f_distribution_is_conservative_here():
  """Why the p-value is Monte Carlo: F(2, W-3) is only approximate.

  On the null table itself (8192 values), the one-sided test from the
  F(2, W - 3) tail (half its p-value, decreasing fits only) rejects at about
  0.6 alpha for W = 50, and the one from F(1, W - 2) at about 1.7 alpha: the
  searched rate counts for between one and two degrees of freedom.
  """
  w = 50
  signed = jnp.asarray(null_statistics(w))
  ratio = jnp.abs(signed) * 2 / (w - 3)  # (SSE_const - SSE_exp) / SSE_exp.

  def rate(df1):
    df2 = w - 1 - df1
    f = ratio / df1 * df2
    p = betainc(df2 / 2, df1 / 2, df2 / (df2 + df1 * f))
    return float(jnp.mean((signed > 0) & (p / 2 < ALPHA)))

  assert 0.4 * ALPHA < rate(2) < 0.85 * ALPHA
  assert 1.2 * ALPHA < rate(1) < 2.5 * ALPHA
  # The Monte Carlo table itself rejects at alpha, by construction.
  assert abs(float(jnp.mean(signed >= np.quantile(signed, 1 - ALPHA))) - ALPHA) < 0.002


def test_window_test_is_scale_free_and_handles_constants():
  s = jnp.arange(20) / 20
  y = 1.0 + jnp.exp(-4.0 * s) + 0.05 * jax.random.normal(jax.random.key(3), (20,))
  a = window_test(y)
  for scaled in (1e-30 * y, 1e20 * y, y + 100.0):
    b = window_test(scaled)
    np.testing.assert_allclose(float(a.statistic), float(b.statistic), rtol=1e-3)
    assert float(a.p_decay) == float(b.p_decay)
  flat = window_test(jnp.full([20], 3.0))
  assert float(flat.statistic) == 0.0 and float(flat.p_decay) > 0.4 and float(flat.drop) == 0.0


# --- Helpers for runs -------------------------------------------------------------

CURVATURE = 4.0  # L: the largest eigenvalue of the quadratic's Hessian.
DIM = 16
EIGENVALUES = CURVATURE * jnp.logspace(-3, 0, DIM)


def quadratic_run(tx, steps, keys, noise=0.05):
  """SGD-like runs on 0.5 sum(l_i x_i^2), one per key, vmapped in one compile.

  The loss seen has 5% multiplicative noise, the gradient additive noise.
  Returns per-step (lr applied, phase) arrays of shape (len(keys), steps) and
  the final states.
  """

  def one(key):
    x0 = jnp.ones(DIM)

    def body(carry, key):
      x, state = carry
      k1, k2 = jax.random.split(key)
      loss = 0.5 * jnp.sum(EIGENVALUES * x * x) * (1 + noise * jax.random.normal(k1))
      grad = EIGENVALUES * x + noise * jnp.sqrt(EIGENVALUES) * jax.random.normal(k2, (DIM,))
      applied = (state.learning_rate, state.phase)
      updates, state = tx.update(grad, state, x, value=loss)
      return (x + updates, state), applied

    (x, state), (lr, phase) = jax.lax.scan(
        body, (x0, tx.init(x0)), jax.random.split(key, steps))
    return lr, phase, x, state

  return jax.jit(jax.vmap(one))(keys)


# --- The search -------------------------------------------------------------------


def test_search_grows_geometrically_and_stops_below_the_divergence_threshold():
  """From 1e-6, the LR doubles window by window, then settles in [0.05, 1) x 2/L.

  With SGD on a quadratic the iteration diverges for lr > 2/L. Every
  direction below that threshold decays faster as the LR grows, so the search
  only stops once the LR crossed 2/L (the top direction then blows up within a
  window or two: the overshoot is at most growth_factor**2 x 2/L) and then cuts
  by divergence_cut = 10, or, had a window stopped improving first (at least
  2/L / growth_factor), backs off by backoff_factor = 4. Either way the LR
  tuning starts from lies in [2/L / (growth_factor * divergence_cut), 2/L) =
  [0.05, 1) x 2/L.
  """
  w, g = 20, 2.0
  tx = exptest(optax.sgd(1.0), window=w, growth_factor=g)
  lr, phase, x, state = quadratic_run(tx, 40 * w, jax.random.split(jax.random.key(0), 4))
  lr, phase = np.asarray(lr), np.asarray(phase)
  edge = 2.0 / CURVATURE
  for run_lr, run_phase in zip(lr, phase):
    end = int(np.argmax(run_phase == TUNE))
    assert 10 * w <= end < 30 * w  # It searched, and it stopped.
    searched = run_lr[:end]
    assert np.all(run_phase[:end] == SEARCH)
    changes = np.flatnonzero(np.diff(searched)) + 1
    assert np.all(changes % w == 0)  # The LR moves only at window ends...
    ratios = searched[changes] / searched[changes - 1]
    np.testing.assert_allclose(ratios, g, rtol=1e-5)  # ...by the growth factor...
    assert len(changes) >= end // w - 2  # ...at nearly every window end.
    assert searched[0] == np.float32(1e-6)
    assert searched.max() <= g**2 * edge * 1.001
    tuned = run_lr[end]
    assert 0.05 * edge <= tuned < edge, (tuned, edge)
  assert bool(jnp.all(jnp.isfinite(x)))


def test_search_ends_at_max_lr_and_a_non_search_starts_tuning():
  tx = exptest(optax.sgd(1.0), window=10, max_lr=1e-4)
  lr, phase, _, _ = quadratic_run(tx, 300, jax.random.split(jax.random.key(1), 1))
  lr, phase = np.asarray(lr[0]), np.asarray(phase[0])
  assert lr.max() <= np.float32(1e-4)
  assert phase[-1] == TUNE
  tx = exptest(optax.sgd(1.0), window=10, search=False, initial_lr=0.1)
  state = tx.init(jnp.zeros(3))
  assert int(state.phase) == TUNE and float(state.learning_rate) == np.float32(0.1)


# --- Tuning on a scripted loss ----------------------------------------------------


def scripted(tx, values, params):
  """Feeds ``values`` as the losses, with constant gradients of ones."""
  state = tx.init(params)
  step = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
  grads = jax.tree.map(jnp.ones_like, params)
  rows = []
  for v in values:
    lr = float(state.learning_rate)
    updates, state = step(grads, state, params, jnp.float32(v))
    rows.append((lr, updates))
  return rows, state


def slowing_windows(w, amplitudes, seed=0):
  """Windows of ``1 + a exp(-5 t / w)`` plus small noise, one per amplitude."""
  rng = np.random.default_rng(seed)
  t = np.arange(w)
  return np.concatenate([1.0 + a * np.exp(-5.0 * t / w) + 1e-3 * rng.standard_normal(w)
                         for a in amplitudes])


def test_search_keeps_growing_while_decaying_unless_asked_for_improvement():
  """Two strong windows confirm the decay, then two decay ten times less.

  By default (improvement 0) any significant decay grows the LR; with
  improvement 0.5 the weaker windows are bad, so after ``patience`` = 2 of them
  the search ends, backing off by 4 from the LR they were held at.
  """
  w = 10
  values = slowing_windows(w, [1.0, 1.0, 0.1, 0.1])
  params = jnp.zeros(3)
  start = np.float32(1e-3)
  rows, state = scripted(exptest(optax.sgd(1.0), window=w, initial_lr=1e-3), values, params)
  assert int(state.phase) == SEARCH
  assert float(state.learning_rate) == pytest.approx(start * 2**4)
  rows, state = scripted(exptest(optax.sgd(1.0), window=w, initial_lr=1e-3, improvement=0.5),
                         values, params)
  held = [lr for lr, _ in rows][3 * w]  # The LR of the last window: held after a bad one.
  assert held == pytest.approx(start * 2**2)
  assert int(state.phase) == TUNE
  assert float(state.learning_rate) == pytest.approx(held / 4)


def test_tuning_decreases_on_a_plateau_and_keeps_a_decaying_lr():
  w = 20
  tx = exptest(optax.sgd(1.0), window=w, search=False, initial_lr=0.1,
                  decrease_factor=2.0)
  rng = np.random.default_rng(0)
  decaying = lambda n: 1.0 + np.exp(-4.0 * np.arange(n) / n) + 0.01 * rng.normal(size=n)
  flat = lambda n: 1.0 + 0.01 * rng.normal(size=n)
  # Window 1 (20 steps): decaying. Window 2: flat. Window 3 (blocks of 2, so
  # 40 steps): decaying. Window 4 (40 steps): flat.
  values = np.concatenate([decaying(w), flat(w), decaying(2 * w), flat(2 * w)])
  params = {"w": jnp.zeros(3)}
  rows, state = scripted(tx, values, params)
  lrs = np.array([r[0] for r in rows], np.float32)
  np.testing.assert_array_equal(lrs[:2 * w], np.float32(0.1))  # Kept after window 1.
  np.testing.assert_array_equal(lrs[2 * w:4 * w], np.float32(0.05))  # Halved by the plateau.
  np.testing.assert_array_equal(lrs[4 * w:], np.float32(0.05))  # Kept after window 3.
  assert float(state.learning_rate) == np.float32(0.025)  # Halved after window 4.
  info = describe(state)
  assert info["phase"] == "tune" and info["windows"] == 4 and info["num_decreases"] == 2
  assert info["block_size"] == 4 and info["outcome"] == "flat"
  assert info["p_value"] > ALPHA and info["num_cuts"] == 0
  # Every update is -lr * grad with the LR of its step.
  for lr, updates in rows:
    np.testing.assert_allclose(updates["w"], -lr, rtol=1e-6)


# --- Divergence ------------------------------------------------------------------


def test_nan_and_huge_losses_cut_the_lr_and_skip_the_step():
  tx = exptest(optax.sgd(1.0, momentum=0.9), window=10, search=False, initial_lr=0.1,
                  divergence_cut=10.0, divergence_factor=4.0)
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  step = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
  grads = {"w": jnp.full(3, 0.5)}

  def go(state, params, value, grads=grads):
    updates, new_state = step(grads, state, params, jnp.float32(value))
    return optax.apply_updates(params, updates), new_state, updates

  for _ in range(5):
    params, state, _ = go(state, params, 1.0)
  # A NaN loss: zero update, the momentum fed a zero gradient (it decays,
  # nothing is added), LR / 10.
  before = state
  params, state, updates = go(state, params, np.nan)
  np.testing.assert_array_equal(updates["w"], 0.0)
  np.testing.assert_array_equal(state.base_state[0].trace["w"],
                                0.9 * before.base_state[0].trace["w"])
  assert float(state.learning_rate) == pytest.approx(0.01, rel=1e-6)
  assert int(state.num_cuts) == 1
  assert int(state.window_step) == 0
  # A NaN gradient with a finite loss: the same cut; the momentum, spoiled by
  # the NaN, starts again from zero at the next update.
  params, state, updates = go(state, params, 1.0, {"w": jnp.full(3, jnp.nan)})
  np.testing.assert_array_equal(updates["w"], 0.0)
  assert float(state.learning_rate) == pytest.approx(1e-3, rel=1e-6)
  assert int(state.num_cuts) == 2
  assert bool(state.reset_base_state)
  params, state, updates = go(state, params, 1.0)
  np.testing.assert_allclose(updates["w"], -1e-3 * 0.5, rtol=1e-6)  # Momentum from zero.
  # A huge finite loss, once the smoothing has restarted.
  for _ in range(3):
    params, state, _ = go(state, params, 1.0)
  params, state, updates = go(state, params, 1e6)
  np.testing.assert_array_equal(updates["w"], 0.0)
  assert float(state.learning_rate) == pytest.approx(1e-4, rel=1e-6)
  assert int(state.num_cuts) == 3
  # A level that stays higher after the cut is the new reference: no more cuts.
  for _ in range(30):
    params, state, _ = go(state, params, 10.0)
  assert int(state.num_cuts) == 3
  # A lone spike (10x the smoothed loss) is not a divergence.
  params, state, updates = go(state, params, 100.0)
  assert int(state.num_cuts) == 3 and float(jnp.abs(updates["w"]).max()) > 0
  assert bool(jnp.all(jnp.isfinite(params["w"])))


def test_divergence_ends_the_search_and_min_lr_floors_the_cut():
  tx = exptest(optax.sgd(1.0), window=10, initial_lr=1e-3, min_lr=5e-4)
  state = tx.init(jnp.zeros(2))
  _, state = tx.update(jnp.ones(2), state, jnp.zeros(2), value=jnp.float32(jnp.inf))
  assert int(state.phase) == TUNE and float(state.learning_rate) == np.float32(5e-4)


def test_divergent_lr_on_a_quadratic_never_puts_nan_in_the_params():
  """Tuning at 50 x 2/L: the loss explodes, the LR is cut until it is stable."""
  tx = exptest(optax.sgd(1.0), window=10, search=False, initial_lr=25.0)
  lr, phase, x, state = quadratic_run(tx, 300, jax.random.split(jax.random.key(2), 2), noise=0.0)
  assert bool(jnp.all(jnp.isfinite(x)))
  assert bool(jnp.all(state.num_cuts >= 2))
  assert np.all(np.asarray(lr)[:, -1] < 2.0 / CURVATURE)


# --- Compilation, composition, state helpers ----------------------------------------


def test_one_compilation_through_search_and_tuning():
  tx = optax.chain(optax.clip_by_global_norm(10.0), exptest(optax.sgd(1.0), window=10))
  params = jnp.ones(DIM)
  state = tx.init(params)
  traces = []

  @jax.jit
  def step(params, state, key):
    traces.append(1)
    grad = EIGENVALUES * params + 0.01 * jax.random.normal(key, (DIM,))
    loss = 0.5 * jnp.sum(EIGENVALUES * params**2)
    updates, state = tx.update(grad, state, params, value=loss)
    return optax.apply_updates(params, updates), state

  phases = set()
  for key in jax.random.split(jax.random.key(0), 400):
    params, state = step(params, state, key)
    phases.add(describe(state)["phase"])
  assert phases == {"search", "tune"}
  assert len(traces) == 1
  assert describe(state)["windows"] >= 20


def test_find_state_and_describe_with_nnx_optimizer():
  model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, exptest(optax.adam(1.0), window=8), wrt=nnx.Param)
  # The default looks for AutoLRS only (callers use it to detect AutoLRS).
  with pytest.raises(ValueError, match="AutoLRSState"):
    find_state(optimizer.opt_state)
  s = find_state(optimizer.opt_state, kind=None)
  assert isinstance(s, ExpTestState) and not isinstance(s.learning_rate, nnx.Variable)
  assert isinstance(find_state(optimizer.opt_state, kind=ExpTestState), ExpTestState)
  info = describe(optimizer.opt_state)
  assert info == {
      "controller": "exptest", "step": 0, "phase": "search", "learning_rate": pytest.approx(1e-6),
      "windows": 0, "window_step": 0, "block_size": 1, "outcome": "none", "statistic": 0.0,
      "p_value": 1.0, "drop": 0.0, "num_decreases": 0, "num_cuts": 0}

  @nnx.jit
  def train_step(model, optimizer, x):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
    optimizer.update(model, grads, value=loss)

  for _ in range(8):
    train_step(model, optimizer, jnp.ones((4, 3)))
  assert describe(optimizer.opt_state)["windows"] == 1


def test_missing_value_and_bad_hyper_parameters():
  tx = exptest(optax.sgd(1.0), window=8)
  state = tx.init(jnp.zeros(2))
  with pytest.raises(TypeError, match="value="):
    tx.update(jnp.ones(2), state, jnp.zeros(2))
  bad = [
      dict(initial_lr=0.0), dict(search=False), dict(search_start_lr=-1.0), dict(window=7),
      dict(alpha=0.5), dict(alpha=0.0), dict(growth_factor=1.0), dict(confirm_windows=0),
      dict(improvement=-0.1), dict(patience=0), dict(backoff_factor=0.5),
      dict(decrease_factor=1.0), dict(max_block_size=0), dict(min_lr=-1.0),
      dict(max_lr=1e-9), dict(divergence_factor=1.0), dict(divergence_cut=1.0),
  ]
  for kwargs in bad:
    name = next(iter(kwargs))
    name = "initial_lr" if name == "search" else name
    with pytest.raises(ValueError, match=name):
      exptest(optax.sgd(1.0), **kwargs)


@pytest.mark.slow
def test_mnist1d_example_quick(tmp_path):
  """python -m examples.exptest_mnist1d --quick: 800 steps, through search and tuning."""
  root = pathlib.Path(__file__).resolve().parents[1]
  subprocess.run(
      [sys.executable, "-m", "examples.exptest_mnist1d", "--quick",
       "--out", str(tmp_path)],
      check=True, cwd=root, timeout=600, capture_output=True)
  result = json.loads((tmp_path / "exptest_mnist1d.json").read_text())
  runs = result["trajectory"]
  assert runs[0]["lr"] == pytest.approx(1e-6) and runs[0]["phase"] == "search"
  assert runs[-1]["phase"] == "tune"
  assert sum(r["steps"] for r in runs) == result["steps"] == 800
  searched = [r["lr"] for r in runs if r["phase"] == "search"]
  assert max(searched) > 1e-3  # It grew by three decades at least.
  assert result["test_accuracy"] > 0.5


def test_axis_name_makes_replicas_decide_together():
  """Under pmap the loss is averaged over the axis: one replica's NaN cuts both."""
  tx = exptest(optax.sgd(1.0), window=8, search=False, initial_lr=0.1, axis_name="i")
  params = jnp.zeros((2, 3))
  state = jax.pmap(tx.init)(params)
  step = jax.pmap(lambda g, s, p, v: tx.update(g, s, p, value=v), axis_name="i")
  grads = jnp.ones((2, 3))
  rng = np.random.default_rng(0)
  for t in range(8):  # Replica 0 sees a decay, replica 1 noise: the mean decays.
    values = jnp.asarray([1.0 + np.exp(-t / 2) + 0.01 * rng.normal(), 1.0 + 0.01 * rng.normal()],
                         jnp.float32)
    _, state = step(grads, state, params, values)
  np.testing.assert_array_equal(state.outcome, DECAYING)
  updates, state = step(grads, state, params, jnp.asarray([jnp.nan, 1.0], jnp.float32))
  np.testing.assert_array_equal(updates, 0.0)
  np.testing.assert_allclose(state.learning_rate, 0.01, rtol=1e-6)


def test_package_exports_the_factory_and_its_state():
  """``autolrs_jax.exptest`` is the factory: no public module shadows it."""
  import autolrs_jax  # pylint: disable=g-import-not-at-top

  assert callable(autolrs_jax.exptest) and callable(autolrs_jax.autolrs)
  assert autolrs_jax.ExpTestState is ExpTestState
  state = autolrs_jax.exptest(optax.sgd(1.0), window=8).init({"w": jnp.zeros(2)})
  assert find_state(state, kind=None) is not None
  assert describe(state)["controller"] == "exptest"
