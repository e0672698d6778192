"""LRBench's dynamic switching (switch_on_plateau): a trace worked out by hand from its rule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import autolrs_jax
from autolrs_jax import schedules

POLICIES = [schedules.fix(0.3), schedules.fix(0.1), schedules.fix(0.03), schedules.fix(0.01)]


def run(tx, values, params=None):
  """Indices and LRs of the calls fed ``values``, through one jitted update."""
  params = {"w": jnp.ones(3)} if params is None else params
  state = tx.init(params)
  step = jax.jit(lambda s, v: tx.update({"w": jnp.ones(3)}, s, params, value=v))
  indices, lrs = [], []
  for v in values:
    indices.append(int(state.index))
    _, state = step(state, jnp.float32(v))
    lrs.append(float(state.learning_rate))
  return indices, lrs, state, step


def test_the_hand_worked_trace_switches_up_early_down_late_with_its_cooldown():
  # window 3, threshold 0.05, cooldown 2, one check per call, 20 calls; the
  # direction turns at count 16 (0.8 * 20). A call's switch applies from the
  # next call on.
  # - Calls 0-4: the loss falls, then the window (8, 7, 7) still holds an
  #   improvement of 1: no plateau.
  # - Call 5: (7, 7, 7), more than 3 checks, cooldown 0: plateau, up to
  #   index 1, cooldown 2. Calls 6, 7: plateau, cooldown 2 -> 1 -> 0.
  # - Call 8: plateau, cooldown 0: up to index 0, cooldown 2; call 9: 1.
  # - Calls 10-14: the loss falls again (windows hold an improvement of 1);
  #   the cooldown reaches 0 at call 10.
  # - Call 15: (3, 3, 3), count 15 < 16: "increase", clipped at the head
  #   (index 0 stays), cooldown 2. Calls 16, 17: cooldown 1, 0.
  # - Call 18: plateau, count 18 >= 16: "decrease", down to index 1.
  values = [10, 9, 8, 7, 7, 7, 7, 7, 7, 7, 6, 5, 4, 3, 3, 3, 3, 3, 3, 3]
  tx = autolrs_jax.switch_on_plateau(optax.sgd(1.0), POLICIES, total_steps=20, start_index=2,
                                     window=3, threshold=0.05, cooldown=2)
  indices, lrs, state, _ = run(tx, values)
  assert indices == [2, 2, 2, 2, 2, 2, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
  np.testing.assert_allclose(lrs, [[0.3, 0.1, 0.03, 0.01][i] for i in indices], rtol=1e-6)
  assert int(state.index) == 1 and int(state.checks) == 20 and int(state.cooldown) == 1


def test_a_check_is_the_mean_of_its_calls_and_the_update_is_scaled_by_the_policy():
  tx = autolrs_jax.switch_on_plateau(optax.sgd(1.0), POLICIES, total_steps=100, start_index=3,
                                     check_every=2, window=2, cooldown=0)
  # Checks: mean(5, 3) = 4, mean(4.5, 3.5) = 4 (improvement 0), mean(4, 4) = 4:
  # the third check (call 5) is the first with more than 2 checks: plateau.
  # The fourth, mean(9, 9), rose: an improvement below the threshold too.
  indices, _, state, step = run(tx, [5, 3, 4.5, 3.5, 4, 4, 9, 9])
  assert indices == [3, 3, 3, 3, 3, 3, 2, 2] and int(state.index) == 1
  np.testing.assert_allclose(state.history, [4.0, 9.0])
  updates, _ = step(state, jnp.float32(1.0))
  np.testing.assert_allclose(updates["w"], -0.1 * np.ones(3), rtol=1e-6)


def test_a_policy_is_evaluated_at_the_global_step():
  decaying = [schedules.exp(1.0, 0.5), schedules.exp(0.1, 0.5)]
  tx = autolrs_jax.switch_on_plateau(optax.sgd(1.0), decaying, total_steps=10, start_index=1,
                                     window=2, cooldown=5)
  indices, lrs, _, _ = run(tx, [1.0] * 5)
  assert indices == [1, 1, 1, 0, 0]
  np.testing.assert_allclose(lrs, [0.1, 0.05, 0.025, 0.125, 0.0625], rtol=1e-6)


def test_one_compilation_over_a_run_and_no_control_flow():
  tx = autolrs_jax.switch_on_plateau(optax.adam(1.0), POLICIES, total_steps=50, window=3)
  _, _, _, step = run(tx, np.linspace(5, 1, 50))
  assert step._cache_size() == 1
  state = tx.init({"w": jnp.ones(3)})
  hlo = step.lower(state, jnp.float32(1.0)).compile().as_text()
  assert "conditional" not in hlo and "while" not in hlo


def test_inside_chain_and_nnx_optimizer():
  tx = optax.chain(optax.clip_by_global_norm(1.0),
                   autolrs_jax.switch_on_plateau(optax.sgd(1.0), POLICIES, total_steps=30,
                                                 start_index=3, window=2, cooldown=1))
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(jnp.ones((4, 3))) ** 2))(model)
    optimizer.update(model, grads, value=jnp.float32(1.0))  # A flat monitored value.
    return loss

  for _ in range(4):
    train_step(model, optimizer)
  state = optimizer.opt_state[1]
  assert isinstance(state, autolrs_jax.SwitchOnPlateauState)
  assert int(state.index) == 2  # The third check was a plateau: one step up.


@pytest.mark.parametrize("kw,name", [
    (dict(policies=[]), "policies"), (dict(start_index=4), "start_index"),
    (dict(check_every=0), "check_every"), (dict(window=1), "window"),
    (dict(threshold=-1.0), "threshold"), (dict(cooldown=-1), "cooldown"),
    (dict(increase_before=1.5), "increase_before"), (dict(total_steps=0), "total_steps"),
    (dict(window=jnp.asarray(3)), "window"),
])
def test_bad_hyperparameters_are_refused(kw, name):
  args = dict(policies=POLICIES, total_steps=10) | kw
  with pytest.raises(ValueError, match=name):
    autolrs_jax.switch_on_plateau(optax.sgd(1.0), **args)
