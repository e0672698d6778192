"""The one training step of the repository, a loop around it, and the one step timer.

The step is a single ``jax.jit`` function over a params pytree (a Flax NNX
model split by ``nnx.split``, as in Flax's functional API) and the optimizer
state. It draws its minibatch inside, passes the loss as ``value=`` to
optimizers that take it (AutoLRS, ExpTest, reduce-on-plateau), and, when
AutoLRS asks for a validation loss (``find_state(state).wants_validation``),
computes it under ``jax.lax.cond``: no host round trip. Examples, benchmarks,
timings and tests all train through it.
"""

import functools
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import autolrs_jax

LossFn = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, x, y) -> scalar.
NAN = float("nan")


class Record(NamedTuple):
  """What one step reports (arrays; NaN / -1 where no controller is in the state)."""

  loss: jax.Array  # Minibatch loss before the step's update.
  learning_rate: jax.Array  # The controller's LR applied by the step.
  phase: jax.Array  # The controller's phase during the step.
  stage: jax.Array  # AutoLRS's stage during the step.
  restored: jax.Array  # AutoLRS: the step returned to the stage's snapshot.


class History(NamedTuple):
  """Per-step records of a run (NumPy arrays of length ``steps``)."""

  loss: np.ndarray
  learning_rate: np.ndarray
  phase: np.ndarray
  stage: np.ndarray
  restored: np.ndarray


def controller_in(opt_state, kind=autolrs_jax.AutoLRSState) -> bool:
  """Whether ``opt_state`` holds a controller state of ``kind`` (None: any)."""
  try:
    autolrs_jax.find_state(opt_state, kind=kind)
  except ValueError:
    return False
  return True


def make_step(loss_fn: LossFn, tx: optax.GradientTransformation, data, batch_size: int, *,
              pass_value: bool, val_size: int = 512, opt_state=None, donate: bool = False,
              validate: bool = True, quiet: bool = False):
  """Builds ``step(params, opt_state, key) -> (params, opt_state, Record)``, jitted.

  Args:
    loss_fn: ``loss_fn(params, x, y)``, a scalar.
    tx: the optimizer.
    data: ``x_train, y_train`` (batches are drawn with replacement inside the
      step) and ``x_val, y_val`` (their first ``val_size`` examples score the
      validation loss when AutoLRS asks for it).
    batch_size: minibatch size.
    pass_value: pass the loss as ``value=``.
    val_size: validation examples AutoLRS's validation loss is computed on.
    opt_state: a state of ``tx`` (its structure tells which controller to
      read); default ``tx`` has none.
    donate: donate ``params`` and ``opt_state`` to the step (``donate_argnums``),
      as a production loop does: their buffers are reused for the outputs, so
      a state that passes through unchanged costs no copy. The caller must
      not use the arrays it passed in again.
    validate: hand AutoLRS the validation loss it asks for (a forward pass on
      ``val_size`` examples at those steps); without it, it scores its probes
      with the training loss.
    quiet: the controller's quiet step (``update(..., quiet=True)``), for the
      calls ``autolrs_jax.quiet_calls`` counts; it asks for no validation loss.
  """
  x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  x_val, y_val = jnp.asarray(data.x_val[:val_size]), jnp.asarray(data.y_val[:val_size])
  controlled = opt_state is not None and controller_in(opt_state, kind=None)
  autolrs_inside = opt_state is not None and controller_in(opt_state)
  validates = validate and not quiet and autolrs_inside

  @functools.partial(jax.jit, donate_argnums=(0, 1) if donate else ())
  def step(params, opt_state, key):
    idx = jax.random.randint(key, (batch_size,), 0, x_train.shape[0])
    loss, grads = jax.value_and_grad(loss_fn)(params, x_train[idx], y_train[idx])
    kwargs = ({"value": loss} if pass_value else {}) | ({"quiet": True} if quiet else {})
    lr, phase, stage = jnp.float32(NAN), jnp.int32(-1), jnp.int32(-1)
    if controlled:
      c = autolrs_jax.find_state(opt_state, kind=None)
      lr, phase = c.learning_rate, c.phase
    if autolrs_inside:
      stage = autolrs_jax.find_state(opt_state).stage
    if validates:
      kwargs["validation_value"] = jax.lax.cond(
          autolrs_jax.find_state(opt_state).wants_validation,
          lambda: loss_fn(params, x_val, y_val), lambda: jnp.float32(NAN))
    updates, opt_state = tx.update(grads, opt_state, params, **kwargs)
    restored = (autolrs_jax.find_state(opt_state).restored if autolrs_inside
                else jnp.bool_(False))
    record = Record(loss, lr, phase, stage, restored)
    return optax.apply_updates(params, updates), opt_state, record

  return step


