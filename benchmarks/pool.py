"""Ensembles from the benchmark's runs: the models LR tuning trains anyway.

    python -m benchmarks ensemble --task mnist1d [--out results/bench]

The pool of one seed is every final model the benchmark trained on a
classification task with that seed: every LR of the constant and cosine grids,
step decay, the LRBench cyclic and composite policies, AutoLRS, ExpTest and
the LR-free peers (their logits are kept in ``<out>/pool``), but not the
ablation and candidate variants of AutoLRS (``method:variant``), which measure
its mechanisms rather than train models a user would keep. Runs missing
from the records are trained first; recorded runs whose logits are not in the
pool (it is not committed) are retrained, and checked against their record. Each selector picks its ensemble on the
validation split; the table reports test accuracy against the best single
model, also picked on validation. Medians over seeds [min, max].
"""

import json
import pathlib
import statistics
import time

import numpy as np

from autolrs_jax import ensemble
from benchmarks.tasks import TASKS

MAX_TEAM = 4  # Exhaustive and focal selection over teams of up to this size.
GREEDY_SIZE = 10


def load_pool(pool_dir: pathlib.Path, task: str, seed: int):
  """``(names, val_logits (M, N, C), test_logits (M, N', C))`` of one seed's runs."""
  names, val, test = [], [], []
  for path in sorted(pool_dir.glob(f"{task}_*_{seed}.npz")):
    if ":" in path.stem:  # An ablation or candidate variant.
      continue
    with np.load(path) as f:
      if not (np.isfinite(f["val"]).all() and np.isfinite(f["test"]).all()):
        continue  # A diverged run: its logits say nothing.
      val.append(f["val"].astype(np.float32))
      test.append(f["test"].astype(np.float32))
    names.append(path.stem[len(task) + 1:-len(f"_{seed}")])
  return names, np.stack(val), np.stack(test)


def selectors():
  return {
      "greedy (Caruana)": lambda v, y: ensemble.greedy_selection(v, y, GREEDY_SIZE),
      f"exhaustive (≤{MAX_TEAM})": lambda v, y: ensemble.exhaustive_selection(v, y, MAX_TEAM),
      f"focal diversity (≤{MAX_TEAM})": lambda v, y: ensemble.focal_diversity_selection(
          v, y, max_size=MAX_TEAM),
      "all models, soft vote": None,
  }


def select_for_seed(task: str, seed: int, pool_dir: pathlib.Path) -> dict:
  data = TASKS[task].load()
  names, val, test = load_pool(pool_dir, task, seed)
  y_val, y_test = np.asarray(data.y_val), np.asarray(data.y_test)
  val_acc = (val.argmax(-1) == y_val).mean(-1)
  best = int(np.argmax(val_acc))
  single = float((test[best].argmax(-1) == y_test).mean())
  rows = {"best single (by validation)": {
      "size": 1, "members": [names[best]], "test_accuracy": single, "seconds": 0.0}}
  for label, select in selectors().items():
    start = time.perf_counter()
    if select is None:
      members = list(range(len(names)))
      accuracy = float(ensemble.accuracy(ensemble.soft_vote(test), y_test))
    else:
      chosen = select(val, y_val)
      members = list(chosen.members)
      accuracy = ensemble.evaluate_selection(chosen, test, y_test)
    rows[label] = {"size": len(members), "members": [names[i] for i in members],
                   "test_accuracy": float(accuracy), "seconds": time.perf_counter() - start}
  for row in rows.values():
    row["gain"] = row["test_accuracy"] - single
  return {"seed": seed, "pool_size": len(names), "rows": rows}


def summarize(per_seed: list[dict]) -> dict:
  labels = list(per_seed[0]["rows"])
  out = {}
  for label in labels:
    rows = [s["rows"][label] for s in per_seed]
    stat = lambda key: {"median": statistics.median(r[key] for r in rows),
                        "min": min(r[key] for r in rows), "max": max(r[key] for r in rows)}
    out[label] = {"test_accuracy": stat("test_accuracy"), "gain": stat("gain"),
                  "size": stat("size"), "members_seed0": rows[0]["members"]}
  return out


def markdown(task: str, result: dict) -> str:
  sizes = sorted({s["pool_size"] for s in result["per_seed"]})
  pool = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
  lines = [f"#### {task}: pool of {pool} models per seed (runs with non-finite logits left out), "
           f"{len(result['seeds'])} seeds",
           "", "| ensemble | size | test accuracy | gain over best single | members (seed 0) |",
           "|---|---:|---:|---:|---|"]
  fmt = lambda s, f: (f(s["median"]) if s["min"] == s["max"]
                      else f"{f(s['median'])} [{f(s['min'])}, {f(s['max'])}]")
  for label, row in result["summary"].items():
    members = ", ".join(row["members_seed0"]) if row["size"]["max"] <= 10 else "(all)"
    lines.append(f"| {label} | {fmt(row['size'], lambda v: f'{v:g}')} | "
                 f"{fmt(row['test_accuracy'], lambda v: f'{v:.4f}')} | "
                 f"{fmt(row['gain'], lambda v: f'{100 * v:+.2f} pts')} | {members} |")
  return "\n".join(lines) + "\n"


def main(args, out: pathlib.Path, run_missing) -> None:
  tasks = args.task or [t for t, task in TASKS.items() if task.classification]
  for task in tasks:
    if not TASKS[task].classification:
      raise SystemExit(f"{task} is not a classification task: no ensemble to vote.")
    pool_dir = out / "pool"
    seeds = args.seeds or (1 if args.quick else 3)
    run_missing(task, seeds)  # Runs done and recorded are skipped; their logits refilled.
    per_seed = [select_for_seed(task, s, pool_dir) for s in range(seeds)]
    result = {"task": task, "pool_size": per_seed[0]["pool_size"],
              "seeds": [s["seed"] for s in per_seed], "summary": summarize(per_seed),
              "per_seed": per_seed}
    (out / f"ensemble_{task}.json").write_text(json.dumps(result, indent=1))
    table = markdown(task, result)
    (out / f"ensemble_{task}.md").write_text(table)
    print(table)
