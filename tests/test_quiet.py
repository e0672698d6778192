"""Quiet calls: ``update(..., quiet=True)`` compiles no control flow, and
``quiet_calls`` counts the calls that may take it (decisions: test_golden.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import autolrs_jax

BASES = {"sgd": lambda: optax.sgd(1.0, momentum=0.9), "adam": lambda: optax.adam(1.0)}
CONTROLLERS = {
    "budget": lambda base: autolrs_jax.autolrs(base, min_lr=1e-3, max_lr=1.0, total_steps=500),
    "paper": lambda base: autolrs_jax.autolrs(base, min_lr=1e-3, max_lr=1.0),
    "exptest": lambda base: autolrs_jax.exptest(base, max_lr=1.0),
}


def control_flow(compiled_text: str) -> set[str]:
  """The control-flow instructions of an XLA program's text."""
  return {op for op in ("conditional", "while") if f" {op}(" in compiled_text}


def quadratic(params):
  return jnp.sum((params["w"] @ jnp.arange(4.0)) ** 2) + jnp.sum(params["b"] ** 2)


PARAMS = {"w": jnp.ones((8, 4)), "b": jnp.zeros(4)}


def compiled_step(tx, quiet):
  def step(params, state):
    loss, grads = jax.value_and_grad(quadratic)(params)
    updates, state = tx.update(grads, state, params, value=loss, quiet=quiet)
    return optax.apply_updates(params, updates), state
  return jax.jit(step).lower(PARAMS, tx.init(PARAMS)).compile().as_text()


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
@pytest.mark.parametrize("chained", [False, True])
def test_the_quiet_step_compiles_no_conditional_and_no_loop(controller, base, chained):
  tx = CONTROLLERS[controller](BASES[base]())
  if chained:
    tx = optax.chain(optax.clip_by_global_norm(1.0), tx)
  assert control_flow(compiled_step(tx, quiet=True)) == set()
  # The one-program step branches: the test would see it.
  assert control_flow(compiled_step(tx, quiet=False)) == {"conditional", "while"}


@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
def test_the_quiet_step_through_an_nnx_optimizer_compiles_no_control_flow(controller):
  model = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, CONTROLLERS[controller](optax.adam(1.0)), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  x = jnp.ones((8, 4))

  def step(state):
    model, optimizer = nnx.merge(graphdef, state)
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(x) ** 2))(model)
    optimizer.update(model, grads, value=loss, quiet=True)
    return nnx.state((model, optimizer))

  assert control_flow(jax.jit(step).lower(state).compile().as_text()) == set()


@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
def test_quiet_calls_reads_an_nnx_optimizer_s_state_without_converting_it(controller,
                                                                         monkeypatch):
  model = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, CONTROLLERS[controller](optax.sgd(1.0)), wrt=nnx.Param)
  expected = autolrs_jax.quiet_calls(nnx.as_pure(optimizer.opt_state))
  # The state's params-sized trees stay as they are: converting them all
  # cost more per read than the quiet call it saves.
  converted = []
  as_pure = nnx.as_pure
  monkeypatch.setattr(nnx, "as_pure", lambda tree: converted.append(tree) or as_pure(tree))
  assert autolrs_jax.quiet_calls(optimizer.opt_state) == expected
  assert all(len(jax.tree.leaves(tree)) == 1 for tree in converted)


def test_quiet_calls_counts_the_planned_calls_of_each_phase():
  tx = autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, total_steps=200,
                           warmup_steps=5)
  state = tx.init(PARAMS)
  step = jax.jit(lambda p, s: tx.update(jax.grad(quadratic)(p), s, p, value=quadratic(p)))
  counts, phases = [], []
  for _ in range(200):
    counts.append(autolrs_jax.quiet_calls(state))
    phases.append(int(autolrs_jax.find_state(state).phase))
    _, state = step(PARAMS, state)
  counts, phases = np.asarray(counts), np.asarray(phases)
  # The warm-up counts down to its last call; no probe call is quiet; an
  # exploitation's calls count down to its planned end; the anneal never ends.
  np.testing.assert_array_equal(counts[:5], [4, 3, 2, 1, 0])
  assert np.all(counts[phases == autolrs_jax.PROBE] == 0)
  exploit = np.nonzero(phases == autolrs_jax.EXPLOIT)[0]
  np.testing.assert_array_equal(np.diff(counts[exploit]), -1)
  assert counts[exploit[-1]] == 0
  assert np.all(counts[phases == autolrs_jax.ANNEAL] > 10**9)


def test_exptest_quiet_calls_end_before_the_call_that_fills_a_window():
  tx = autolrs_jax.exptest(optax.sgd(1.0), max_lr=1.0, window=8)
  state = tx.init(PARAMS)
  step = jax.jit(lambda p, s: tx.update(jax.grad(quadratic)(p), s, p, value=quadratic(p)))
  counts, windows = [], []
  for _ in range(12):  # Blocks of one point until the first window's end.
    counts.append(autolrs_jax.quiet_calls(state))
    _, state = step(PARAMS, state)
    windows.append(int(autolrs_jax.find_state(state, kind=None).windows))
  assert counts[:8] == [7, 6, 5, 4, 3, 2, 1, 0]
  assert windows[6:8] == [0, 1]  # The eighth call filled (and tested) the first window.


@pytest.mark.parametrize("controller", sorted(CONTROLLERS))
def test_quiet_must_be_a_python_bool(controller):
  tx = CONTROLLERS[controller](optax.sgd(1.0))
  state = tx.init(PARAMS)
  with pytest.raises(TypeError, match="quiet must be a Python bool"):
    jax.jit(lambda q: tx.update(PARAMS, state, PARAMS, value=jnp.float32(1.0), quiet=q))(True)


@pytest.mark.parametrize("accumulate", ["optax", "autolrs_jax"])
def test_quiet_calls_through_gradient_accumulation(accumulate):
  # The inner controller's quiet calls are its own: each is the emitting call
  # of k micro-steps; the micro-steps between emits may run quiet whatever.
  k, inner = 2, autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0, total_steps=120)
  wrap = {"optax": lambda: optax.MultiSteps(inner, k),
          "autolrs_jax": lambda: autolrs_jax.multi_steps(inner, k)}[accumulate]()

  def run(fast):
    params, state = PARAMS, wrap.init(PARAMS)
    steps = {q: jax.jit(lambda p, s, q=q: wrap.update(jax.grad(quadratic)(p), s, p,
                                                      value=quadratic(p), quiet=q))
             for q in (False, True)}
    lrs, quiet_left = [], 0
    for i in range(k * 120):
      emits = i % k == k - 1
      quiet = fast and (quiet_left > 0 or not emits)
      updates, state = steps[quiet](params, state)
      params = optax.apply_updates(params, updates)
      if emits:
        quiet_left = quiet_left - 1 if quiet else autolrs_jax.quiet_calls(state)
      lrs.append(float(autolrs_jax.find_state(state).learning_rate))
    return np.asarray(lrs), params

  (lrs, params), (fast_lrs, fast_params) = run(False), run(True)
  np.testing.assert_array_equal(fast_lrs, lrs)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               fast_params, params)