def make_loop_step(loss_fn: LossFn, tx: optax.GradientTransformation, data, batch_size: int,
                   *, opt_state, **kwargs):
  """The step of a training loop: :func:`make_step`'s, or for a controller
  the loop of ``autolrs_jax.quiet_calls``: each call it counts taken by the
  step compiled with ``quiet=True``, the others by the one-program step,
  after which the count is read on the host.

  Returns ``step(params, opt_state, key) -> (params, opt_state, Record)``.
  """
  step = make_step(loss_fn, tx, data, batch_size, opt_state=opt_state, **kwargs)
  if not controller_in(opt_state, kind=None):
    return step
  return quiet_calls_loop(step, make_step(loss_fn, tx, data, batch_size, opt_state=opt_state,
                                          quiet=True, **kwargs))


def quiet_calls_loop(step, quiet_step):
  """``loop_step(params, opt_state, key)``: the loop of ``autolrs_jax.quiet_calls``
  over a one-program ``step`` and its ``quiet_step`` (the same signature),
  counting down the quiet calls it read after the last one-program call."""
  quiet_left = 0

  def loop_step(params, opt_state, key):
    nonlocal quiet_left
    if quiet_left:
      quiet_left -= 1
      return quiet_step(params, opt_state, key)
    params, opt_state, record = step(params, opt_state, key)
    quiet_left = autolrs_jax.quiet_calls(opt_state)
    return params, opt_state, record

  return loop_step


def train(params, tx: optax.GradientTransformation, loss_fn: LossFn, data, *, steps: int,
          batch_size: int = 128, seed: int = 0, pass_value: bool | None = None,
          val_size: int = 512, stop_after_stage: int | None = None, progress: bool = False):
  """Trains ``params`` with ``tx``; returns ``(params, opt_state, History)``.

  Args:
    params: the parameters (e.g. ``nnx.split(model)[1]``).
    tx: any optax transformation; a controller is detected and fed ``value``
      (and AutoLRS ``validation_value``).
    loss_fn: ``loss_fn(params, x, y)``.
    data: an object with ``x_train, y_train, x_val, y_val``.
    steps: update calls (AutoLRS probe steps included).
    batch_size: minibatch size.
    seed: seeds the minibatch draws.
    pass_value: pass the loss as ``value=``; default: to controllers only.
    val_size: validation examples scored when AutoLRS asks.
    stop_after_stage: stop (before ``steps``) once AutoLRS finishes this
      stage's exploitation, so that the params are not a probe's. Costs a host
      sync per step.
    progress: show a tqdm bar with the controller's phase and LR.
  """
  opt_state = tx.init(params)
  controlled = controller_in(opt_state, kind=None)
  step = make_loop_step(loss_fn, tx, data, batch_size, val_size=val_size, opt_state=opt_state,
                        pass_value=controlled if pass_value is None else pass_value)
  keys = jax.random.split(jax.random.key(seed), steps)
  records = []
  bar = _progress_bar(steps) if progress else None
  for i in range(steps):
    params, opt_state, record = step(params, opt_state, keys[i])
    records.append(record)
    if (stop_after_stage is not None
        and int(autolrs_jax.find_state(opt_state).stage) > stop_after_stage):
      break
    if bar is not None and (i % 50 == 49 or i == steps - 1):
      _show(bar, i + 1, opt_state if controlled else None, record)
  if bar is not None:
    bar.total = len(records)  # A run that stopped after its last stage took fewer.
    _show(bar, len(records), opt_state if controlled else None, records[-1])
    bar.close()
  columns = [np.asarray(c) for c in zip(*jax.device_get(records))]
  return params, opt_state, History(*columns)


