"""Summaries, the Markdown table and the plots, from the runs' records.

Definitions (all per task):

* A grid method's reported configuration is the LR with the lowest median
  final validation loss over seeds. Its tuning cost is every grid run.
* The target of a seed is the final validation loss of the best cosine
  configuration on that seed. A run's steps-to-target is the first evaluation
  (every ``eval_every`` update calls, probes included) at which the held
  model's validation loss is at or below the target; cosine itself reaches it
  by its last step at the latest.
* Speed-up = cosine's steps-to-target / the method's, per seed; a run that
  never reaches the target has none.
"""

import json
import math
import pathlib
import statistics
from typing import Any

import numpy as np

from benchmarks import lrbench_metrics
from benchmarks.methods import DERIVED, GRID, METHODS, REPLAY
from benchmarks.tasks import TASKS


def steps_to_target(record: dict[str, Any], target: float) -> int | None:
  for step, loss in zip(record["eval_steps"], record["val_loss"]):
    if loss <= target:
      return int(step)
  return None


def _median_range(values):
  values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
  if not values:
    return None
  return {"median": statistics.median(values), "min": min(values), "max": max(values),
          "n": len(values)}


def best_grid_lr(records: list[dict[str, Any]]) -> float:
  by_lr: dict[float, list[float]] = {}
  for r in records:
    by_lr.setdefault(r["lr"], []).append(r["final_val_loss"])
  return min(by_lr, key=lambda lr: statistics.median(
      v if math.isfinite(v) else math.inf for v in by_lr[lr]))


def pool_path(out: pathlib.Path, record: dict[str, Any]) -> pathlib.Path:
  """Where a run's final validation and test logits are kept (``<out>/pool``)."""
  lr = "none" if record["lr"] is None else f"{record['lr']:.6g}"
  return out / "pool" / f"{record['task']}_{record['method']}_{lr}_{record['seed']}.npz"


def with_pool_metrics(records: list[dict[str, Any]], out: pathlib.Path) -> list[dict[str, Any]]:
  """``records``, those of classification runs recorded before their LRBench
  metrics were, completed from their logits in the pool where it has them."""
  done = []
  for r in records:
    path = pool_path(out, r)
    if "classification" not in r and TASKS[r["task"]].classification and path.exists():
      with np.load(path) as pool:
        r = r | {"classification": lrbench_metrics.classification_metrics(
            pool["test"], TASKS[r["task"]].load().y_test)}
    done.append(r)
  return done


