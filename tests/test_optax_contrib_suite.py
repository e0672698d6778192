"""optax's own test suite for ``optax.contrib`` optimizers, run on our controllers.

The test bodies are those of the installed optax (``optax/contrib/_common_test.py``),
imported and called unchanged, for ``autolrs(sgd)``, ``autolrs(adam)`` and
``exptest(sgd)``: every convention optax checks for its contrib optimizers is
checked for ours, in the version of optax installed. Two adaptations, both
here and neither in an assertion:

1. The suite builds an optimizer by name (``_get_opt_factory``) and passes
   ``value=`` only to the ones it knows need it (``momo``, ``momo_adam``, and
   a few per test). Each body is called with ``opt_name='momo'`` while
   ``_get_opt_factory`` returns our factory: our controllers are given
   ``value=`` exactly where the suite gives it to momo.
2. ``inject_hyperparams`` injects every argument it is given except a fixed
   list of static names. Our factories below take only their float
   hyper-parameters; the integers that fix shapes (``tau``, ``window``, ...)
   are bound inside, as optax keeps ``rank`` static.

The convergence bodies (30,000 steps on four problems) are marked ``slow``:
they run in the end-to-end tier (``python -m pytest -q -m slow``), not by default.
"""

import inspect

import optax
import pytest

import autolrs_jax

_common_test = pytest.importorskip("optax.contrib._common_test")


def autolrs_sgd(min_lr: float = 1e-3, max_lr: float = 1.0, kappa: float = 1000.0):
  return autolrs_jax.autolrs(optax.sgd(1.0), min_lr=min_lr, max_lr=max_lr, kappa=kappa,
                             tau=100, tau_probe=10, num_trials=5, tau_max=800)


def autolrs_adam(min_lr: float = 1e-4, max_lr: float = 1e-1, kappa: float = 1000.0):
  return autolrs_jax.autolrs(optax.adam(1.0), min_lr=min_lr, max_lr=max_lr, kappa=kappa,
                             tau=100, tau_probe=10, num_trials=5, tau_max=800)


def exptest_sgd(search_start_lr: float = 1e-4, alpha: float = 0.05,
                growth_factor: float = 2.0):
  return autolrs_jax.exptest(optax.sgd(1.0), search_start_lr=search_start_lr, alpha=alpha,
                             growth_factor=growth_factor)


FACTORIES = {"autolrs_sgd": autolrs_sgd, "autolrs_adam": autolrs_adam,
             "exptest_sgd": exptest_sgd}
# The float hyper-parameters each factory takes: the suite's ``opt_kwargs``.
KWARGS = {name: {k: p.default for k, p in inspect.signature(f).parameters.items()}
          for name, f in FACTORIES.items()}


def body(name):
  """The unparameterized body of one of optax's ``ContribTest`` tests."""
  generated = getattr(_common_test.ContribTest, f"{name}0")
  return inspect.unwrap(generated)


def run(monkeypatch, test_name, controller, **params):
  monkeypatch.setattr(_common_test, "_get_opt_factory", lambda opt_name: FACTORIES[controller])
  case = _common_test.ContribTest(f"{test_name}0")
  body(test_name)(case, opt_name="momo", opt_kwargs=KWARGS[controller], **params)


CONTROLLERS = sorted(FACTORIES)
WRAPPERLESS = dict(wrapper_name=None, wrapper_kwargs=None)


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("wrap", [True, False])
def test_accept_extra_args(monkeypatch, controller, wrap):
  run(monkeypatch, "test_optimizers_accept_extra_args", controller, wrap=wrap, **WRAPPERLESS)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_inject_hyperparams(monkeypatch, controller):
  run(monkeypatch, "test_optimizers_can_be_wrapped_in_inject_hyperparams", controller)


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_preserve_dtype(monkeypatch, controller, dtype):
  run(monkeypatch, "test_preserve_dtype", controller, dtype=dtype)


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_gradient_accumulation(monkeypatch, controller, dtype):
  run(monkeypatch, "test_gradient_accumulation", controller, dtype=dtype)


@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_state_shape_dtype_shard_stability(monkeypatch, controller, dtype):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  run(monkeypatch, "test_state_shape_dtype_shard_stability", controller,
      dtype=getattr(jnp, dtype), **WRAPPERLESS)


@pytest.mark.parametrize("controller", CONTROLLERS)
def test_learning_rate_schedule(monkeypatch, controller):
  # Skipped by the body itself: our factories take no ``learning_rate``.
  run(monkeypatch, "test_optimizers_accept_learning_rate_schedule_if_type_annotated_as_such",
      controller, **WRAPPERLESS)


@pytest.mark.slow
@pytest.mark.parametrize("controller", CONTROLLERS)
@pytest.mark.parametrize("target", ["_setup_parabola", "_setup_rosenbrock",
                                    "_setup_matrix_parabola", "_setup_mixed_tensor_target"])
def test_optimizers_converge(monkeypatch, controller, target):
  run(monkeypatch, "test_optimizers", controller, target=getattr(_common_test, target),
      dtype="float32", **WRAPPERLESS)