def _progress_bar(total: int):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm(total=total, unit="step")


def _show(bar, done: int, opt_state, record: Record) -> None:
  postfix = {"loss": f"{float(record.loss):.3f}"}
  if opt_state is not None:
    info = autolrs_jax.describe(opt_state)
    postfix.update(phase=info["phase"], lr=f"{info['learning_rate']:.2e}")
  bar.set_postfix(postfix, refresh=False)
  bar.update(done - bar.n)


def time_calls(call: Callable[[], Any], repeats: int, warmup: int = 20) -> dict:
  """Times ``call()``, each call waited for with ``block_until_ready``.

  Returns ``first_call_s`` (compilation included), then ``median_ms``,
  ``mean_ms`` and ``max_ms`` over ``repeats`` calls after ``warmup`` more.
  """
  return time_side_by_side({"call": call}, repeats, warmup)["call"]


def time_side_by_side(calls: dict[str, Callable[[], Any]], repeats: int, warmup: int = 20,
                      block: int = 10) -> dict[str, dict]:
  """:func:`time_calls` of several calls, timed in alternating blocks of ``block``.

  On a machine whose speed drifts (a shared VM), calls timed one after the
  other see different machines; alternating blocks share the drift, so their
  ratios hold.
  """
  first = {}
  for name, call in calls.items():
    start = time.perf_counter()
    jax.block_until_ready(call())
    first[name] = time.perf_counter() - start
  for call in calls.values():
    for _ in range(warmup):
      out = call()
    if warmup:
      jax.block_until_ready(out)
  times = {name: [] for name in calls}
  while len(times[next(iter(calls))]) < repeats:
    for name, call in calls.items():
      for _ in range(min(block, repeats - len(times[name]))):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times[name].append(time.perf_counter() - start)
  stats = lambda t: {"median_ms": 1e3 * float(np.median(t)), "mean_ms": 1e3 * float(np.mean(t)),
                     "max_ms": 1e3 * float(np.max(t))}
  return {name: stats(times[name]) | {"first_call_s": first[name]} for name in calls}


def time_loops(loops: dict[str, Callable[[], Any]], calls: int, block: int = 10) -> dict[str, dict]:
  """Times whole loops side by side: each ``loops[name]()`` runs one call of
  its loop and returns what to wait for. The loops take turns for ``block``
  calls each, a block waited for once at its end (a loop's own host reads
  still wait where they are), so that an accelerator may queue a block's
  calls as a training loop lets it.

  Returns name -> ``total_s`` over the ``calls`` calls and ``mean_ms``.
  """
  totals = {name: 0.0 for name in loops}
  for begin in range(0, calls, block):
    for name, loop in loops.items():
      start = time.perf_counter()
      for _ in range(min(block, calls - begin)):
        out = loop()
      jax.block_until_ready(out)
      totals[name] += time.perf_counter() - start
  return {name: {"total_s": t, "mean_ms": 1e3 * t / calls} for name, t in totals.items()}


def time_steps(steps_to_time: dict[str, tuple], steps: int, warmup: int = 20,
               seed: int = 1) -> dict[str, dict]:
  """Times jitted ``step(params, opt_state, key)`` functions side by side
  (:func:`time_side_by_side`), each threading its own state.

  Args:
    steps_to_time: name -> ``(step, params, opt_state)``.

  Returns name -> the timing, with ``state_bytes``, the optimizer state's size.
  """
  carries, calls = {}, {}
  for name, (step, params, opt_state) in steps_to_time.items():
    # Split ahead: iterating a key array unstacks it all at the first key (0.9 s
    # for 2,000 keys, compiled), which the first call timed would pay.
    keys = iter(list(jax.random.split(jax.random.key(seed), 1 + warmup + steps)))
    carry = carries[name] = [params, opt_state]

    def call(step=step, carry=carry, keys=keys):
      carry[0], carry[1], _ = step(carry[0], carry[1], next(keys))
      return carry

    calls[name] = call
  timing = time_side_by_side(calls, steps, warmup)
  return {name: timing[name] | {"state_bytes": sum(x.nbytes for x in jax.tree.leaves(c[1]))}
          for name, c in carries.items()}
