"""LRBench's policies as optax schedules: each one against its formula.

The expected values are the formulas of LRBench's table written here again in
float64 with ``math``, never calls into the module under test.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from autolrs_jax import schedules as S

K0, K1, GAMMA, L = 0.05, 0.3, 0.97, 20  # L even, so that l / 2 is a step.


def close(value, expected, rel=1e-5, abs_=1e-7):
  assert np.asarray(value).dtype == np.float32
  assert float(value) == pytest.approx(expected, rel=rel, abs=abs_)


# Reference formulas (LRBench table), float64.


def ref_tri(t, l):
  return 2.0 / math.pi * abs(math.asin(math.sin(math.pi * t / (2 * l))))


def ref_sin(t, l):
  return abs(math.sin(math.pi * t / (2 * l)))


def ref_halving(t, l):
  return 2.0 ** -math.floor(t / (2 * l))


def clr(k0, k1, g):
  return k0 + (k1 - k0) * g


# Steps at which every policy is checked: 0, l/2, l, 3l/2, 2l, past 2l, ...
STEPS = [0, 1, L // 2, L - 1, L, L + 1, 3 * L // 2, 2 * L - 1, 2 * L,
         2 * L + 1, 2 * L + 7, 3 * L, 4 * L - 1, 4 * L, 4 * L + 1, 5 * L + 3,
         10 * L + 13]


# -- Fixed and decaying -------------------------------------------------------


@pytest.mark.parametrize("t", STEPS)
def test_fix(t):
  close(S.fix(K0)(t), K0)


@pytest.mark.parametrize("t", STEPS)
def test_step(t):
  close(S.step(k0=0.1, gamma=0.5, l=L)(t), 0.1 * 0.5 ** math.floor(t / L))


def test_step_changes_at_multiples_of_l():
  s = S.step(k0=1.0, gamma=0.1, l=L)
  close(s(L - 1), 1.0)
  close(s(L), 0.1)
  close(s(2 * L - 1), 0.1)
  close(s(2 * L), 0.01)


@pytest.mark.parametrize("l", [41, 47, 55, 61, 97, 123])
def test_step_changes_at_multiples_of_awkward_l_under_jit(l):
  # Under jit, floor(t / l) computed as floor(t * fl(1 / l)) is one short at
  # t = l for these l (optax.exponential_decay(staircase=True) is).
  s = jax.jit(S.step(k0=1.0, gamma=0.5, l=l))
  ks = np.arange(1, 100)
  np.testing.assert_allclose(s(jnp.asarray(ks * l, jnp.int32)), 0.5 ** ks,
                             rtol=1e-6)
  np.testing.assert_allclose(s(jnp.asarray(ks * l - 1, jnp.int32)),
                             0.5 ** (ks - 1), rtol=1e-6)


def test_nstep_at_each_boundary_and_one_step_before():
  bounds = [150, 180, 240]
  s = S.nstep(k0=0.05, gamma=0.1, boundaries=bounds)
  close(s(0), 0.05)
  for i, b in enumerate(bounds):
    close(s(b - 1), 0.05 * 0.1 ** i)
    close(s(b), 0.05 * 0.1 ** (i + 1))
    close(s(b + 1), 0.05 * 0.1 ** (i + 1))
  close(s(10_000), 0.05 * 0.1 ** 3)


def test_nstep_matches_table_everywhere():
  bounds = [3, 7, 8, 20]
  s = jax.jit(S.nstep(k0=2.0, gamma=0.5, boundaries=bounds))
  ts = np.arange(30)
  got = np.asarray(s(jnp.asarray(ts)))
  # Table: k0 * gamma^i for l_{i-1} <= t < l_i.
  want = [2.0 * 0.5 ** sum(t >= b for b in bounds) for t in ts]
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_nstep_without_boundaries_is_constant():
  close(S.nstep(k0=0.3, gamma=0.1, boundaries=[])(1000), 0.3)


@pytest.mark.parametrize("t", [0, 1, 10, L, 2 * L, 1000, 5000])
def test_exp(t):
  close(S.exp(k0=0.1, gamma=0.999)(t), 0.1 * 0.999 ** t, rel=1e-4)


@pytest.mark.parametrize("t", STEPS)
def test_inv(t):
  close(S.inv(k0=0.1, gamma=1e-2, p=0.75)(t), 0.1 * (1 + 1e-2 * t) ** -0.75)


@pytest.mark.parametrize("t", [0, 1, L // 4, L // 2, L - 1, L])
@pytest.mark.parametrize("p", [0.5, 1.0, 2.0])
def test_poly_follows_table(t, p):
  # Table: k0 * (1 - t / l)^p, from k0 down to k1 = 0.
  close(S.poly(k0=0.1, p=p, l=L)(t), 0.1 * (1 - t / L) ** p)


@pytest.mark.parametrize("t", [L + 1, 2 * L, 3 * L + 7])
def test_poly_holds_zero_past_l(t):
  # The bare formula is NaN (p = 1.2) or grows again (p = 2) past l.
  for p in (1.2, 2.0):
    close(S.poly(k0=0.1, p=p, l=L)(t), 0.0)


@pytest.mark.parametrize("l", [20, 7, 41, 100])
@pytest.mark.parametrize("p", [0.9, 1.0, 1.2])
def test_poly_is_exactly_zero_from_l_under_jit(l, p):
  # 1 - t * fl(1 / l) is slightly negative at t = l: optax's
  # polynomial_schedule gives NaN there under jit (fractional p).
  s = jax.jit(S.poly(k0=0.1, p=p, l=l))
  got = np.asarray(s(jnp.asarray([l - 1, l, l + 1, 5 * l], jnp.int32)))
  np.testing.assert_allclose(got[0], 0.1 * (1 / l) ** p, rtol=1e-5)
  np.testing.assert_array_equal(got[1:], 0.0)


def test_poly_is_not_lrbench_code():
  # LRBench's code: (k1 - k0) * (1 - t / l)^p + k0, k1 the start LR. Here the
  # only LR parameter is k0, the start, and the end is 0.
  s = S.poly(k0=0.5, p=1.2, l=5)
  close(s(0), 0.5)
  close(s(5), 0.0)


# -- Cyclic -------------------------------------------------------------------

CYCLIC = {
    "tri": (lambda: S.tri(K0, K1, L), lambda t: clr(K0, K1, ref_tri(t, L))),
    "tri2": (lambda: S.tri2(K0, K1, L),
             lambda t: clr(K0, K1, ref_tri(t, L) * ref_halving(t, L))),
    "triexp": (lambda: S.triexp(K0, K1, GAMMA, L),
               lambda t: clr(K0, K1, GAMMA ** t * ref_tri(t, L))),
    "sin": (lambda: S.sin(K0, K1, L), lambda t: clr(K0, K1, ref_sin(t, L))),
    "sin2": (lambda: S.sin2(K0, K1, L),
             lambda t: clr(K0, K1, ref_sin(t, L) * ref_halving(t, L))),
    "sinexp": (lambda: S.sinexp(K0, K1, GAMMA, L),
               lambda t: clr(K0, K1, GAMMA ** t * ref_sin(t, L))),
    "cos": (lambda: S.cos(K0, K1, L),
            lambda t: clr(K0, K1, 0.5 * (1 + math.cos(math.pi * 2 * t / L)))),
}


@pytest.mark.parametrize("name", sorted(CYCLIC))
@pytest.mark.parametrize("t", STEPS)
def test_cyclic_matches_table(name, t):
  make, ref = CYCLIC[name]
  close(make()(t), ref(t), rel=1e-5, abs_=1e-6)


@pytest.mark.parametrize("name", sorted(CYCLIC))
def test_cyclic_matches_table_on_every_step_of_five_periods(name):
  make, ref = CYCLIC[name]
  ts = np.arange(5 * 2 * L + 1)
  got = np.asarray(jax.jit(make())(jnp.asarray(ts, jnp.int32)))
  np.testing.assert_allclose(got, [ref(t) for t in ts], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["tri", "tri2", "sin", "sin2", "cos"])
def test_cyclic_is_accurate_at_large_steps(name):
  make, ref = CYCLIC[name]
  for t in (1_000_003, 4_000_000 + L // 2, 8_000_000 + L):
    close(make()(t), ref(t), rel=1e-5, abs_=1e-6)


def test_tri_and_sin_corners():
  for s in (S.tri(K0, K1, L), S.sin(K0, K1, L)):
    close(s(0), K0)
    close(s(L), K1)
    close(s(2 * L), K0)
    close(s(3 * L), K1)
  close(S.tri(K0, K1, L)(L // 2), (K0 + K1) / 2)
  close(S.sin(K0, K1, L)(L // 2), K0 + (K1 - K0) * math.sqrt(0.5))


def test_tri2_and_sin2_halve_at_2l_and_4l():
  for s in (S.tri2(0.0, 1.0, L), S.sin2(0.0, 1.0, L)):
    close(s(L), 1.0)  # First cycle's peak.
    close(s(3 * L), 0.5)  # Second cycle (from 2l): half.
    close(s(5 * L), 0.25)  # Third cycle (from 4l): a quarter.
  for halve_at, factor in ((2 * L, 0.5), (4 * L, 0.25)):
    # Just after the halving point, the wave is divided by the new factor.
    close(S.tri2(0.0, 1.0, L)(halve_at + 1), factor * (1 / L))
    close(S.sin2(0.0, 1.0, L)(halve_at + 1),
          factor * math.sin(math.pi / (2 * L)))
    close(S.tri2(0.0, 1.0, L)(halve_at - 1), 2 * factor * (1 / L))


def test_cos_follows_table_period_l():
  s = S.cos(K0, K1, L)
  close(s(0), K1)
  close(s(L // 4), (K0 + K1) / 2, abs_=1e-6)
  close(s(L // 2), K0)
  close(s(L), K1)  # LRBench's code would give k0 here (period 2l).
  close(s(3 * L // 2), K0)
  close(s(2 * L), K1)


def test_exp_variants_decay_amplitude():
  close(S.triexp(0.0, 1.0, 0.9, L)(L), 0.9 ** L)
  close(S.sinexp(0.0, 1.0, 0.9, L)(3 * L), 0.9 ** (3 * L), rel=1e-4)


# -- jit, dtype ---------------------------------------------------------------

ALL = {
    "fix": lambda: S.fix(K0),
    "step": lambda: S.step(K0, GAMMA, L),
    "nstep": lambda: S.nstep(K0, GAMMA, [L, 3 * L]),
    "exp": lambda: S.exp(K0, GAMMA),
    "inv": lambda: S.inv(K0, GAMMA, 0.5),
    "poly": lambda: S.poly(K0, 0.9, L),
    **{name: make for name, (make, _) in CYCLIC.items()},
}


def test_registry_has_the_13_policies():
  assert sorted(S.POLICIES) == sorted(
      ["FIX", "STEP", "NSTEP", "EXP", "INV", "POLY", "TRI", "TRI2", "TRIEXP",
       "SIN", "SIN2", "SINEXP", "COS"])
  assert sorted(ALL) == sorted(k.lower() for k in S.POLICIES)


@pytest.mark.parametrize("name", sorted(ALL))
def test_jit_with_traced_step(name):
  s = ALL[name]()
  jitted = jax.jit(s)
  for t in (0, L // 2, L, 2 * L + 3, 10_000):
    v = jitted(jnp.asarray(t, jnp.int32))
    assert v.dtype == jnp.float32 and v.shape == ()
    assert np.isfinite(float(v))
    assert float(v) == pytest.approx(float(s(t)), rel=1e-6, abs=1e-9)
  vs = jitted(jnp.arange(100, dtype=jnp.int32))
  assert vs.dtype == jnp.float32 and vs.shape == (100,)
  assert np.all(np.isfinite(np.asarray(vs)))


def test_usable_as_optax_learning_rate():
  import optax
  opt = optax.sgd(S.tri(0.0, 1.0, 2))
  params = jnp.ones(3)
  state = opt.init(params)
  grads = jnp.ones(3)
  lrs = []
  for _ in range(3):
    updates, state = jax.jit(opt.update)(grads, state)
    lrs.append(-float(updates[0]))
  np.testing.assert_allclose(lrs, [0.0, 0.5, 1.0], atol=1e-6)


# -- compose ------------------------------------------------------------------


def test_compose_restarts_each_segment_clock():
  b = 30
  s = S.compose([(S.tri(K0, K1, 10), b), (S.step(1.0, 0.5, 3), None)])
  for t in (0, 5, 10, b - 1):
    close(s(t), clr(K0, K1, ref_tri(t, 10)), abs_=1e-6)
  # From b on: STEP at local time t - b.
  close(s(b), 1.0)
  close(s(b + 2), 1.0)
  close(s(b + 3), 0.5)
  close(s(b + 5), 0.5 ** math.floor(5 / 3))
  close(s(b + 100), 0.5 ** math.floor(100 / 3))


def test_compose_three_segments_under_jit():
  s = jax.jit(S.compose([
      (S.fix(0.1), 5),
      (S.cos(0.0, 1.0, 8), 8),
      (S.nstep(1.0, 0.1, [2]), 10),  # Keeps running past its 10 steps.
  ]))
  ts = np.arange(40)
  got = np.asarray(s(jnp.asarray(ts, jnp.int32)))
  want = []
  for t in ts:
    if t < 5:
      want.append(0.1)
    elif t < 13:
      want.append(0.5 * (1 + math.cos(math.pi * 2 * (t - 5) / 8)))
    else:
      want.append(1.0 if t - 13 < 2 else 0.1)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert got.dtype == np.float32


def test_compose_single_segment_is_the_schedule():
  s = S.compose([(S.sin(0.0, 1.0, 4), None)])
  close(s(2), math.sin(math.pi / 4))


# -- from_lrbench -------------------------------------------------------------


def test_from_lrbench_takes_lrbench_parameter_dicts():
  d = {"lrPolicy": "NSTEP", "k0": 0.05, "k1": None, "gamma": 0.1, "p": None,
       "l": [150, 180]}
  s = S.from_lrbench(d.pop("lrPolicy"), **d)
  close(s(149), 0.05)
  close(s(150), 0.005)
  close(s(180), 0.0005)
  s = S.from_lrbench("triexp", k0=0.05, k1=0.3, gamma=0.1, l=100)
  close(s(1), clr(0.05, 0.3, 0.1 * ref_tri(1, 100)))
  close(S.from_lrbench("FIX", k0=0.025, k1=0.025)(7), 0.025)
  close(S.from_lrbench("POLY", k0=0.1, k1=0, p=1.0, l=10)(5), 0.05)


@pytest.mark.parametrize("name, params, match", [
    ("NOPE", {"k0": 0.1}, "name"),
    ("POLY", {"k0": 0.1, "k1": 0.5, "p": 1.2, "l": 5}, "k1"),
    ("STEP", {"k0": 0.1, "k1": 0.3, "gamma": 0.1, "l": 5}, "k1"),
    ("STEP", {"k0": 0.1, "gamma": 0.1}, "l"),
    ("EXP", {"k0": 0.1, "gamma": 0.9, "l": 3}, "l"),
    ("NSTEP", {"k0": 0.1, "gamma": 0.1, "l": [1], "boundaries": [1]}, "both"),
])
def test_from_lrbench_errors(name, params, match):
  with pytest.raises(ValueError, match=match):
    S.from_lrbench(name, **params)


# -- Validation ---------------------------------------------------------------


@pytest.mark.parametrize("make, match", [
    (lambda: S.fix(-0.1), "k0"),
    (lambda: S.fix(float("nan")), "k0"),
    (lambda: S.step(0.1, 0.0, 10), "gamma"),
    (lambda: S.step(0.1, -0.5, 10), "gamma"),
    (lambda: S.step(0.1, 0.5, 0), "l"),
    (lambda: S.step(-1.0, 0.5, 10), "k0"),
    (lambda: S.nstep(0.1, 0.5, [10, 10]), "strictly increasing"),
    (lambda: S.nstep(0.1, 0.5, [20, 10]), "strictly increasing"),
    (lambda: S.nstep(0.1, 0.5, [-1, 10]), r"boundaries\[0\]"),
    (lambda: S.nstep(0.1, 0.5, 10), "boundaries"),
    (lambda: S.nstep(0.1, 0.0, [10]), "gamma"),
    (lambda: S.exp(0.1, 0.0), "gamma"),
    (lambda: S.exp(-0.1, 0.9), "k0"),
    (lambda: S.inv(0.1, 0.0, 1.0), "gamma"),
    (lambda: S.inv(0.1, 0.1, -1.0), "p"),
    (lambda: S.poly(0.1, 1.0, 0), "l"),
    (lambda: S.poly(0.1, 0.0, 10), "p"),
    (lambda: S.poly(-0.1, 1.0, 10), "k0"),
    (lambda: S.tri(0.1, 1.0, 0), "l"),
    (lambda: S.tri(-0.1, 1.0, 10), "k0"),
    (lambda: S.tri2(0.1, -1.0, 10), "k1"),
    (lambda: S.triexp(0.1, 1.0, 0.0, 10), "gamma"),
    (lambda: S.sin(0.1, 1.0, -3), "l"),
    (lambda: S.sin2(0.1, 1.0, float("inf")), "l"),
    (lambda: S.sinexp(0.1, 1.0, -0.9, 10), "gamma"),
    (lambda: S.cos(0.1, 1.0, 0), "l"),
    (lambda: S.cos("a", 1.0, 10), "k0"),
    (lambda: S.compose([]), "segments"),
    (lambda: S.compose([(S.fix(0.1), 0), (S.fix(0.2), None)]), "num_steps"),
    (lambda: S.compose([(S.fix(0.1), -5)]), "num_steps"),
    (lambda: S.compose([(S.fix(0.1), 2.5), (S.fix(0.2), None)]), "num_steps"),
    (lambda: S.compose([(S.fix(0.1), None), (S.fix(0.2), 5)]), "last"),
    (lambda: S.compose([(0.1, 5)]), "callable"),
    (lambda: S.compose([S.fix(0.1)]), "pair"),
])
def test_value_errors(make, match):
  with pytest.raises(ValueError, match=match):
    make()
