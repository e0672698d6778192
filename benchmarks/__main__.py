"""Command line of the benchmarks.

    python -m benchmarks --task mnist1d --quick   # one task, quick budget
    python -m benchmarks                           # all tasks, full budget, 3 seeds
    python -m benchmarks report --out DIR          # table and plots again
    python -m benchmarks overhead                  # step-time micro-benchmark
    python -m benchmarks ensemble                  # LREnsemble selection over the runs
    python -m benchmarks step-time                 # the example CNN's step, AutoLRS vs SGD
    python -m benchmarks kappa                     # AutoLRS's LCB kappa on MNIST-1D
    python -m benchmarks readme                    # README and docs/benchmarks.md from results/

Runs are appended to ``<out>/runs.jsonl`` as they finish and skipped when
found there, so an interrupted benchmark resumes where it stopped; with
``--same-numerics`` only when found recorded on this machine's numerics
(:func:`benchmarks.host.numerics`), so that a variant pairs with its full method's run.
"""

import argparse
import json
import os
import pathlib
import sys

import numpy as np

from benchmarks import host
from benchmarks import lrbench_metrics
from benchmarks import report
from benchmarks import runner
from benchmarks.methods import DERIVED, GRID, METHODS
from benchmarks.tasks import TASKS, task_grid

FULL_OUT = pathlib.Path("results/bench")
QUICK_OUT = pathlib.Path("out/bench-quick")


def load_records(path: pathlib.Path) -> list[dict]:
  if not path.exists():
    return []
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(task, method, seed, lr, steps, numerics=None):
  return (task, method, seed, None if lr is None else round(lr, 12), steps, numerics)


def _record(task, method, seed, lr, steps, eval_every, run: runner.Run) -> dict:
  autolrs_run = method.startswith("autolrs")
  record = {
      "task": task, "method": method, "seed": seed, "lr": lr, "steps": steps,
      "eval_every": eval_every,
      "eval_steps": run.eval_steps.tolist(), "val_loss": run.val_loss.tolist(),
      "final_val_loss": run.final_val_loss, "test_loss": run.test_loss,
      "test_metric": TASKS[task].test_metric(run.test_loss, run.test_accuracy),
      "wall_seconds": run.wall_seconds,
      "numerics": host.numerics(),
      "probe_fraction": float(np.mean(run.phase == 1)) if autolrs_run else None,
      "bo_stages": run.bo_stages,
      "final_train_loss": lrbench_metrics.final_train_loss(run.train_loss, eval_every),
  }
  if run.test_logits is not None:
    record["classification"] = lrbench_metrics.classification_metrics(
        run.test_logits, TASKS[task].load().y_test)
  if not np.all(np.isnan(run.learning_rate)):  # A controller (AutoLRS, ExpTest) set the LR.
    record["learning_rate"] = run.learning_rate.tolist()
  if autolrs_run:
    record["phase"] = run.phase.tolist()
  return record


def plan(task_name: str, methods: list[str], seeds: int, quick: bool):
  """The runs to do: grids first, since derived methods take the grid's best LR."""
  todo = []
  order = sorted(methods, key=lambda m: METHODS[m].kind != GRID)
  for name in order:
    method = METHODS[name]
    for seed in range(seeds):
      if method.kind == GRID:
        todo += [(name, seed, lr) for lr in task_grid(TASKS[task_name], quick)]
      else:
        todo.append((name, seed, None))
  return todo