def lrbench_row(mine: list[dict[str, Any]]) -> dict[str, Any]:
  """LRBench's metrics of a method's runs, medians over seeds (absent: None)."""
  row = {"robustness": _median_range([
      lrbench_metrics.robustness(r["final_train_loss"], r["test_loss"]) for r in mine
      if "final_train_loss" in r])}
  for key in ("top1", "top5", "confidence_mean", "confidence_std", "cdac"):
    row[key] = _median_range([r["classification"][key] for r in mine if "classification" in r])
  return row


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
  """Per task: the reported runs of each method and their metrics."""
  out = {}
  for task_name in sorted({r["task"] for r in records}):
    task = TASKS[task_name]
    runs = [r for r in records if r["task"] == task_name]
    steps = runs[0]["steps"]
    chosen = {}
    for name, method in METHODS.items():
      mine = [r for r in runs if r["method"] == name]
      if not mine:
        continue
      if method.kind == GRID:
        lr = best_grid_lr(mine)
        chosen[name] = ([r for r in mine if r["lr"] == lr], lr)
      else:
        chosen[name] = (mine, mine[0].get("lr"))
    if "cosine" not in chosen:
      continue
    targets = {r["seed"]: r["final_val_loss"] for r in chosen["cosine"][0]}
    cosine_steps = {r["seed"]: steps_to_target(r, targets[r["seed"]]) for r in chosen["cosine"][0]}
    rows = []
    for name, (mine, lr) in chosen.items():
      method = METHODS[name]
      reached = {r["seed"]: steps_to_target(r, targets[r["seed"]]) for r in mine
                 if r["seed"] in targets}
      speedups = [cosine_steps[s] / n for s, n in reached.items() if n and cosine_steps.get(s)]
      versus_cosine = [r["final_val_loss"] / targets[r["seed"]] for r in mine
                       if r["seed"] in targets]
      # Runs a user pays for before this one: its own grid, or the constant
      # grid whose best LR it takes.
      grid_of = {GRID: name, DERIVED: "constant"}.get(method.kind)
      tuning_runs = len({r["lr"] for r in runs if r["method"] == grid_of})
      rows.append({
          "method": name,
          "kind": method.kind,
          "description": method.description,
          "lr": lr,
          "seeds": sorted(r["seed"] for r in mine),
          "final_val_loss": _median_range([r["final_val_loss"] for r in mine]),
          "per_seed": {str(r["seed"]): r["final_val_loss"] for r in mine},
          "test_metric": _median_range([r["test_metric"] for r in mine]),
          "steps_to_target": _median_range(list(reached.values())),
          "reached_target": sum(n is not None for n in reached.values()),
          "speedup": _median_range(speedups),
          "wall_seconds": _median_range([r["wall_seconds"] for r in mine]),
          "probe_fraction": _median_range([r.get("probe_fraction") for r in mine]),
          # AutoLRS: the LR each stage's exploitation held, per seed.
          "held_lrs": {str(r["seed"]): [s["exploited_lr"] for s in r["bo_stages"]]
                       for r in mine if r.get("bo_stages")},
          # Update calls spent before this method's run can start (a grid of
          # the same budget), on top of its own.
          "tuning_steps": tuning_runs * steps,
          # Runs of the budget it takes to get this result: a grid method's
          # grid (its reported run is one of them), a derived method's grid
          # and its own run, a replay the run it replays and its own, one
          # run for the rest.
          "compute_runs": {GRID: tuning_runs, DERIVED: tuning_runs + 1,
                           REPLAY: 2}.get(method.kind, 1),
          # Its final validation loss over the cosine's on the same seed: the
          # worst seed shows a collapse that medians hide.
          "versus_cosine": _median_range(versus_cosine),
          "lrbench": lrbench_row(mine),
      })
    out[task_name] = {
        "description": task.description,
        "grid": sorted({r["lr"] for r in runs if r["method"] == "cosine"}),
        "metric": task.metric_name,
        "split": task.split,
        "steps": steps,
        "eval_every": runs[0]["eval_every"],
        "optimizer": task.optimizer,
        "targets": targets,
        "rows": rows,
    }
  return out


def _fmt(stat, digits=3, pct=False, suffix=""):
  if stat is None:
    return "—"
  f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.{digits}g}")
  if stat["n"] == 1 or stat["min"] == stat["max"]:
    return f(stat["median"]) + suffix
  return f"{f(stat['median'])}{suffix} [{f(stat['min'])}, {f(stat['max'])}]"


def is_ablation(name: str) -> bool:
  """Ablation variants are named ``<method>:<what is switched off>``."""
  return ":" in name


