"""Helpers shared by the learning-rate controllers (a leaf: imports nothing local)."""

import math
import numbers
import typing
from typing import Annotated, Any, Callable, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import optax

T = TypeVar("T")


def check_loss(value, name: str, controller: str, axis_name: str | None = None) -> jax.Array:
  """The ``value=``-style loss of an update call, as a float32 scalar, its mean
  over the devices of ``axis_name`` when given (data parallelism: each
  replica's decision must be the same).

  Raises at trace time, naming the argument: a controller cannot run without
  the loss of the current step.
  """
  if value is None:
    raise TypeError(
        f"{controller} needs the loss of the current step: call "
        f"update(grads, state, params, {name}=loss)."
    )
  value = jnp.asarray(value)
  if value.shape != ():
    raise ValueError(f"{name} must be a scalar, got shape {value.shape}.")
  if not jnp.issubdtype(value.dtype, jnp.floating):
    raise ValueError(f"{name} must be a floating-point scalar, got {value.dtype}.")
  value = value.astype(jnp.float32)
  return value if axis_name is None else jax.lax.pmean(value, axis_name)


def check_quiet(quiet, name: str) -> bool:
  """``quiet``, which picks the step that is compiled: a Python bool."""
  if not isinstance(quiet, bool):
    raise TypeError(f"{name}: quiet must be a Python bool (it selects the compiled step, so "
                    f"it cannot be traced), got {type(quiet).__name__}.")
  return quiet


def scale_updates(updates: optax.Updates, learning_rate: jax.Array) -> optax.Updates:
  """``learning_rate * updates``, each leaf keeping its dtype."""
  return jax.tree.map(lambda u: (learning_rate * u).astype(u.dtype), updates)


def zeros_unless(keep: jax.Array, tree: T) -> T:
  """``tree`` if ``keep`` else zeros of its shapes: a select that XLA fuses
  into the consumer (a skipped update, a gradient withheld from the base
  optimizer)."""
  return optax.tree.where(keep, tree, jax.tree.map(jnp.zeros_like, tree))


def select_fields(pred: jax.Array, on_true: T, on_false: T) -> T:
  """``on_true`` where ``pred``, else ``on_false``, field by field; a field
  both hold as the same value is taken as it is. A quiet step computes both
  of its transitions and selects: most fields only one of them changes, and
  a select for each would be code that every call of the step compiles and
  runs for nothing."""
  return jax.tree.map(lambda a, b: b if a is b else jnp.where(pred, a, b), on_true, on_false)


def finite_and_length(updates, learning_rate) -> tuple[jax.Array, jax.Array]:
  """``(finite, length)``: whether ``lr * updates`` is finite, and its norm.

  One sum of squares per leaf, the cheapest reduction XLA:CPU makes of it (a
  variadic ``lax.reduce`` computing finiteness and norm together is not
  vectorised; ``x * 0`` makes it materialise a zero array). A NaN or Inf
  element makes the sum non-finite; so does a sum above float32's range
  (a norm over 1.8e19), which counts as divergence too.
  """
  length = jnp.abs(learning_rate) * jnp.sqrt(sum(
      jnp.sum(jnp.square(u.astype(jnp.float32))) for u in jax.tree.leaves(updates)))
  return jnp.isfinite(length), length


class BaseStep(NamedTuple):
  """The base optimizer's step inside a controller (:func:`base_step`)."""

  updates: optax.Updates  # The base optimizer's update, before the controller's LR.
  state: optax.OptState  # Its new state, stored as it comes (updated in place).
  finite: jax.Array  # bool: ``learning_rate * updates`` is finite.
  length: jax.Array  # float32: its global L2 norm.


def base_step(base_optimizer: optax.GradientTransformationExtraArgs, grads, live_state,
              params, learning_rate, loss_ok: jax.Array, extra_args: dict) -> BaseStep:
  """The base optimizer's update from ``live_state`` and whether it is usable.

  A step whose loss is not usable feeds the base optimizer a zero gradient,
  so that its state stays usable (its moments do not take a NaN).
  """
  updates, state = base_optimizer.update(zeros_unless(loss_ok, grads), live_state, params,
                                         **extra_args)
  return BaseStep(updates, state, *finite_and_length(updates, learning_rate))


def steps_scale_with_gradient(base_optimizer: optax.GradientTransformationExtraArgs,
                              params, base_state) -> jax.Array:
  """Whether the base optimizer's step grows with its gradient (SGD, momentum)
  rather than keeping its size (Adam, sign-like updates, a clipped gradient).

  Its first update from ``base_state`` is computed for a uniform gradient of
  global norm 1 and for twice that: a step whose norm grows by more than half
  scales. A step that is 0 or not finite counts as scaling.
  """
  size = sum(x.size for x in jax.tree.leaves(params))
  unit = jax.tree.map(lambda p: jnp.full_like(p, 1 / math.sqrt(max(size, 1))), params)
  step = lambda g: norm(base_optimizer.update(g, base_state, params)[0])
  one, two = step(unit), step(jax.tree.map(lambda g: 2 * g, unit))
  return ~(two <= 1.5 * one) | (one == 0)


def norm(tree) -> jax.Array:
  """Global L2 norm of ``tree``, in float32."""
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def build_on_mesh_of(params, make: Callable[..., T], *args) -> T:
  """Calls ``make(*args)``, placing its arrays replicated on the params' mesh.

  Under ``jit`` with shardings, the updated state comes back on the mesh of
  the params; an eagerly initialised state must start there too, or every
  scalar's sharding would change at the first update. Building under ``jit``
  with ``out_shardings`` also works across processes, where a mesh spans
  devices that this process cannot address.
  """
  shardings = [x.sharding for x in jax.tree.leaves(params)
               if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer)]
  named = [s for s in shardings if isinstance(s, jax.sharding.NamedSharding)]
  if not named:
    return make(*args)
  replicated = jax.sharding.NamedSharding(named[0].mesh, jax.sharding.PartitionSpec())
  return jax.jit(make, out_shardings=replicated)(*args)