def run_benchmark(args, out: pathlib.Path) -> None:
  out.mkdir(parents=True, exist_ok=True)
  runs_path = out / "runs.jsonl"
  records = load_records(runs_path)
  methods = args.methods.split(",") if args.methods else list(METHODS)
  seeds = args.seeds or (1 if args.quick else 3)
  for name in methods:
    if name not in METHODS:
      sys.exit(f"unknown method {name!r}; known: {', '.join(METHODS)}")
  for task_name in args.task or list(TASKS):
    task = TASKS[task_name]
    budget = task.quick if args.quick else task.full
    if args.budget_scale != 1.0:  # The same run over more (or fewer) update calls.
      budget = budget._replace(steps=round(args.budget_scale * budget.steps),
                               eval_every=round(args.budget_scale * budget.eval_every))
    # With --same-numerics a run recorded on another machine's numerics (or
    # before they were recorded) is done again here, so that a variant and its
    # full method pair on one machine (report.paired).
    here = host.numerics() if args.same_numerics else None
    done = {_key(r["task"], r["method"], r["seed"], r["lr"], r["steps"],
                 r.get("numerics") if here else None) for r in records}
    for name, seed, lr in plan(task_name, methods, seeds, args.quick):
      method = METHODS[name]
      if method.kind == DERIVED:
        grid = [r for r in records if r["task"] == task_name and r["method"] == "constant"
                and r["steps"] == budget.steps]
        if not grid:
          sys.exit(f"{name} needs the 'constant' grid of {task_name} first.")
        lr = report.best_grid_lr(grid)
      if _key(task_name, name, seed, lr, budget.steps, here) in done:
        continue
      run = runner.train(task, method, seed, budget.steps, budget.eval_every, lr=lr,
                         keep_logits=task.classification)
      record = _record(task_name, name, seed, lr, budget.steps, budget.eval_every, run)
      records.append(record)
      with runs_path.open("a") as f:
        f.write(json.dumps(record) + "\n")
      if run.val_logits is not None:
        _save_logits(out, record, run)
      lr_text = "" if lr is None else f" lr={lr:.3g}"
      print(f"{task_name:8s} {name:20s} seed={seed}{lr_text}: val {run.final_val_loss:.4f} "
            f"test {record['test_metric']:.4f} ({run.wall_seconds:.1f} s)", flush=True)
  report.write_report(records, out, host.machine())
  print((out / "table.md").read_text())


def _save_logits(out: pathlib.Path, record: dict, run: runner.Run) -> None:
  """Keeps the final model's logits: the pool that ensembles are selected from."""
  path = report.pool_path(out, record)
  path.parent.mkdir(exist_ok=True)
  np.savez_compressed(path, val=run.val_logits.astype(np.float16),
                      test=run.test_logits.astype(np.float16))


def _retrain(record: dict, what: str) -> tuple[runner.Run, bool]:
  """A recorded run trained again, and whether it reproduced its record.

  A run is deterministic on one machine: its final validation loss is
  checked against the record, and the check is printed.
  """
  run = runner.train(TASKS[record["task"]], METHODS[record["method"]], record["seed"],
                     record["steps"], record["eval_every"], lr=record["lr"], keep_logits=True)
  same = bool(np.isclose(run.final_val_loss, record["final_val_loss"], rtol=1e-4,
                         equal_nan=True))
  check = "as recorded" if same else f"recorded {record['final_val_loss']:.4f}"
  print(f"{record['task']:8s} {record['method']:20s} seed={record['seed']}: {what}, val "
        f"{run.final_val_loss:.4f} ({check})", flush=True)
  return run, same


def refill_pool(task_name: str, seeds: int, quick: bool, out: pathlib.Path) -> None:
  """Retrains the recorded runs of ``task_name`` whose logits are not in the pool.

  The pool is not committed (``.gitignore``): a fresh clone has the records
  but not the models.
  """
  budget = TASKS[task_name].quick if quick else TASKS[task_name].full
  for record in load_records(out / "runs.jsonl"):
    if (record["task"] != task_name or record["seed"] >= seeds or ":" in record["method"]
        or record["steps"] != budget.steps or report.pool_path(out, record).exists()):
      continue
    run, _ = _retrain(record, "pool refilled")
    _save_logits(out, record, run)


def backfill(task_name: str, out: pathlib.Path) -> None:
  """Completes the records of ``task_name`` made before the LRBench metrics were
  recorded, by retraining each run; a run that does not reproduce its record
  keeps the record as it was."""
  path = out / "runs.jsonl"
  records = load_records(path)
  for i, record in enumerate(records):
    if record["task"] != task_name or "final_train_loss" in record:
      continue
    run, same = _retrain(record, "metrics backfilled")
    if same:
      fresh = _record(task_name, record["method"], record["seed"], record["lr"],
                      record["steps"], record["eval_every"], run)
      records[i] = record | {k: fresh[k] for k in ("final_train_loss", "classification")
                             if k in fresh}
      if run.val_logits is not None and ":" not in record["method"]:
        _save_logits(out, record, run)
    # After each run, whole or not at all (a replace is atomic): resumable.
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(partial, path)


