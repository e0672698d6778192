"""The controllers' shared helpers: what they promise beyond the jnp they replace."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings, strategies as st

from autolrs_jax import _common

SPECIALS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, np.inf, -np.inf, np.nan])
VECTORS = st.lists(st.one_of(SPECIALS, st.floats(-10, 10, width=32)), min_size=1, max_size=9)


@settings(max_examples=300, deadline=None)
@given(values=VECTORS)
def test_argmin_and_argmax_give_jnps_index_ties_and_nans_included(values):
  x = jnp.asarray(values, jnp.float32)
  assert int(_common.argmin(x)) == int(jnp.argmin(x))
  assert int(_common.argmax(x)) == int(jnp.argmax(x))
  jitted = jax.jit(jax.vmap(_common.argmin))(jnp.stack([x, -x]))
  np.testing.assert_array_equal(jitted, [jnp.argmin(x), jnp.argmin(-x)])


def test_argmax_of_a_mask_is_its_first_true():
  assert int(_common.argmax(jnp.asarray([False, False, True, True]))) == 2
  assert int(_common.argmax(jnp.zeros([3], bool))) == 0


def test_argmin_refuses_anything_but_a_vector():
  with pytest.raises(ValueError, match="vector"):
    _common.argmin(jnp.zeros([2, 2]))


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