class Packed(NamedTuple):
  """The mark of a controller's scalar field that the state stores packed: as
  entry of its ``field`` array of ``dtype`` (see :func:`packs_scalars`)."""

  field: str
  dtype: Any


# A controller's scalar field, and the state's array that holds it packed.
Counter = Annotated[jax.Array, Packed("counters", jnp.int32)]
Real = Annotated[jax.Array, Packed("reals", jnp.float32)]
Flag = Annotated[jax.Array, Packed("flags", jnp.bool_)]


def packed_groups(controller_type: type) -> dict[str, tuple[Any, tuple[str, ...]]]:
  """``{field: (dtype, names)}``: the fields of ``controller_type`` marked
  :class:`Packed`, grouped by the state's array that holds them, in the
  controller's order (which fixes each one's entry, and so what a checkpoint
  holds where)."""
  hints = typing.get_type_hints(controller_type, include_extras=True)
  groups: dict[str, tuple[Any, list[str]]] = {}
  for name in controller_type._fields:
    for mark in getattr(hints[name], "__metadata__", ()):
      if isinstance(mark, Packed):
        groups.setdefault(mark.field, (mark.dtype, []))[1].append(name)
  return {field: (dtype, tuple(names)) for field, (dtype, names) in groups.items()}


def packs_scalars(controller_type: type):
  """Class decorator for a state that stores the scalars of ``controller_type``
  packed: each field annotated :data:`Counter`, :data:`Real` or :data:`Flag`
  is an entry of the state's ``counters``, ``reals`` or ``flags`` array, and
  reads as an attribute of the state. A jitted step pays for each leaf of its
  arguments and results at every call, about 4 us a leaf on XLA:CPU, which
  dominates a small model's step (``benchmarks/overhead.py``).
  """
  groups = packed_groups(controller_type)

  def entry(field: str, index: int) -> property:
    # The last axis: a state stacked by vmap or scan reads as a stack too.
    return property(lambda state: getattr(state, field)[..., index],
                    doc=f"Entry {index} of ``{field}``.")

  def decorate(cls):
    for field, (_, names) in groups.items():
      for index, name in enumerate(names):
        setattr(cls, name, entry(field, index))
    cls.packed_scalars = groups
    return cls

  return decorate


def _packed_entry(fields: NamedTuple, name: str, dtype) -> jax.Array:
  """Field ``name`` of ``fields`` as ``dtype``, refused if of another kind: a
  float put among the counters would be truncated silently."""
  value = jnp.asarray(getattr(fields, name))
  kind = next(k for k in (jnp.bool_, jnp.integer, jnp.floating) if jnp.issubdtype(dtype, k))
  if not jnp.issubdtype(value.dtype, kind):
    raise TypeError(f"{type(fields).__name__}.{name} is {value.dtype}, but it is packed as "
                    f"{jnp.dtype(dtype).name}: give it a value of that kind.")
  return value.astype(dtype)


def pack(state_type, fields: NamedTuple, **trees):
  """A ``state_type`` holding ``fields`` (packed as it declares) and ``trees``."""
  def value(name):
    if name in trees:
      return trees[name]
    if name in state_type.packed_scalars:
      dtype, names = state_type.packed_scalars[name]
      return jnp.stack([_packed_entry(fields, n, dtype) for n in names], axis=-1)
    return getattr(fields, name)

  return state_type(*map(value, state_type._fields))


def unpack(state, fields_type: type[T]) -> T:
  """The ``fields_type`` tuple read from a state of :func:`packs_scalars`."""
  return fields_type(*(getattr(state, name) for name in fields_type._fields))


def check(ok, name: str, rule: str, value) -> None:
  """Raises ``ValueError`` naming the hyper-parameter ``name`` unless ``ok``.

  A traced ``ok`` (a hyper-parameter injected by ``optax.inject_hyperparams``
  under ``jit``) is not checked: only concrete values can be.
  """
  if isinstance(ok, jax.core.Tracer):
    return
  if not ok:
    raise ValueError(f"{name} must be {rule}, got {name} = {value!r}.")


def static_number(value, name: str, kind: type = numbers.Integral,
                  why: str = "it fixes a buffer's shape or the stage plan"):
  """``value`` (a Python number of ``kind``, or None) as it is, for a
  hyper-parameter that cannot be traced.

  Raises ``ValueError`` naming it for anything else: an array, as
  ``optax.inject_hyperparams`` passes every numeric argument not listed in
  its ``static_args``.
  """
  if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
    return value
  raise ValueError(
      f"{name} must be a Python {'int' if kind is numbers.Integral else 'number'} ({why}), "
      f"got {name} = {value!r}; "
      f"with optax.inject_hyperparams, list {name!r} in static_args.")


def static_ints(**values) -> tuple[int | None, ...]:
  """:func:`static_number` of each keyword argument, an integer, in order."""
  return tuple(static_number(value, name) for name, value in values.items())


def log(value):
  """``log`` of a hyper-parameter: ``math.log`` of a Python number (the
  double-precision constant the controllers have always used), ``jnp.log`` of
  an array or a tracer (one injected by ``optax.inject_hyperparams``)."""
  return math.log(value) if isinstance(value, (int, float)) else jnp.log(value)
