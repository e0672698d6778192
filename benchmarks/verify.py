"""LRBench's verification: which LR policies reach a target within a budget, and at what cost.

    python -m benchmarks verify --task T [--target LOSS] [--budget CALLS] [--out results/bench]

Answers from ``<out>/runs.jsonl`` (with ``--methods``, their missing runs are
run first; by default the task's recorded policies are verified): for each policy, on how many seeds its
validation loss reaches ``target`` by update call ``budget``, at which call
(median over seeds), and at what cost. The cost counts what a user pays to
get that run: a grid method's other runs of the whole budget (its best LR is
known only once they are done), then the reported run up to the target.
The recommendation is the cheapest policy that reaches the target on every
seed. The target defaults to the best-of-grid cosine's median final
validation loss; the budget to the task's.
"""

import json
import pathlib
import statistics
from typing import Any

from benchmarks import report


def reach_call(record: dict[str, Any], target: float, budget: int) -> int | None:
  """The first evaluated update call at or below ``target``, if within ``budget``."""
  call = report.steps_to_target(record, target)
  return call if call is not None and call <= budget else None


def verify(summary_task: dict[str, Any], records: list[dict[str, Any]], target: float,
           budget: int) -> dict[str, Any]:
  """Each reported method's verification and the recommendation.

  Args:
    summary_task: the task's entry of :func:`benchmarks.report.summarize`
      (which run of a grid is reported, and its cost in runs).
    records: the task's runs.
    target: the validation loss to reach.
    budget: the update calls allowed.
  """
  rows = []
  for row in summary_task["rows"]:
    if report.is_ablation(row["method"]):
      continue
    mine = [r for r in records if r["method"] == row["method"] and r["lr"] == row["lr"]
            and r["seed"] in row["seeds"]]
    calls = [reach_call(r, target, budget) for r in mine]
    reached = [c for c in calls if c is not None]
    before = (row["compute_runs"] - 1) * summary_task["steps"]  # The grid's other runs.
    rows.append({
        "method": row["method"], "lr": row["lr"], "seeds": len(calls),
        "reached": len(reached),
        "reach_call": statistics.median(reached) if reached else None,
        "runs": row["compute_runs"],
        "cost_calls": before + statistics.median(reached) if len(reached) == len(calls) else None,
    })
  verified = [r for r in rows if r["cost_calls"] is not None]
  best = min(verified, key=lambda r: (r["cost_calls"], r["runs"]), default=None)
  rows.sort(key=lambda r: (r["cost_calls"] is None, r["cost_calls"] or 0, -r["reached"]))
  return {"target": target, "budget": budget, "rows": rows,
          "recommended": None if best is None else best["method"]}


def markdown(task: str, result: dict[str, Any]) -> str:
  lines = [f"#### {task}: validation loss ≤ {result['target']:.4g} within "
           f"{result['budget']} update calls", "",
           "| policy | LR | seeds reaching it | at call (median) | runs | cost (update calls) |",
           "|---|---:|---:|---:|---:|---:|"]
  for r in result["rows"]:
    lr = "—" if r["lr"] is None else f"{r['lr']:.3g}"
    call = "—" if r["reach_call"] is None else f"{r['reach_call']:g}"
    cost = "—" if r["cost_calls"] is None else f"{r['cost_calls']:g}"
    mark = " **(recommended)**" if r["method"] == result["recommended"] else ""
    lines.append(f"| {r['method']}{mark} | {lr} | {r['reached']}/{r['seeds']} | {call} | "
                 f"{r['runs']} | {cost} |")
  if result["recommended"] is None:
    lines += ["", "No policy reaches the target on every seed within the budget."]
  return "\n".join(lines) + "\n"


def main(args, out: pathlib.Path, records: list[dict[str, Any]], machine: str) -> None:
  for task in args.task:
    mine = [r for r in records if r["task"] == task]
    summary = report.summarize(mine)[task]
    target = args.target if args.target is not None else statistics.median(
        summary["targets"].values())
    budget = args.budget or summary["steps"]
    result = verify(summary, mine, target, budget) | {"task": task, "machine": machine}
    (out / f"verify_{task}.json").write_text(json.dumps(result, indent=1))
    table = markdown(task, result)
    (out / f"verify_{task}.md").write_text(table)
    print(table)
