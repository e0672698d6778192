"""The controllers' shared helpers."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from autolrs_jax import _common



def test_packed_groups_are_the_marked_fields_in_the_controllers_order():
  class Controller(NamedTuple):
    a: _common.Real
    b: jax.Array  # Unmarked: a field of the state of its own.
    c: _common.Counter
    d: _common.Real
    e: _common.Flag
  assert _common.packed_groups(Controller) == {
      "reals": (jnp.float32, ("a", "d")), "counters": (jnp.int32, ("c",)),
      "flags": (jnp.bool_, ("e",))}


@pytest.mark.parametrize("base,scales", [
    (optax.sgd(1.0), True),
    (optax.sgd(0.1, momentum=0.9), True),
    (optax.adam(1e-3), False),
    (optax.adamw(1e-3, weight_decay=0.1), False),
    (optax.lion(1e-4), False),
    (optax.chain(optax.clip_by_global_norm(0.5), optax.sgd(1.0)), False),
    (optax.sgd(optax.linear_schedule(0.0, 1.0, 10)), True),  # A first step of 0.
])
def test_steps_scale_with_gradient_tells_sgd_from_adam(base, scales):
  params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3, jnp.bfloat16)}
  got = _common.steps_scale_with_gradient(optax.with_extra_args_support(base), params,
                                          base.init(params))
  assert bool(got) is scales


def test_select_fields_selects_only_the_fields_the_two_hold_apart():
  class Fields(NamedTuple):
    same: jax.Array
    apart: jax.Array

  def select(pred):
    shared = jnp.arange(3.0)
    return _common.select_fields(pred, Fields(shared, jnp.ones(3)), Fields(shared, jnp.zeros(3)))

  for pred, apart in ((True, 1.0), (False, 0.0)):
    chosen = select(jnp.asarray(pred))
    np.testing.assert_array_equal(chosen.same, np.arange(3.0))
    np.testing.assert_array_equal(chosen.apart, np.full(3, apart))
  # The shared field compiles to no select: one select_n in the whole program.
  jaxpr = jax.make_jaxpr(select)(jnp.asarray(True))
  assert [e.primitive.name for e in jaxpr.eqns].count("select_n") + sum(
      str(e.params.get("jaxpr", "")).count("select_n") for e in jaxpr.eqns) == 1
