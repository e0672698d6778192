"""What AutoLRS's ladder sees on a task, rung by rung, beside what each LR gives held.

    python -m benchmarks probes [--task T ...] [--seeds 2] [--budget-scale 1]
                                [--out results/probes.json]

For each LR of the budget ladder (``max_lr`` down by ``sqrt(10)`` to
``min_lr``) one probe as the budget mode runs it in its first stage: from the
initial parameters, at its full LR, ``probe_fraction * steps / first_trials``
calls. Recorded per rung: the validation loss at the probe's end, the
exponential forecast of its training losses at the hold's horizon (the
default score's rule, :func:`autolrs_jax.forecast.forecast`), the fit at its
own end, and its path over the initial parameters' norm (what
``max_probe_drift`` bounds where the default bounds it: ``drift_bounded``).
Beside them, the final validation loss of the benchmark's cosine at that peak
(``results/bench/runs.jsonl``, median over seeds; nothing is rerun): the
ranking a score should reproduce.
"""

import argparse
import inspect
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import autolrs_jax
from autolrs_jax import forecast as forecast_lib
from benchmarks import report
from benchmarks.tasks import base_optimizer
from benchmarks.tasks import LR_RANGES
from benchmarks.tasks import model_loss
from benchmarks.tasks import TASKS

RUNS = pathlib.Path(__file__).resolve().parents[1] / "results" / "bench" / "runs.jsonl"


def ladder(lo: float, hi: float, factor: float) -> list[float]:
  lrs = [hi]
  while lrs[-1] / factor >= lo * (1 - 1e-6):
    lrs.append(lrs[-1] / factor)
  return lrs


def probe(task, lr: float, seed: int, calls: int) -> dict:
  """One probe from the initial parameters at ``lr``: losses, path, end validation loss."""
  data = task.load()
  graphdef, params = nnx.split(task.make_model(seed))
  loss_fn = model_loss(graphdef, task.loss)
  tx = base_optimizer(task.optimizer, lr)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

  @jax.jit
  def step(params, state, key):
    idx = jax.random.randint(key, (task.batch_size,), 0, x.shape[0])
    loss, grads = jax.value_and_grad(loss_fn)(params, x[idx], y[idx])
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss, optax.global_norm(updates)

  norm0 = float(optax.global_norm(params))
  state, losses, path = tx.init(params), [], 0.0
  for key in jax.random.split(jax.random.key(seed), calls):
    params, state, loss, length = step(params, state, key)
    losses.append(float(loss))
    path += float(length)
  val = float(loss_fn(params, jnp.asarray(data.x_val[:task.val_signal_size]),
                      jnp.asarray(data.y_val[:task.val_signal_size])))
  return {"losses": losses, "path_ratio": path / norm0, "end_val_loss": val}


def scores(losses: list[float], horizon: int) -> dict:
  """The forecast at ``horizon`` and the fit at the probe's end (NaN if it diverged)."""
  curve = jnp.asarray(losses, jnp.float32)
  seen = jnp.ones(curve.shape, bool)
  out = {}
  for name, h in (("forecast", horizon), ("end_fit", len(losses) - 1)):
    value, diverged = forecast_lib.forecast(curve, seen, len(losses), h)
    out[name] = float("nan") if bool(diverged) else max(float(value), 0.0)
  return out


def cosine_by_peak(task: str, steps: int) -> dict[float, float]:
  """The benchmark's cosine runs of ``task``: median final validation loss per peak."""
  if not RUNS.exists():
    return {}
  finals = {}
  for r in report.latest([json.loads(line) for line in RUNS.read_text().splitlines()]):
    if (r["task"], r["method"], r["steps"]) == (task, "cosine", steps):
      finals.setdefault(round(np.log10(r["lr"]), 2), []).append(r["final_val_loss"])
  return {k: float(np.median(v)) for k, v in finals.items()}


def drift_bounded(task, steps: int) -> bool:
  """Whether the default budget mode bounds the drift of this task's probes
  (``BudgetPlan.drift_bound``: by default only where the step grows with the
  gradient)."""
  lo, hi = LR_RANGES[task.optimizer]
  tx = autolrs_jax.autolrs(base_optimizer(task.optimizer, 1.0), min_lr=lo, max_lr=hi,
                           total_steps=steps)
  _, params = nnx.split(task.make_model(0))
  return bool(autolrs_jax.find_state(tx.init(params)).drift_bounded)


def measure(task_name: str, seeds: int, budget_scale: float = 1.0) -> dict:
  task = TASKS[task_name]
  plan = autolrs_jax.BudgetPlan()
  steps = round(budget_scale * task.full.steps)
  calls = max(plan.min_probe_steps, round(plan.probe_fraction * steps / plan.first_trials))
  horizon = round((1 - plan.anneal_fraction - plan.probe_fraction) * steps)
  cosine = cosine_by_peak(task_name, task.full.steps)
  rungs = []
  for lr in ladder(*LR_RANGES[task.optimizer], plan.ladder_factor):
    runs = [probe(task, lr, seed, calls) for seed in range(seeds)]
    per_seed = [r | scores(r["losses"], horizon) for r in runs]
    rungs.append({
        "lr": lr,
        **{k: float(np.median([s[k] for s in per_seed]))
           for k in ("end_val_loss", "forecast", "end_fit", "path_ratio")},
        "cosine_final_val_loss": cosine.get(round(np.log10(lr), 2)),
    })
  return {"task": task_name, "split": task.split, "optimizer": task.optimizer,
          "drift_bounded": drift_bounded(task, steps), "budget": steps, "probe_calls": calls,
          "horizon": horizon, "seeds": seeds, "rungs": rungs}


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks probes")
  parser.add_argument("--task", action="append", choices=sorted(TASKS))
  parser.add_argument("--seeds", type=int, default=2)
  parser.add_argument("--budget-scale", type=float, default=1.0,
                      help="probes as the ladder runs them in a budget this many times the "
                           "task's (the cosine column stays the task's own budget)")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/probes.json"))
  args = parser.parse_args(argv)
  drift = inspect.signature(autolrs_jax.autolrs).parameters["max_probe_drift"].default
  result = {"drift_bound": drift, "budget_scale": args.budget_scale,
            "tasks": [measure(t, args.seeds, args.budget_scale) for t in args.task or TASKS]}
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=2))
  for t in result["tasks"]:
    print(f"{t['task']} ({t['split']}, {t['optimizer']}), budget {t['budget']}, probes of "
          f"{t['probe_calls']} calls:")
    for r in t["rungs"]:
      print(f"  lr {r['lr']:.3g}: end val {r['end_val_loss']:.4g}, forecast {r['forecast']:.4g}, "
            f"path/norm {r['path_ratio']:.2f}, cosine at this peak {r['cosine_final_val_loss']}")