def markdown(summary: dict[str, Any], machine: str) -> str:
  lines = ["#### Does AutoLRS's choice hold? Tuning and test tasks", "", CHOICE_LEGEND, ""]
  lines += choice_markdown(summary) + [""]
  for task_name, t in summary.items():
    grid = ", ".join(f"{lr:.3g}" for lr in t["grid"])
    lines += [
        f"#### {task_name} ({t.get('split', 'tuning')} task): {t['description']}",
        "",
        f"{t['steps']} update calls per run (AutoLRS's probe steps included), validation "
        f"every {t['eval_every']}; tuned schedules on {t['optimizer']}, grid of "
        f"{len(t['grid'])} LRs ({grid}); medians over seeds [min, max]; {machine}.",
        "",
        f"| method | LR | speed-up vs cosine | steps to target | final val loss | "
        f"÷ cosine's (per seed) | {t['metric']} | wall s | probing | compute (runs) | seeds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [r for r in t["rows"] if not is_ablation(r["method"])]
    for r in sorted(rows, key=lambda r: (r["final_val_loss"] or {}).get("median", math.inf)):
      lr = "—" if r["lr"] is None else f"{r['lr']:.3g}"
      reached = f"{_fmt(r['steps_to_target'], 4)} ({r['reached_target']}/{len(r['seeds'])})"
      lines.append(
          f"| {r['method']} | {lr} | {_fmt(r['speedup'], suffix='×')} | {reached} | "
          f"{_fmt(r['final_val_loss'], 4)} | {_fmt(r['versus_cosine'], 3)} | "
          f"{_fmt(r['test_metric'], 4)} | "
          f"{_fmt(r['wall_seconds'], 3)} | {_fmt(r['probe_fraction'], pct=True)} | "
          f"{r['compute_runs']} | {len(r['seeds'])} |")
    lines += [""] + lrbench_markdown(t) + [""] + ablation_markdown(t)
  return "\n".join(lines)


def lrbench_markdown(t: dict[str, Any]) -> list[str]:
  """LRBench's metrics of each method's runs (:mod:`benchmarks.lrbench_metrics`)."""
  rows = [r for r in t["rows"] if not is_ablation(r["method"]) and "lrbench" in r]
  if not rows:
    return []
  classification = t["metric"] == "test accuracy"
  utility = "top-1 | top-5 | confidence | CDAC" if classification else t["metric"]
  lines = [f"LRBench's metrics (medians over seeds; robustness: final training loss − test loss, "
           f"'—' for runs recorded before it was): utility, robustness, "
           f"{'confidence, ' if classification else ''}cost.", "",
           f"| method | {utility} | robustness | update calls | wall s | compute (runs) |",
           "|---|" + "---:|" * (4 if classification else 1) + "---:|---:|---:|---:|"]
  for r in sorted(rows, key=lambda r: (r["final_val_loss"] or {}).get("median", math.inf)):
    m = r["lrbench"]
    if classification:
      conf = (f"{m['confidence_mean']['median']:.3f} ± {m['confidence_std']['median']:.3f}"
              if m["confidence_mean"] else "—")
      cells = f"{_fmt(m['top1'], 4)} | {_fmt(m['top5'], 4)} | {conf} | {_fmt(m['cdac'], 3)}"
    else:
      cells = _fmt(r["test_metric"], 4)
    lines.append(f"| {r['method']} | {cells} | {_fmt(m['robustness'], 3)} | {t['steps']} | "
                 f"{_fmt(r['wall_seconds'], 3)} | {r['compute_runs']} |")
  return lines


def ablation_markdown(t: dict[str, Any]) -> list[str]:
  """Each ablation variant against its full method on the same seeds."""
  variants = [r for r in t["rows"] if is_ablation(r["method"])]
  if not variants:
    return []
  lines = ["| ablation or candidate | change | final val loss | ÷ full method's (per seed) | "
           "÷ cosine's | probing |", "|---|---|---:|---:|---:|---:|"]
  by_name = {r["method"]: r for r in t["rows"]}
  full_rows = {}
  for r in variants:
    full = by_name.get(r["method"].split(":")[0])
    full_rows.setdefault(full["method"] if full else None, full)
  for name, full in full_rows.items():
    if full is not None and "0" in full["per_seed"]:
      per_seed = " ".join(f"{full['per_seed'][k]:.4g}" for k in sorted(full["per_seed"]))
      lines.append(f"| {name} (full) | — | {per_seed} | 1 | — | — |")
  for r in variants:
    full = by_name.get(r["method"].split(":")[0])
    ratio = "—"
    if r["method"] in t.get("paired", {}):  # Paired on the same numerics.
      ratio = " ".join(f"{v:.3g}" for _, v in sorted(t["paired"][r["method"]].items(),
                                                      key=lambda sv: int(sv[0])))
    elif full is not None and full.get("per_seed"):
      pairs = [(v, full["per_seed"][s]) for s, v in r["per_seed"].items() if s in full["per_seed"]]
      ratio = " ".join(f"{v / f:.3g}" for v, f in pairs) or "—"
    what = r["description"].removeprefix("ablation: ").removeprefix("candidate: ")
    lines.append(f"| {r['method']} | {what} | "
                 f"{_fmt(r['final_val_loss'], 4)} | {ratio} | {_fmt(r['versus_cosine'], 3)} | "
                 f"{_fmt(r['probe_fraction'], pct=True)} |")
  return lines + [""]


# The LR-free peers AutoLRS must end at or below on every test task (issue 26).
LR_FREE_PEERS = ("prodigy-cosine", "dadapt-adamw-cosine", "schedule-free-adamw")
PAPER_MODES = ("autolrs-sgd", "autolrs-adam")
CHOICE_LEGEND = (
    "Medians over seeds of the final validation loss. ✓/✗: at or below the cosine and the "
    "LR-free peers, within 2% with the range 10× wider on each side, the paper mode's worst seed "
    "within 2× of the cosine's on that seed. Same LRs: the seeds on which the wide range's "
    "run held the default range's LRs in every stage (its calls then differ only by the "
    "extra rungs it probed).")


def _median(row: dict[str, Any] | None) -> float | None:
  return None if row is None else row["final_val_loss"]["median"]


def _ratio(row: dict[str, Any] | None, other: dict[str, Any] | None) -> float | None:
  """``row``'s median final validation loss over ``other``'s (None without both)."""
  if _median(row) is None or _median(other) in (None, 0.0):
    return None
  return _median(row) / _median(other)


def same_held_lrs(row: dict[str, Any] | None,
                  other: dict[str, Any] | None) -> tuple[int, int] | None:
  """``(same, seeds)``: on how many of the seeds both ran ``row`` held the same
  LR as ``other`` in every stage (to float32 rounding); None without both."""
  if row is None or other is None or not row.get("held_lrs") or not other.get("held_lrs"):
    return None
  seeds = sorted(set(row["held_lrs"]) & set(other["held_lrs"]))
  same = sum(len(row["held_lrs"][s]) == len(other["held_lrs"][s]) and all(
      abs(a - b) <= 1e-6 * abs(b) for a, b in zip(row["held_lrs"][s], other["held_lrs"][s]))
             for s in seeds)
  return same, len(seeds)


def choice_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
  """Per task, whether AutoLRS's choice holds: its median final validation loss
  over the best-of-grid cosine's, over each LR-free peer's (and the cosine's
  over each peer's), with the range 10x wider on each side over the default
  range's, the paper mode's worst seed over the cosine's on that seed, and the
  budget's largest probe fraction."""
  out = []
  for name, t in summary.items():
    rows = {r["method"]: r for r in t["rows"]}
    budget, cosine = rows.get("autolrs-budget"), rows.get("cosine")
    if budget is None or cosine is None:
      continue
    out.append({
        "task": name,
        "split": t.get("split", "tuning"),
        "budget": _median(budget),
        "cosine": _median(cosine),
        "versus_cosine": _ratio(budget, cosine),
        "versus_peers": {p: _ratio(budget, rows.get(p)) for p in LR_FREE_PEERS},
        # The tuned schedule's own standing: above 1, the peer ends below the
        # best the grid's cosine reaches with the task's optimizer.
        "cosine_versus_peers": {p: _ratio(cosine, rows.get(p)) for p in LR_FREE_PEERS},
        "wide_versus_default": _ratio(rows.get("autolrs-budget-wide"), budget),
        "wide_same_lrs": same_held_lrs(rows.get("autolrs-budget-wide"), budget),
        "paper_worst_versus_cosine": {
            m: rows[m]["versus_cosine"]["max"] if m in rows and rows[m]["versus_cosine"] else None
            for m in PAPER_MODES},
        "probe_fraction_max": (budget["probe_fraction"] or {}).get("max"),
    })
  return out


def choice_markdown(summary: dict[str, Any]) -> list[str]:
  """The table of :func:`choice_rows`."""
  def cell(v, ok=None):
    if v is None:
      return "—"
    return f"{v:.3f}" + ("" if ok is None else (" ✓" if ok else " ✗"))
  lines = [
      "| task | split | AutoLRS budget | best-of-grid cosine | ÷ cosine | ÷ prodigy-cosine | "
      "÷ dadapt-cosine | ÷ schedule-free | wide range ÷ default | paper sgd, worst seed "
      "÷ cosine | paper adam, worst seed ÷ cosine | probes (max) |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in choice_rows(summary):
    peers = [cell(r["versus_peers"][p], None if r["versus_peers"][p] is None
                  else r["versus_peers"][p] <= 1.0) for p in LR_FREE_PEERS]
    wide = r["wide_versus_default"]
    same = r.get("wide_same_lrs")
    held = "" if same is None else f" (same LRs {same[0]}/{same[1]})"
    paper = [cell(r["paper_worst_versus_cosine"][m],
                  None if r["paper_worst_versus_cosine"][m] is None
                  else r["paper_worst_versus_cosine"][m] <= 2.0) for m in PAPER_MODES]
    probes = "—" if r["probe_fraction_max"] is None else f"{100 * r['probe_fraction_max']:.1f}%"
    lines.append(
        f"| {r['task']} | {r['split']} | {r['budget']:.4g} | {r['cosine']:.4g} | "
        f"{cell(r['versus_cosine'], r['versus_cosine'] <= 1.0)} | " + " | ".join(peers) + " | "
        f"{cell(wide, None if wide is None else abs(wide - 1.0) <= 0.02)}{held} | "
        + " | ".join(paper) + f" | {probes} |")
  return lines


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_validation_curves(records, summary, out: pathlib.Path) -> list[pathlib.Path]:
  """Validation loss vs update calls of every method (reported config, first seed)."""
  plt = _pyplot()
  paths = []
  for task_name, t in summary.items():
    fig, ax = plt.subplots(figsize=(9, 5))
    for row in t["rows"]:
      if is_ablation(row["method"]):
        continue
      seed = row["seeds"][0]
      run = next(r for r in records if r["task"] == task_name and r["method"] == row["method"]
                 and r["seed"] == seed and r.get("lr") == row["lr"])
      style = dict(lw=2.2) if row["kind"] == "auto" else dict(lw=1, alpha=0.8)
      ax.plot(run["eval_steps"], run["val_loss"], label=row["method"], **style)
    ax.axhline(t["targets"][min(t["targets"])], color="k", ls=":", lw=1, label="target (seed 0)")
    ax.set_yscale("log")
    ax.set_xlabel("update calls (AutoLRS probes included)")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{task_name}: validation loss of the held model")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = out / f"{task_name}_val_loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
  return paths


def plot_autolrs_lr(records, out: pathlib.Path) -> list[pathlib.Path]:
  """The controllers' LR of every step (first seed): AutoLRS's probes and
  exploitation coloured apart, ExpTest's one line."""
  plt = _pyplot()
  paths = []
  for task_name in sorted({r["task"] for r in records}):
    runs = [r for r in records if r["task"] == task_name and "learning_rate" in r
            and r["seed"] == 0 and not is_ablation(r["method"])]
    if not runs:
      continue
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 2.6 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
      lr = np.asarray(run["learning_rate"])
      steps = np.arange(len(lr))
      if run["method"].startswith("autolrs"):
        for value, name, color in ((1, "probe", "tab:orange"), (2, "exploit", "tab:blue")):
          on = np.asarray(run["phase"]) == value
          ax.scatter(steps[on], lr[on], s=2, color=color, label=name)
      else:
        ax.plot(steps, lr, color="tab:purple", label="learning rate")
      ax.set_yscale("log")
      ax.set_ylabel("learning rate")
      ax.set_title(f"{task_name}: {run['method']} (seed 0)")
      ax.legend(loc="upper right", markerscale=5, fontsize=8)
    axes[-1, 0].set_xlabel("update calls")
    fig.tight_layout()
    path = out / f"{task_name}_autolrs_lr.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
  return paths


def plot_gp_posterior(record: dict[str, Any], stage: int, out: pathlib.Path) -> pathlib.Path:
  """The GP posterior over log LR that BO had after a stage's probes."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from autolrs_jax import bo  # pylint: disable=g-import-not-at-top
  from benchmarks.tasks import LR_RANGES  # pylint: disable=g-import-not-at-top

  plt = _pyplot()
  data = next(s for s in record["bo_stages"] if s["stage"] == stage)
  lo, hi = LR_RANGES[record["method"].split("-")[1]]
  lrs = np.asarray(data["learning_rates"], np.float32)
  y = np.asarray(data["forecasts"], np.float32)
  x = (np.log(lrs) - math.log(lo)) / (math.log(hi) - math.log(lo))
  mask = jnp.ones(len(x), bool)
  z, _, _ = bo.standardize(bo.warp(jnp.asarray(y), mask), mask)
  hp = bo.fit_hyperparameters(jnp.asarray(x), z, mask)
  grid = bo.search_grid(256)
  mean, std = (np.asarray(a) for a in bo.posterior(hp, jnp.asarray(x), z, mask, grid))
  grid_lr = lo * (hi / lo) ** np.asarray(grid)
  fig, ax = plt.subplots(figsize=(7, 4))
  ax.fill_between(grid_lr, mean - 2 * std, mean + 2 * std, alpha=0.25, label="mean ± 2 sd")
  ax.plot(grid_lr, mean, label="GP mean")
  diverged = np.asarray(data["diverged"])
  ax.scatter(lrs[~diverged], np.asarray(z)[~diverged], color="k", zorder=3,
             label="probes (forecast)")
  if diverged.any():
    ax.scatter(lrs[diverged], np.asarray(z)[diverged], color="r", marker="x", zorder=3,
               label="diverged probes")
  for i, (a, b) in enumerate(zip(lrs, np.asarray(z))):
    ax.annotate(str(i + 1), (a, b), textcoords="offset points", xytext=(3, 3), fontsize=7)
  ax.axvline(data["exploited_lr"], color="tab:green", ls="--", label="LR exploited")
  ax.set_xscale("log")
  ax.set_xlabel("learning rate")
  ax.set_ylabel("forecast loss (log-warped, standardised)")
  ax.set_title(f"{record['task']}: {record['method']}, stage {stage} (seed {record['seed']}); "
               "numbers = probe order", fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  path = out / f"{record['task']}_gp_stage{stage}.png"
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def latest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """The last record of each run (task, method, seed, LR, budget), in their
  order: a run redone on other numerics (``--same-numerics``) replaces its
  older record in the summaries."""
  last = {(r["task"], r["method"], r["seed"], r["lr"], r["steps"]): i
          for i, r in enumerate(records)}
  return [records[i] for i in sorted(last.values())]


def paired(records: list[dict[str, Any]], base: str = "autolrs-budget") -> list[dict[str, Any]]:
  """Each variant of ``base`` (``base:name``) against it, seed by seed, per task.

  A variant changes one mechanism; on the same seed both runs share the data,
  the initialisation and the minibatch keys, so the ratio of their final
  validation losses is the mechanism's effect plus the noise of a shifted
  trajectory. Its geometric mean and worst seed say more than a median of 3.
  Runs pair only where recorded on the same numerics (``numerics``: the CPU
  or device and the jax version): elsewhere a run that makes the same
  decisions rounds otherwise and ends elsewhere. ``unpaired``: the variant's
  seeds with no run of ``base`` on its numerics.
  """
  # The last record of each run on each numerics, in the file's order.
  finals = {(r["task"], r["method"], r["seed"], r.get("numerics")): r["final_val_loss"]
            for r in records}
  rows = []
  for task, method in sorted({(t, m) for t, m, _, _ in finals if m.startswith(base + ":")}):
    mine = [(s, n) for t, m, s, n in finals if (t, m) == (task, method)]
    # A seed paired on several numerics: its latest variant run's.
    pairs = {s: n for s, n in mine if (task, base, s, n) in finals}
    if not pairs:
      continue
    seeds = sorted(pairs)
    variant = np.array([finals[task, method, s, pairs[s]] for s in seeds])
    full = np.array([finals[task, base, s, pairs[s]] for s in seeds])
    ratios = variant / full
    rows.append({
        "task": task, "method": method, "seeds": len(seeds),
        "unpaired": len({s for s, _ in mine} - set(seeds)),
        "median": float(np.median(variant)), "base_median": float(np.median(full)),
        "ratio_geometric_mean": float(np.exp(np.mean(np.log(ratios)))),
        "ratio_median": float(np.median(ratios)),
        "ratio_best": float(ratios.min()), "ratio_worst": float(ratios.max()),
        "per_seed_ratio": {str(s): float(x) for s, x in zip(seeds, ratios)},
    })
  return rows


def paired_markdown(rows: list[dict[str, Any]]) -> list[str]:
  lines = ["| task | variant | what it changes | seeds | median final val loss (full method's) "
           "| ÷ full method: geometric mean | median | best seed | worst seed |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|"]
  for r in rows:
    what = METHODS[r["method"]].description if r["method"] in METHODS else "—"
    seeds = f"{r['seeds']}" + (f" ({r['unpaired']} unpaired)" if r.get("unpaired") else "")
    variant = r["method"].removeprefix("autolrs-budget:")  # A wide candidate keeps its row's name.
    lines.append(f"| {r['task']} | {variant} | {what} | {seeds} | "
                 f"{r['median']:.4g} ({r['base_median']:.4g}) | {r['ratio_geometric_mean']:.3f} | "
                 f"{r['ratio_median']:.3f} | {r['ratio_best']:.3f} | {r['ratio_worst']:.3f} |")
  return lines


def write_report(records: list[dict[str, Any]], out: pathlib.Path, machine: str) -> dict:
  # The candidates with the range widened pair with the wide row, not the default's.
  pairs = paired(records) + paired(records, base="autolrs-budget-wide")
  records = latest(records)
  summary = summarize(with_pool_metrics(records, out))
  for row in pairs:  # The ablation tables' per-seed ratios, paired on the same numerics.
    if row["task"] in summary:  # A task without a grid has no summary.
      summary[row["task"]].setdefault("paired", {})[row["method"]] = row["per_seed_ratio"]
  out.mkdir(parents=True, exist_ok=True)
  (out / "results.json").write_text(json.dumps({"machine": machine, "tasks": summary}, indent=1))
  (out / "table.md").write_text(markdown(summary, machine))
  if pairs:
    (out / "paired.json").write_text(json.dumps({"machine": machine, "rows": pairs}, indent=1))
  plot_validation_curves(records, summary, out)
  plot_autolrs_lr(records, out)
  for r in records:
    if r["method"] == "autolrs-sgd" and r["seed"] == 0 and len(r["bo_stages"]) > 1:
      plot_gp_posterior(r, 1, out)
  return summary
