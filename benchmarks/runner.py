"""One benchmark run: a task, a method, a seed, a budget of update calls.

Training calls one jitted step per update (on XLA:CPU a ``lax.scan`` over
the same step ran the CNN about 5x slower), and the validation loss is
measured every ``eval_every`` steps. Every update call counts as a step, AutoLRS's probe
steps included.

What is evaluated is the model the user holds: for AutoLRS inside a probe,
that is the stage's snapshot (the probe's parameters are thrown away at its
end), so the validation curve stays flat while AutoLRS searches; for
schedule-free AdamW, the averaged parameters (``schedule_free_eval_params``).
"""

import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from optax import contrib

import autolrs_jax
from benchmarks import training
from benchmarks.methods import METHODS
from benchmarks.methods import Method
from benchmarks.tasks import model_loss
from benchmarks.tasks import Task


class Run(NamedTuple):
  """What one run measured (NumPy arrays and Python numbers)."""

  eval_steps: np.ndarray  # Update calls done at each evaluation.
  val_loss: np.ndarray  # Validation loss of the held model at each evaluation.
  train_loss: np.ndarray  # Minibatch loss of every step (before its update).
  learning_rate: np.ndarray  # The controller's LR of every step (NaN without AutoLRS/ExpTest).
  phase: np.ndarray  # AutoLRS's phase of every step (-1 for other methods).
  stage: np.ndarray  # AutoLRS's stage of every step (-1 for other methods).
  restored: np.ndarray  # AutoLRS: the step returned to its stage's snapshot.
  final_val_loss: float
  test_loss: float
  test_accuracy: float  # NaN unless the task's metric is accuracy.
  wall_seconds: float  # Training and evaluation, compilation included.
  val_logits: np.ndarray | None  # Final model's, for ensembles (classification only).
  test_logits: np.ndarray | None
  bo_stages: list[dict[str, Any]]  # AutoLRS: each stage's probed LRs and forecasts.


def _held_params(params, opt_state, method: Method):
  """The parameters a user would keep if training stopped now."""
  if method.schedule_free:
    return contrib.schedule_free_eval_params(opt_state, params)
  if training.controller_in(opt_state):
    s = autolrs_jax.find_state(opt_state)
    # Inside a probe (but not at its stage's first step, before the snapshot
    # is taken) the kept model is the snapshot.
    probing = (s.phase == autolrs_jax.PROBE) & ((s.trial > 0) | (s.phase_step > 0))
    return jax.tree.map(lambda snap, p: jnp.where(probing, snap, p), s.snapshot_params, params)
  return params


def _batched(fn, x, batch):
  """Concatenates ``fn`` over slices of ``x`` (bounded memory for the LM's logits)."""
  return jnp.concatenate([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def replayed_schedule(task: Task, method: Method, seed: int, steps: int,
                      eval_every: int) -> optax.Schedule:
  """The schedule that the run of ``method.replays`` on ``seed`` applied, its
  probes removed, stretched over ``steps`` calls (trained here first)."""
  searched = train(task, METHODS[method.replays], seed, steps, eval_every)
  found = autolrs_jax.export_schedule(searched.learning_rate, searched.phase, searched.stage,
                                      searched.restored)
  return found.schedule(steps)


def train(task: Task, method: Method, seed: int, steps: int, eval_every: int,
          lr: float | None = None, keep_logits: bool = False) -> Run:
  """Trains ``task``'s model with ``method`` for ``steps`` update calls."""
  data = task.load()
  graphdef, params = nnx.split(task.make_model(seed))
  if method.replays:
    lr = replayed_schedule(task, method, seed, steps, eval_every)
  tx = method.build(task, steps, seed, lr)
  opt_state = tx.init(params)
  autolrs_inside = training.controller_in(opt_state)
  signal = data._replace(x_val=data.x_val[:task.val_signal_size],
                         y_val=data.y_val[:task.val_signal_size])
  step = training.make_loop_step(model_loss(graphdef, task.loss), tx, signal, task.batch_size,
                                 pass_value=method.passes_value, opt_state=opt_state)

  @jax.jit
  def logits(p, s, x):
    return nnx.merge(graphdef, _held_params(p, s, method))(x)

  def evaluate(p, s, x, y):
    out = _batched(lambda xb: logits(p, s, xb), jnp.asarray(x), task.eval_batch)
    return out, float(task.loss(out, jnp.asarray(y)))

  x_curve, y_curve = data.x_val[:task.curve_val_size], data.y_val[:task.curve_val_size]
  start = time.perf_counter()
  batches_key = jax.random.key(seed)
  if method.other_batches:
    batches_key = jax.random.fold_in(batches_key, 1)
  keys = jax.random.split(batches_key, steps)
  records, eval_steps, val_losses, bo_stages = [], [], [], {}
  for begin in range(0, steps, eval_every):
    for key in keys[begin:begin + eval_every]:
      params, opt_state, rec = step(params, opt_state, key)
      records.append(rec)
    eval_steps.append(min(begin + eval_every, steps))
    val_losses.append(evaluate(params, opt_state, x_curve, y_curve)[1])
    if autolrs_inside:
      _record_bo(opt_state, bo_stages)
  val_logits, final_val = evaluate(params, opt_state, data.x_val, data.y_val)
  test_logits, test_loss = evaluate(params, opt_state, data.x_test, data.y_test)
  test_accuracy = (float(jnp.mean(jnp.argmax(test_logits, -1) == jnp.asarray(data.y_test)))
                   if task.metric == "accuracy" else float("nan"))
  wall = time.perf_counter() - start
  train_loss, learning_rate, phase, stage, restored = (
      np.asarray(c) for c in zip(*jax.device_get(records)))
  keep = keep_logits and task.classification
  return Run(
      eval_steps=np.asarray(eval_steps), val_loss=np.asarray(val_losses),
      train_loss=train_loss, learning_rate=learning_rate, phase=phase, stage=stage,
      restored=restored,
      final_val_loss=final_val, test_loss=test_loss, test_accuracy=test_accuracy,
      wall_seconds=wall,
      val_logits=np.asarray(val_logits) if keep else None,
      test_logits=np.asarray(test_logits) if keep else None,
      bo_stages=[bo_stages[k] for k in sorted(bo_stages)])


def _record_bo(opt_state, bo_stages):
  """Keeps each stage's BO data, readable while the stage exploits its best LR."""
  s = autolrs_jax.find_state(opt_state)
  if int(s.phase) == autolrs_jax.EXPLOIT:
    obs = autolrs_jax.bo_observations(opt_state)
    bo_stages[int(s.stage)] = {"stage": int(s.stage), "exploited_lr": float(s.learning_rate),
                               **{k: np.asarray(v).tolist() for k, v in obs.items()}}