def _script(name: str):
  """The ``main(argv)`` of a stand-alone measurement (imported only when run)."""
  import importlib  # pylint: disable=g-import-not-at-top
  return importlib.import_module(f"benchmarks.{name}").main


SCRIPTS = {"step-time": "step_time", "kappa": "kappa", "readme": "render_readme",
           "probes": "probe_landscape"}


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else list(argv)
  if argv and argv[0] in SCRIPTS:
    return _script(SCRIPTS[argv[0]])(argv[1:])
  parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                   description="AutoLRS against tuned schedules and LR-free peers.")
  parser.add_argument("command", nargs="?", default="run",
                      choices=("run", "report", "overhead", "ensemble", "verify", "backfill",
                               *SCRIPTS),
                      help="step-time, kappa, probes and readme take their own options (--help)")
  parser.add_argument("--task", action="append", choices=sorted(TASKS),
                      help="task(s) to run (default: all)")
  parser.add_argument("--methods", help="comma-separated subset of: " + ", ".join(METHODS))
  parser.add_argument("--seeds", type=int, help="default 3 (1 with --quick)")
  parser.add_argument("--quick", action="store_true", help="short budgets (a smoke run)")
  parser.add_argument("--out", type=pathlib.Path, help=f"default {FULL_OUT} ({QUICK_OUT} with --quick)")
  parser.add_argument("--same-numerics", action="store_true",
                      help="run: redo the runs recorded on another machine's numerics (CPU "
                      "model, vector units, jax version; see host.numerics()): list the full method "
                      "beside a variant, so that report pairs them on one machine")
  parser.add_argument("--budget-scale", type=float, default=1.0,
                      help="run: every run over this many times the task's update calls "
                      "(evaluated as often per run); give it its own --out")
  parser.add_argument("--name", help="overhead: the results file's name (default overhead, "
                      "overhead_<platform> on an accelerator)")
  parser.add_argument("--target", type=float,
                      help="verify: the validation loss to reach (default: the best-of-grid "
                      "cosine's median final one)")
  parser.add_argument("--budget", type=int,
                      help="verify: update calls allowed (default: the task's budget)")
  args = parser.parse_args(argv)
  if args.budget_scale != 1.0 and args.out is None:
    parser.error("--budget-scale needs an --out of its own: its runs are not the task's.")
  out = args.out or (QUICK_OUT if args.quick else FULL_OUT)
  # The policies a user would keep; AutoLRS's variants measure mechanisms.
  pooled = args.methods or ",".join(m for m in METHODS if ":" not in m)
  if args.command == "run":
    run_benchmark(args, out)
  elif args.command == "report":
    records = [r for r in load_records(out / "runs.jsonl") if not args.task or r["task"] in args.task]
    report.write_report(records, out, host.machine())
    print((out / "table.md").read_text())
  elif args.command == "overhead":
    from benchmarks import overhead  # pylint: disable=g-import-not-at-top
    # Timings belong to the host they ran on: named down to its CPU model.
    overhead.main(out, args.quick, f"{host.machine()}, {host.numerics()}", args.name)
  elif args.command == "backfill":
    for task in args.task or list(TASKS):
      backfill(task, out)
    report.write_report(load_records(out / "runs.jsonl"), out, host.machine())
  elif args.command == "verify":
    from benchmarks import verify  # pylint: disable=g-import-not-at-top
    if not args.task:
      parser.error("verify needs --task")
    if args.methods:  # The named policies' missing runs first; by default what is recorded.
      run_benchmark(args, out)
    verify.main(args, out, report.latest(load_records(out / "runs.jsonl")), host.machine())
  elif args.command == "ensemble":
    from benchmarks import pool  # pylint: disable=g-import-not-at-top

    def run_missing(task, seeds):
      run_benchmark(argparse.Namespace(**{**vars(args), "task": [task], "methods": pooled}), out)
      refill_pool(task, seeds, args.quick, out)
    pool.main(args, out, run_missing)


if __name__ == "__main__":
  main()
