"""Renders the measurements from the results files: docs/benchmarks.md and the README's headline.

    python -m benchmarks readme [--results results] [--readme README.md] [--docs docs/benchmarks.md]

``docs/benchmarks.md`` is generated whole: every table, plot and measurement.
The README gets only a headline table of the benchmark, between its markers.
Every number comes from a JSON file written by a command of this repository,
named next to its numbers.
"""

import argparse
import json
import math
import pathlib
import statistics

BEGIN, END = "<!-- headline:begin -->", "<!-- headline:end -->"
REPLAY_BEGIN, REPLAY_END = "<!-- replay:begin -->", "<!-- replay:end -->"
OVERHEAD_BEGIN, OVERHEAD_END = "<!-- overhead:begin -->", "<!-- overhead:end -->"
EXAMPLE_BEGIN, EXAMPLE_END = "<!-- example:begin -->", "<!-- example:end -->"
ENSEMBLE_BEGIN, ENSEMBLE_END = "<!-- ensemble:begin -->", "<!-- ensemble:end -->"
# The benchmark rows of the README's headline: AutoLRS, its companion, the
# tuned schedule it must beat and the LR-free peers.
HEADLINE_METHODS = ("autolrs-budget", "autolrs-budget-wide", "cosine", "wsd", "autolrs-sgd",
                    "autolrs-adam", "exptest", "prodigy", "prodigy-cosine",
                    "schedule-free-adamw", "dadapt-adamw", "dadapt-adamw-cosine")


def example_lines(r, image: str) -> list[str]:
  """``python -m examples.train_mnist1d``: its runs side by side, and its plot."""
  auto = r["runs"]["AutoLRS (total_steps)"]
  lines = [f"MNIST-1D, SGD-momentum, {r['steps']} update calls, seed {r['seed']}:", "",
           "| schedule | final validation loss | test accuracy |", "|---|---:|---:|"]
  for name, run in r["runs"].items():
    lines.append(f"| {name} | {run['final_val_loss']:.4f} | {run['test_accuracy']:.4f} |")
  lines += ["", f"AutoLRS probed {len(auto['probed_lrs'])} LRs in {auto['probe_steps']} calls "
            f"({100 * auto['probe_steps'] / r['steps']:.0f}% of the budget) and held "
            f"{auto['held_lr']:.3g}. This seed is one of three in the benchmark's table below, "
            "where the medians are compared.", "", f"![The three schedules on MNIST-1D]({image})"]
  return lines


def mnist1d_section(r):
  return (["### The main example (`python -m examples.train_mnist1d --out results`)", ""]
          + example_lines(r, "../results/mnist1d.png"))


def exptest_section(r):
  search = [t for t in r["trajectory"] if t["phase"] == "search"]
  tune = [t for t in r["trajectory"] if t["phase"] == "tune"]
  lrs = " → ".join(f"{t['lr']:.3g}" for t in tune)
  state = r["final_state"]
  return [
      "### ExpTest-style control (`python -m examples.exptest_mnist1d --out results`)",
      "",
      f"MNIST-1D CNN, `exptest(optax.sgd(1.0, momentum=0.9))` with no initial LR: test accuracy "
      f"**{r['test_accuracy']:.4f}** after {r['steps']} update calls ({r['wall_seconds']:.0f} s). "
      f"The search grew the LR from {search[0]['lr']:.3g} to {search[-1]['lr']:.3g} over "
      f"{sum(t['steps'] for t in search)} steps; tuning then ran at {lrs} "
      f"({state['num_decreases']} plateau decreases, {state['num_cuts']} divergence cuts).",
  ]


def replay_section(r):
  """``python -m examples.search_then_replay``: search, export, replay, against a cosine."""
  s, p, c = r["search"], r["replay"], r["cosine"]
  lines = [
      "| run | seed | update calls | final val loss | test accuracy |",
      "|---|---:|---:|---:|---:|",
      f"| AutoLRS with `total_steps` (the search; {s['probe_steps']} probe calls) | "
      f"{r['search_seed']} | {s['steps']} | {s['final_val_loss']:.4f} | "
      f"{s['test_accuracy']:.4f} |",
      f"| its exported schedule replayed, plain SGD-momentum | {r['replay_seed']} | "
      f"{p['steps']} | {p['final_val_loss']:.4f} | {p['test_accuracy']:.4f} |",
      f"| best-of-grid cosine (peak {c['lr']:.3g}; {c['grid_runs']} runs) | {r['replay_seed']} | "
      f"{c['steps']} | {c['final_val_loss']:.4f} | {c['test_accuracy']:.4f} |",
      "",
  ]
  reach = p["steps_to_search_loss"]
  lines.append(
      f"The replay reaches the search run's final validation loss after {reach} update calls "
      f"(validation every {p['eval_steps'][0]})." if reach is not None else
      "The replay does not reach the search run's final validation loss "
      f"({p['final_val_loss']:.4f} against {s['final_val_loss']:.4f}).")
  return lines


def search_replay_section(r):
  return (["### Search once, replay (`python -m examples.search_then_replay --out results`)", "",
           f"{r['task']}. Exported segments: " + ", ".join(
               f"{g['steps']} calls {g['start_lr']:.3g}" + (
                   "" if g["start_lr"] == g["end_lr"] else f"→{g['end_lr']:.3g}")
               for g in r["segments"]) + ".", ""]
          + replay_section(r) + ["", "![the exported schedule](../results/search_then_replay.png)"])


def step_time_section(r):
  rows = [("`sgd` (bare)", "base"), ("`autolrs(sgd)`, paper mode", "autolrs")]
  if "autolrs_budget" in r:
    rows.append(("`autolrs(sgd, total_steps=3000)`", "autolrs_budget"))
  lines = [
      "### Step time (`python -m benchmarks step-time --out results/step_time.json`)",
      "",
      f"MNIST-1D CNN, batch 128, {r['steps']} timed steps on `{r['device']}`"
      + (f" ({r['host']})" if "host" in r else "") + ", same process"
      + (f"; a first call is the median of {len(r['base']['first_calls_s'])} fresh steps' "
         "(compilation included)" if "first_calls_s" in r["base"] else "") + ":",
      "",
      "| | median step | mean step | first call (compile) | trace + lower, XLA compile "
      "| first call, persistent cache holding it | ÷ bare: median, mean, first call |",
      "|---|---:|---:|---:|---:|---:|---:|",
  ]
  b = r["base"]
  for label, key in rows:
    x = r[key]
    ratios = ("" if key == "base" else
              f"{x['median_ms'] / b['median_ms']:.2f}×, {x['mean_ms'] / b['mean_ms']:.2f}×, "
              f"{x['first_call_s'] / b['first_call_s']:.1f}×")
    phases = (f"{x['trace_s'] + x['lower_s']:.2f} s, {x['compile_s']:.2f} s"
              if "compile_s" in x else "—")
    cached = f"{x['cached_first_call_s']:.2f} s" if "cached_first_call_s" in x else "—"
    lines.append(f"| {label} | {x['median_ms']:.2f} ms | {x['mean_ms']:.2f} ms | "
                 f"{x['first_call_s']:.1f} s | {phases} | {cached} | {ratios} |")
  return lines + compile_breakdown_lines(r) + [
      "",
      "With JAX's persistent compilation cache on (`jax.config.update("
      "\"jax_compilation_cache_dir\", ...)`), a notebook's re-definition of the same step "
      "skips XLA's compile: its first call is then the trace and the lowering.",
      "",
      "On this 10k-parameter model the step is dominated by a fixed per-step cost of AutoLRS "
      "(its controller, and XLA:CPU's cost of a conditional holding the BO branch); "
      "the ratio is not a per-parameter cost.",
  ]


def compile_breakdown_lines(r) -> list[str]:
  """step-time's ``compile_breakdown``: XLA's compile of each mode's step whole,
  without a part of the controller, and of its quiet step."""
  breakdown = r.get("compile_breakdown")
  if not breakdown:
    return []
  bare = breakdown["base"]["whole"]
  labels = {"autolrs": "paper mode", "autolrs_budget": "budget"}
  lines = ["", "Where AutoLRS's compile goes: XLA's compile (the fastest of two, the trace and "
           "lowering apart) of each mode's one-program step whole, with a part of the "
           "controller replaced by a stand-in that compiles to next to nothing "
           "(`step_time.WITHOUT`), and of its quiet step (`update(..., quiet=True)`):", "",
           "| step | XLA compile | ÷ bare step's | fusions |", "|---|---:|---:|---:|",
           f"| bare `sgd` | {bare['compile_s']:.2f} s | 1.0× | {bare['fusions']} |"]
  for mode, rows in breakdown.items():
    if mode == "base":
      continue
    for variant, x in rows.items():
      lines.append(f"| {labels.get(mode, mode)}, {variant} | {x['compile_s']:.2f} s | "
                   f"{x['compile_s'] / bare['compile_s']:.1f}× | {x['fusions']} |")
  return lines


def kappa_section(r):
  lines = [
      f"### Acquisition and κ (`python -m benchmarks kappa --out results/kappa.json`)",
      "",
      f"MNIST-1D CNN, {r['steps']} update calls (probes included), "
      f"{len(r['rows'][0]['val_loss'])} seeds; median [min, max]:",
      "",
      "| acquisition | κ | final validation loss | test accuracy |",
      "|---|---:|---:|---:|",
  ]
  import statistics  # pylint: disable=g-import-not-at-top
  for row in r["rows"]:
    v, a = row["val_loss"], row["test_accuracy"]
    kappa = "—" if row["acquisition"] == "ei" else f"{row['kappa']:g}"
    lines.append(
        f"| {row['acquisition']} | {kappa} | {statistics.median(v):.4f} [{min(v):.4f}, {max(v):.4f}] "
        f"| {statistics.median(a):.4f} [{min(a):.4f}, {max(a):.4f}] |")
  return lines


def data_parallel_section(results):
  """``results`` maps file names data_parallel_<mode>_<devices>.json to their rows."""
  lines = [
      "### Data parallelism (`XLA_FLAGS=--xla_force_host_platform_device_count=8 python "
      "-m examples.data_parallel --steps 1000 --devices D [--sharding] --out results`)",
      "",
      "MNIST-1D CNN, global batch 256, 1000 update calls; 8 devices are *emulated* on this "
      "machine's 2 CPU cores, so more devices cannot be faster here — the table shows the cost "
      "of the collectives, not a speed-up:",
      "",
      "| mode | devices | median step | vs 1 device | test accuracy | LRs exploited |",
      "|---|---:|---:|---:|---:|---|",
  ]
  for mode in ("pmap", "sharding"):
    rows = sorted((r for r in results if r["mode"] == mode), key=lambda r: r["devices"])
    if not rows:
      continue
    one = rows[0]["median_step_ms"]
    for r in rows:
      lrs = ", ".join(f"{v:.3g}" for v in r["exploited_lrs"])
      lines.append(f"| {mode} | {r['devices']} | {r['median_step_ms']:.2f} ms | "
                   f"{r['median_step_ms'] / one:.2f}× | {r['test_accuracy']:.4f} | {lrs} |")
  return lines


def bench_section(results_dir):
  """The benchmark's table (``python -m benchmarks``) and its plots."""
  bench = results_dir / "bench"
  if not (bench / "table.md").exists():
    return []
  machine = json.loads((bench / "results.json").read_text())["machine"]
  lines = [
      "### Benchmark (`python -m benchmarks`)",
      "",
      f"Full run on this machine ({machine}); `results/bench/results.json` holds every number. "
      "Speed-up = update calls the best-of-grid cosine run needs to reach its own final "
      "validation loss, divided by the method's (AutoLRS's probe steps count); '—' = never "
      "reached. '÷ cosine's' = final validation loss over the best-of-grid cosine's on the "
      "same seed (median [min, max] over seeds). 'compute (runs)' = runs of the same budget "
      "it takes to get the result: a grid method's grid, a derived method's grid and its own "
      "run, one for the rest. Ablations: one seed, each mechanism of `autolrs-budget` "
      "switched off in turn; candidates: three seeds, the mechanisms tried this round against "
      "short-horizon bias, on the tuning tasks only.",
      "",
      (bench / "table.md").read_text().strip(),
      "",
  ]
  for png in sorted(bench.glob("*.png")):
    lines += [f"![{png.stem}](../{png.relative_to(results_dir.parent)})", ""]
  for overhead in overhead_files(bench):
    lines += overhead_section(json.loads(overhead.read_text()))
  tables = sorted(bench.glob("ensemble_*.md"))
  if tables:
    lines += ["### Ensembles (`python -m benchmarks ensemble`)", "",
              "Selected on validation, reported on test; gain = test accuracy minus that of the "
              "best single model (picked on validation), per seed, then the median [min, max].", ""]
  for table in tables:
    lines += [table.read_text().strip(), ""]
  verified = sorted(bench.glob("verify_*.md"))
  if verified:
    lines += ["### Verification (`python -m benchmarks verify --task T`)", "",
              "LRBench's verification: which policies reach the target (the best-of-grid "
              "cosine's median final validation loss) within the budget, at what cost: a grid's "
              "other runs of the whole budget, then the run up to the target. The recommended "
              "policy is the cheapest that reaches it on every seed.", ""]
  for table in verified:
    lines += [table.read_text().strip(), ""]
  return lines


def ensemble_summary(bench: pathlib.Path) -> list[str]:
  """Per task, each selector's median test accuracy beside the best single model's."""
  results = [json.loads(p.read_text()) for p in sorted(bench.glob("ensemble_*.json"))]
  if not results:
    return []
  labels = list(results[0]["summary"])
  lines = ["| task | pool per seed | seeds | " + " | ".join(labels) + " |",
           "|---|---:|---:|" + "---:|" * len(labels)]
  for r in results:
    sizes = sorted({s["pool_size"] for s in r["per_seed"]})
    pool = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    cells = [f"{r['summary'][k]['test_accuracy']['median']:.4f}" for k in labels]
    lines.append(f"| {r['task']} | {pool} | {len(r['seeds'])} | " + " | ".join(cells) + " |")
  return lines


def overhead_files(bench: pathlib.Path) -> list[pathlib.Path]:
  """The overhead results: this machine's CPU first, then accelerators'."""
  names = ["overhead.json"] + sorted(p.name for p in bench.glob("overhead_[gt]pu*.json"))
  return [bench / name for name in names if (bench / name).exists()]


def device_words(r) -> str:
  flags = f", `XLA_FLAGS={r['xla_flags']}`" if r.get("xla_flags") else ""
  kind = f" ({r['device_kind']})" if r.get("device_kind", r["device"]) != r["device"] else ""
  return f"`{r['device']}`{kind}, {r['machine']}{flags}"


def overhead_section(r):
  lines = [
      "### Overhead (`python -m benchmarks overhead`"
      + ("" if r["platform"] == "cpu" else f", {r.get('device_kind', r['platform'])}") + ")",
      "",
      f"MLPs, batch {r['batch']}, params and state donated, same process, warmed up; "
      f"{device_words(r)}. Median step (the mean includes the steps that end "
      "probes with a BO proposal or a forecast); controllers handed the training loss only; "
      "paper: AutoLRS with `tau=100`; budget: AutoLRS with `total_steps=2000`; exptest: "
      "`exptest(base)` with its defaults:",
      "",
      "| parameters | base | controller | base median | controlled median | ratio (median) | "
      "ratio (mean) | first call ratio | state / base state | state / params |",
      "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for row in r["rows"]:
    lines.append(
        f"| {row['parameters']:,} | {row['base']} | {row['mode']} | "
        f"{row['bare']['median_ms']:.3f} ms | {row['controlled']['median_ms']:.3f} ms | "
        f"{row['ratio_median']:.2f}× | {row['ratio_mean']:.2f}× | "
        f"{row['ratio_first_call']:.1f}× | {row['state_over_base_state']:.2f} | "
        f"{row['state_over_params']:.2f} |")
  bo = r["bo_proposal"]
  lines += ["", f"One BO proposal (GP fit + acquisition on 512 grid points): "
            f"{bo['median_ms']:.1f} ms (compiled in {bo['first_call_s']:.1f} s)."]
  allocations = allocations_sentence(r)
  if allocations:
    lines += ["", allocations]
  return lines + [""] + whole_runs_section(r)


def whole_runs_section(r) -> list[str]:
  """The whole runs through the quiet-calls loop (issue 28), if measured."""
  if "whole_runs" not in r:
    return []
  lines = [
      "Whole runs through the loop of `autolrs_jax.quiet_calls` (`overhead.whole_runs`): the "
      "budget mode's whole `total_steps` (its probes and events included; ExpTest as many "
      "calls), the calls it counts run by the step compiled with `update(..., quiet=True)`, "
      "beside the bare base optimizer and the bare one in `optax.apply_if_finite`, the three "
      "taking turns of ten calls in one process. Time of the whole run ÷ the bare optimizer's "
      "and ÷ `apply_if_finite`'s; first calls (compilation included) of the bare, guarded "
      "(`apply_if_finite`), one-program and quiet steps, and the fused kernels each compiles "
      "(fusions: bare / guarded / quiet; XLA:CPU compiles each kernel, so that their number "
      "drives its seconds):",
      "",
      "| parameters | base | controller | calls | quiet run ÷ bare | ÷ apply_if_finite | "
      "first call: bare | apply_if_finite | one-program | quiet | quiet ÷ bare | "
      "quiet ÷ apply_if_finite | fusions |",
      "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for row in r["whole_runs"]:
    first = row["first_call_s"]
    fusions = " / ".join(str(row["fusions"][k]) for k in ("bare", "if_finite", "quiet"))
    lines.append(
        f"| {row['parameters']:,} | {row['base']} | {CONTROLLERS[row['mode']]} | "
        f"{row['calls']} | {row['ratio_mean']:.3f}× | {row['ratio_mean_if_finite']:.3f}× | "
        f"{first['bare']:.2f} s | {first['if_finite']:.2f} s | {first['one_program']:.2f} s | "
        f"{first['quiet']:.2f} s | {row['quiet_compile_over_bare']:.2f}× | "
        f"{first['quiet'] / first['if_finite']:.2f}× | {fusions} |")
  return lines + [""]


def pairs_clause(rows) -> str:
  """How the smallest model's ratios spread over fresh (bare, controlled) pairs."""
  spreads = [x["ratio_median_of_pairs"] for x in rows if len(x.get("ratio_median_of_pairs", [])) > 1]
  if not spreads:
    return ""
  widest = max(max(p) - min(p) for p in spreads)
  return (f"; its ratios are the median of {len(spreads[0])} fresh pairs of compiled steps, "
          f"whose ratios differ by up to {widest:.2f}")


def allocations_sentence(r) -> str:
  """The buffers of the smallest model's compiled steps, or "" if not measured."""
  rows = [x for x in r["rows"] if "allocations" in x]
  if not rows:
    return ""
  cells = [f"{CONTROLLERS[x['mode']]} {x['allocations']['total']} "
           f"({x['allocations'].get('thread-local', 0)} of reductions' and sorts' computations, "
           f"{x['allocations'].get('constant', 0)} constants)"
           for x in rows if x["base"] == "sgd"]
  bare = rows[0]["bare_allocations"]
  sentence = (f"Buffers in XLA's buffer assignment of the {rows[0]['parameters']:,}-parameter "
              f"step with SGD (`overhead.buffer_allocations`; on XLA:CPU each costs a handle at "
              f"every call): bare {bare['total']}; " + "; ".join(cells) + ".")
  if "untaken_branch" in r:
    u = r["untaken_branch"]
    empty, full = u["variants"]["empty"], u["variants"]["reductions"]
    sentence += (f" A `lax.cond` that is never taken costs at every call what its branch "
                 f"compiles to (`overhead.untaken_branch_cost`): {full['median_ms'] * 1e3:.0f} µs "
                 f"per call with {u['terms']} reductions in the branch "
                 f"({full['allocations']['total']} buffers), {empty['median_ms'] * 1e3:.1f} µs "
                 f"with an empty one ({empty['allocations']['total']} buffers).")
  if "state_leaves" in r:
    v = r["state_leaves"]
    t = {name: x["median_ms"] * 1e3 for name, x in v["timing"].items()}
    sentence += (f" AutoLRS's {v['scalars']} controller scalars carried by that step "
                 f"(`overhead.state_leaves_cost`, median per call): packed into "
                 f"{v['packed_arrays']} arrays {t['packed']:.0f} µs, one leaf each "
                 f"{t['one_leaf_each']:.0f} µs, against the bare step's {t['bare']:.0f} µs.")
  return sentence


CONTROLLERS = {"paper": "AutoLRS paper", "budget": "AutoLRS budget", "exptest": "ExpTest"}


def overhead_summary(r, step_time) -> list[str]:
  """The README's short table: median step ratio per model size, base and controller."""
  columns = [(b, m) for b in ("sgd", "adam") for m in CONTROLLERS
             if any((x["base"], x["mode"]) == (b, m) for x in r["rows"])]
  lines = ["| parameters | " + " | ".join(f"{b}, {CONTROLLERS[m]}" for b, m in columns) + " |",
           "|---:|" + "---:|" * len(columns)]
  for n in sorted({row["parameters"] for row in r["rows"]}):
    cells = []
    for base, mode in columns:
      row = next(x for x in r["rows"] if (x["parameters"], x["base"], x["mode"]) == (n, base, mode))
      cells.append(f"{row['ratio_median']:.2f}× ({row['ratio_mean']:.2f}×)")
    lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
  smallest = [x for x in r["rows"] if x["parameters"] == min(y["parameters"] for y in r["rows"])]
  fixed = [x["controlled"]["median_ms"] - x["bare"]["median_ms"] for x in smallest
           if x["mode"] != "exptest"]
  lines += ["", f"Step time with the controller ÷ the bare base optimizer's, median (mean), on "
            f"{device_words(r)}; at {smallest[0]['parameters']:,} parameters AutoLRS "
            f"adds {min(fixed):.2f}–{max(fixed):.2f} ms per step{pairs_clause(smallest)}. "
            f"Means include the machine's "
            f"outliers (the bare step's own mean is up to "
            f"{max(x['bare']['mean_ms'] / x['bare']['median_ms'] for x in r['rows']):.1f}× its "
            f"median)."]
  allocations = allocations_sentence(r)
  if allocations:
    lines[-1] += " " + allocations
  if step_time is not None:
    lines[-1] += " " + step_time_sentence(step_time)
  if "whole_runs" in r:
    lines += ["", whole_runs_sentence(r["whole_runs"])]
  return lines


def whole_runs_sentence(rows) -> str:
  """The budget mode's whole runs through the quiet-calls loop, per model size."""
  cells = []
  for n in sorted({x["parameters"] for x in rows}):
    runs = [x for x in rows if x["parameters"] == n and x["mode"] == "budget"]
    cells.append(f"{n:,} parameters " + ", ".join(
        f"{x['base']} {x['ratio_mean']:.2f}× ({x['ratio_mean_if_finite']:.2f}×)" for x in runs))
  return ("Whole budget-mode runs through the loop of `autolrs_jax.quiet_calls` (its probes "
          "included), time ÷ the bare optimizer's (÷ the bare one in `optax.apply_if_finite`): "
          + "; ".join(cells) + ".")


def probes_section(r):
  """``python -m benchmarks probes``: each ladder rung's probe beside the cosine at that peak."""
  import autolrs_jax  # pylint: disable=g-import-not-at-top
  # The default's bound: per probe call, or the probe's whole path's.
  per_call = autolrs_jax.BudgetPlan().drift_per_call
  bound_text = (f"the default's drift bound, {per_call:g} initial norms per call" if per_call
                else f"the drift bound {r['drift_bound']:g}")
  scale = r.get("budget_scale", 1.0)
  if scale == 1.0:
    title = "What the ladder sees (`python -m benchmarks probes --out results/probes.json`)"
  else:
    title = (f"What the ladder would see in a budget {scale:g}× the task's (`python -m benchmarks "
             f"probes --budget-scale {scale:g} --out results/probes_{scale:g}x.json`)")
  lines = [f"### {title}", "",
           "Each rung of the budget ladder probed once from the initial parameters, as the first "
           f"stage does (medians over seeds): the validation loss at the probe's end, the default "
           "score (the exponential forecast at the hold's horizon), the fit at the probe's own end, "
           f"and the probe's path over the initial norm (★: past {bound_text}, the probe counts as "
           "diverged, on the tasks whose probes the default bounds: those whose step grows with "
           "the gradient); beside them the benchmark's cosine at that peak (its final validation "
           "loss; bold: the best peak).", ""]
  for t in r["tasks"]:
    # A task whose probes the default does not bound: no path is past it.
    limit = (float("inf") if not t["drift_bounded"]
             else per_call * t["probe_calls"] if per_call else r["drift_bound"])
    best = best_cosine_rung(t["rungs"])["cosine_final_val_loss"]
    budget = f"budget {t['budget']}, " if "budget" in t else ""
    bound = f"drift bound {limit:.3g}" if t["drift_bounded"] else "no drift bound"
    lines += [f"**{t['task']}** ({t['split']} task, {t['optimizer']}, {budget}probes of "
              f"{t['probe_calls']} calls, {bound}, horizon {t['horizon']}, "
              f"{t['seeds']} seeds)", "",
              "| LR | val loss at probe end | forecast score | fit at probe end | path / norm "
              "| cosine at this peak |", "|---:|---:|---:|---:|---:|---:|"]
    for x in t["rungs"]:
      c = x["cosine_final_val_loss"]
      cell = ("—" if c is None else "diverged" if c != c
              else f"**{c:.4g}**" if c == best else f"{c:.4g}")
      star = " ★" if x["path_ratio"] > limit else ""
      lines.append(f"| {x['lr']:.3g} | {x['end_val_loss']:.4g} | {x['forecast']:.4g} | "
                   f"{x['end_fit']:.4g} | {x['path_ratio']:.2f}{star} | {cell} |")
    lines.append("")
  if per_call:
    lines += [best_peaks_step_sentence(r["tasks"], per_call), ""]
  return lines


def best_cosine_rung(rungs) -> dict:
  """The rung whose peak gave the benchmark's cosine its lowest final validation
  loss (a rung without a cosine run, or whose cosine diverged, is none)."""
  ran = [x for x in rungs if (c := x["cosine_final_val_loss"]) is not None and c == c]
  return min(ran, key=lambda x: x["cosine_final_val_loss"])


def best_peaks_step_sentence(tasks, per_call: float) -> str:
  """The mean step (path ÷ initial norm per call) of each task's best cosine peak's
  probe, against the bound per call: the bound caps the relative step, so that it
  holds a task's best peak only if that peak's step is below it."""
  cells = []
  for t in tasks:
    best = best_cosine_rung(t["rungs"])
    step = best["path_ratio"] / t["probe_calls"]
    cells.append(f"{t['task']} ({t['split']}, {t['optimizer']}) {step:.2g} at {best['lr']:.3g}"
                 + (" ★" if step > per_call else ""))
  return ("The best cosine peak's probe, its mean step (path ÷ initial norm per call; ★: above "
          f"the bound of {per_call:g}, so that a ladder bounding it could not hold it): "
          + "; ".join(cells) + ". A rung's step grows with its LR on every task, so that the "
          "bound per call is a cap on the LR, at the LR whose step reaches it. An Adam step "
          "keeps its size whatever the loss does, so that there the cap is all the bound does: "
          "the default bounds only the probes of an optimizer whose step grows with the "
          "gradient (`BudgetPlan.drift_bound`).")


def step_time_sentence(r) -> str:
  """The CNN's step with AutoLRS against the bare one: per call, and its first call."""
  base = r["base"]["first_call_s"]
  modes = [("the paper's mode", "autolrs")] + (
      [("with a budget", "autolrs_budget")] if "autolrs_budget" in r else [])
  parts = [f"{label} {r[key]['median_ms'] / r['base']['median_ms']:.2f}× median, "
           f"{r[key]['mean_ms'] / r['base']['mean_ms']:.2f}× mean, first call (compilation) "
           f"{r[key]['first_call_s']:.1f} s vs {base:.1f} s "
           f"({r[key]['first_call_s'] / base:.1f}×)"
           + (f", {r[key]['cached_first_call_s']:.2f} s vs {r['base']['cached_first_call_s']:.2f} s "
              "with the persistent compilation cache holding the step"
              if "cached_first_call_s" in r[key] else "") for label, key in modes]
  return ("The MNIST-1D CNN's step with AutoLRS (`python -m benchmarks step-time`): "
          + "; ".join(parts) + ".")


SECTIONS = (("mnist1d.json", mnist1d_section), ("exptest_mnist1d.json", exptest_section),
            ("search_then_replay.json", search_replay_section),
            ("step_time.json", step_time_section),
            ("kappa.json", kappa_section), ("probes.json", probes_section),
            ("probes_2x.json", probes_section))


def headline(results_dir: pathlib.Path) -> list[str]:
  """Per task, the median final validation loss and speed-up of the headline methods."""
  path = results_dir / "bench" / "results.json"
  if not path.exists():
    return ["(no benchmark results yet: `python -m benchmarks`)"]
  tasks = json.loads(path.read_text())["tasks"]
  # Tuning tasks first, then test tasks, each alphabetically.
  names = sorted(tasks, key=lambda t: (tasks[t].get("split", "tuning") != "tuning", t))
  lines = ["| method | " + " | ".join(f"{t} ({tasks[t].get('split', 'tuning')}): val loss "
                                      "(speed-up; runs)" for t in names) + " |",
           "|---|" + "---:|" * len(names)]
  for method in HEADLINE_METHODS:
    cells = []
    for task in names:
      row = next((r for r in tasks[task]["rows"] if r["method"] == method), None)
      if row is None:
        cells.append("—")
        continue
      speedup = (row.get("speedup") or {}).get("median")
      pace = f"{speedup:.2f}×" if speedup is not None else "never"
      cells.append(f"{row['final_val_loss']['median']:.3f} ({pace}; {row['compute_runs']})")
    lines.append(f"| {method} | " + " | ".join(cells) + " |")
  return lines


def choice_table(results_dir: pathlib.Path) -> list[str]:
  """Whether AutoLRS's choice holds on the tuning and the test tasks (report.choice_markdown)."""
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  path = results_dir / "bench" / "results.json"
  if not path.exists():
    return []
  tasks = json.loads(path.read_text())["tasks"]
  return [report.CHOICE_LEGEND, ""] + report.choice_markdown(tasks) + [
      ""] + peer_bar_sentence(tasks) + unannealed_sentence(tasks)


def peer_bar_sentence(tasks: dict) -> list[str]:
  """Where AutoLRS ends above an LR-free peer: how the best-of-grid cosine,
  the tuned schedule of the task's own optimizer, ends against that peer."""
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  cells = []
  for r in report.choice_rows(tasks):
    above = [p for p, v in r["versus_peers"].items() if v is not None and v > 1.0]
    ratios = [f"{r['cosine_versus_peers'][p]:.3f}× {p}'s" for p in above]
    if ratios:
      cells.append(f"{r['task']} ({tasks[r['task']]['optimizer']}) " + ", ".join(ratios))
  if not cells:
    return []
  return ["Where AutoLRS ends above an LR-free peer, the best-of-grid cosine (a schedule of "
          "the task's own optimizer, its peak tuned over the grid) ends at this multiple of that "
          "peer's median final validation loss: " + "; ".join(cells) + ". Above 1, the peer "
          "ends below the tuned cosine too (on an SGD task the peers train with Adam-like "
          "updates, another optimizer).", ""]


def unannealed_sentence(tasks: dict) -> list[str]:
  """Where the paper's mode ends above 2x the cosine: how far the grid's best
  constant LR (no anneal either, the best of the grid's runs) ends there."""
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  cells = []
  for r in report.choice_rows(tasks):
    worst = [v for v in r["paper_worst_versus_cosine"].values() if v is not None]
    constant = next((x for x in tasks[r["task"]]["rows"] if x["method"] == "constant"), None)
    if worst and max(worst) > 2.0 and constant and constant["versus_cosine"]:
      ratios = constant["versus_cosine"]
      cells.append(f"{r['task']} {ratios['median']:.2f}× (worst seed {ratios['max']:.2f}×)")
  if not cells:
    return []
  return ["The paper's mode does not know the budget, so it cannot anneal into it. Where it ends "
          "above 2× the cosine, the grid's best constant LR, which does not anneal either "
          "(chosen from the grid's runs), ends at this multiple of the cosine's final validation "
          "loss: " + "; ".join(cells) + "."]


def most_paired(results_dir: pathlib.Path, method: str) -> dict[str, tuple[int, pathlib.Path, dict]]:
  """Per task, ``(seeds, path, row)``: the paired row of ``method`` from the
  results directory's ``paired.json`` that pairs the most of its seeds."""
  found = {}
  for path in sorted(results_dir.glob("*/paired.json")):
    for r in json.loads(path.read_text())["rows"]:
      if r["method"] == method and r["seeds"] > found.get(r["task"], (0,))[0]:
        found[r["task"]] = (r["seeds"], path, r)
  return found


SEARCH_COST = "autolrs-budget:without-search"


def search_cost_sentence(results_dir: pathlib.Path) -> list[str]:
  """What AutoLRS's search costs, per task: the oracle :data:`SEARCH_COST`'s
  final loss over the full method's on the same seed, from the results
  directory that pairs the most of its seeds."""
  rows = most_paired(results_dir, SEARCH_COST)
  if not rows:
    return []
  cells = [f"{task} {r['ratio_geometric_mean']:.3f} ({seeds} seeds, per seed "
           f"{r['ratio_best']:.3f}–{r['ratio_worst']:.3f})"
           for task, (seeds, _, r) in sorted(rows.items())]
  where = sorted({path.parent.as_posix() for _, path, _ in rows.values()})
  return ["What the search costs: the schedule each run applied, its probes removed and stretched "
          "over the whole budget, trained again with no search (an oracle: it knows the LR), ends "
          "at this multiple of the run's own final validation loss, geometric mean over paired "
          "seeds (below 1: the search cost that much; `" + "`, `".join(where) + "`): "
          + "; ".join(cells) + ".", ""]


NOISE_FLOOR = "autolrs-budget:other-batches"


def noise_floor_sentence(results_dir: pathlib.Path) -> list[str]:
  """What the full method's final loss does with its minibatches in another
  order alone (:data:`NOISE_FLOOR`), per task, from the results directory that
  pairs the most of its seeds."""
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  floors = most_paired(results_dir, NOISE_FLOOR)
  cells = []
  for task in sorted(floors):
    _, path, r = floors[task]
    summary = json.loads((path.parent / "results.json").read_text())["tasks"]
    rows = {x["method"]: x for x in summary[r["task"]]["rows"]}
    same = report.same_held_lrs(rows.get(NOISE_FLOOR), rows.get("autolrs-budget"))
    held = "" if same is None else f", the same LRs held on {same[0]} of {same[1]}"
    logs = [math.log(x) for x in r["per_seed_ratio"].values()]
    # One standard error of a geometric mean of as many paired seeds.
    error = (f"; a geometric mean of {len(logs)} paired seeds moves by "
             f"×{math.exp(statistics.stdev(logs) / math.sqrt(len(logs))):.3f} (one standard "
             "error)" if len(logs) > 2 else "")
    cells.append(f"{r['task']} {r['median'] / r['base_median']:.3f} ({r['seeds']} seeds in "
                 f"`{path.parent.as_posix()}`; per seed {r['ratio_best']:.3f}–"
                 f"{r['ratio_worst']:.3f}{held}{error})")
  if not cells:
    return []
  return ["How far these medians move by chance: the full method with its minibatches drawn in "
          f"another order, the initialisation unchanged (`{NOISE_FLOOR}`), ends at this median "
          "final validation loss over its own: " + "; ".join(cells) + "."]


def numerics_sentence(results_dir: pathlib.Path) -> list[str]:
  """How far a run moves when redone on other numerics (``--same-numerics``):
  its latest record over its first, per task, from every ``runs.jsonl``."""
  runs: dict[tuple, list[dict]] = {}
  for path in sorted(results_dir.glob("*/runs.jsonl")):
    for line in path.read_text().splitlines():
      r = json.loads(line)
      runs.setdefault((path.parent.name, r["task"], r["method"], r["seed"], r["lr"], r["steps"]),
                      []).append(r)
  ratios: dict[str, list[float]] = {}
  for (_, task, *_), records in sorted(runs.items()):
    if len({r.get("numerics") for r in records}) > 1:
      ratios.setdefault(task, []).append(records[-1]["final_val_loss"]
                                         / records[0]["final_val_loss"])
  if not ratios:
    return []
  cells = [f"{task} {len(v)} runs, {sum(abs(x - 1) < 1e-6 for x in v)} to the last digit, "
           f"{min(v):.3f}–{max(v):.3f}" for task, v in sorted(ratios.items())]
  return ["Runs redone with `--same-numerics` on a machine whose numerics differ from their "
          "first record's (the same seeds): the redone run's final validation loss over the "
          "first record's, " + "; ".join(cells) + ". A run is deterministic on one machine; "
          "elsewhere XLA may round otherwise, and a chaotic training run then ends elsewhere "
          "with the same decisions, so paired comparisons pair runs on the same numerics only."]


def paired_section(results_dir: pathlib.Path) -> list[str]:
  """Each directory's variants of AutoLRS against the full method, seed by seed."""
  from benchmarks import report  # pylint: disable=g-import-not-at-top
  lines = []
  # The benchmark's own variants are in its ablation tables.
  for path in sorted(p for p in results_dir.glob("*/paired.json") if p.parent.name != "bench"):
    rows = json.loads(path.read_text())["rows"]
    tasks = sorted({r["task"] for r in rows})
    variants = sorted({r["method"] for r in rows})
    bases = {m.split(":")[0] for m in variants}  # A wide candidate pairs with the wide row.
    methods = ",".join(sorted(bases | {"autolrs-budget"}) + variants)
    seeds = max(r["seeds"] for r in rows)
    summary = path.parent / "results.json"
    summary = json.loads(summary.read_text())["tasks"] if summary.exists() else {}
    scale = budget_scale(summary)
    flags = f" --budget-scale {scale:g}" if scale != 1.0 else ""
    title = f", {scale:g}× the tasks' budgets" if scale != 1.0 else ""
    out = f"--seeds {seeds}{flags} --out {path.parent.as_posix()}"
    lines += [f"### Mechanisms, paired by seed (`{path.parent.as_posix()}`{title})", "",
              f"`python -m benchmarks {' '.join(f'--task {t}' for t in tasks)} --methods "
              f"{methods} {out}`: each variant's final "
              "validation loss over the full method's on the same seed (same data, "
              "initialisation and minibatch keys) and the same numerics (CPU model and vector "
              "units, jax version: the run's `numerics`; runs recorded before they were, "
              "together). A run rounds otherwise on other numerics, and a chaotic one ends "
              "elsewhere with the same decisions; `--same-numerics` redoes the full method's "
              "runs here. Unpaired: the variant's seeds with no full run on their numerics.",
              ""] + report.paired_markdown(rows) + [""]
    choice = report.choice_markdown(summary) if summary else []
    if len(choice) > 2:  # Tasks whose cosine grid ran on these seeds too.
      graded = [t for t in tasks
                if any(r["method"] == "cosine" for r in summary.get(t, {}).get("rows", []))]
      lines += [f"The full method against the best-of-grid cosine on the same {seeds} seeds "
                f"(`python -m benchmarks {' '.join(f'--task {t}' for t in graded)} --methods "
                f"cosine {out}`; columns as in the "
                "benchmark's table, '—' where nothing ran):", ""] + choice + [""]
  return lines


def budget_scale(tasks: dict) -> float:
  """How many times its task's budget each run of a results directory had (one
  factor for all; 1 without runs)."""
  from benchmarks.tasks import TASKS  # pylint: disable=g-import-not-at-top
  scales = {t["steps"] / TASKS[name].full.steps for name, t in tasks.items()}
  if len(scales) > 1:
    raise ValueError(f"one results directory, several budget scales: {sorted(scales)}")
  return scales.pop() if scales else 1.0


def measurements(results_dir: pathlib.Path) -> list[str]:
  """Every measurement section, for docs/benchmarks.md."""
  lines = []
  for name, render in SECTIONS:
    path = results_dir / name
    if path.exists():
      lines += render(json.loads(path.read_text())) + [""]
  parallel = [json.loads(p.read_text()) for p in sorted(results_dir.glob("data_parallel_*.json"))]
  if parallel:
    lines += data_parallel_section(parallel) + [""]
  return lines + bench_section(results_dir) + paired_section(results_dir)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks readme")
  parser.add_argument("--results", type=pathlib.Path, default=pathlib.Path("results"))
  parser.add_argument("--readme", type=pathlib.Path, default=pathlib.Path("README.md"))
  parser.add_argument("--docs", type=pathlib.Path, default=pathlib.Path("docs/benchmarks.md"))
  args = parser.parse_args(argv)
  doc = ["# Benchmarks and measurements", "",
         "Generated by `python -m benchmarks readme` from `results/`; do not edit by hand. "
         "Each section names the command that wrote its numbers.", ""]
  args.docs.parent.mkdir(parents=True, exist_ok=True)
  args.docs.write_text("\n".join(doc + measurements(args.results)).rstrip() + "\n")
  lines = [BEGIN, "Generated by `python -m benchmarks readme` from `results/bench/results.json`; "
           "medians over seeds. Speed-up: update calls the best-of-grid cosine needs to reach its "
           "own final validation loss, divided by the method's (AutoLRS's probes count); 'never': "
           "not reached; runs: runs of the budget it takes to get the result (a grid's runs; "
           "AutoLRS one).", ""]
  lines += headline(args.results) + [""] + choice_table(args.results) + [""]
  lines += (search_cost_sentence(args.results) + noise_floor_sentence(args.results)
            + numerics_sentence(args.results) + ["", END])
  text = replace_block(args.readme.read_text(), BEGIN, END, lines)
  ensembles = ensemble_summary(args.results / "bench")
  if ensembles and ENSEMBLE_BEGIN in text:
    block = [ENSEMBLE_BEGIN, "Generated by `python -m benchmarks readme` from "
             "`results/bench/ensemble_*.json` (`python -m benchmarks ensemble`); median test "
             "accuracy over seeds, each selector picking on the validation split:", ""]
    text = replace_block(text, ENSEMBLE_BEGIN, ENSEMBLE_END, block + ensembles + ["", ENSEMBLE_END])
  example = args.results / "mnist1d.json"
  if example.exists() and EXAMPLE_BEGIN in text:
    example_block = [EXAMPLE_BEGIN, "Generated by `python -m benchmarks readme` from "
                     "`results/mnist1d.json` (`python -m examples.train_mnist1d --out results`).",
                     ""] + example_lines(json.loads(example.read_text()), "results/mnist1d.png")
    text = replace_block(text, EXAMPLE_BEGIN, EXAMPLE_END, example_block + ["", EXAMPLE_END])
  replay = args.results / "search_then_replay.json"
  if replay.exists() and REPLAY_BEGIN in text:
    replay_lines = [REPLAY_BEGIN, "Generated by `python -m benchmarks readme` from "
                    "`results/search_then_replay.json`.", ""]
    replay_lines += replay_section(json.loads(replay.read_text())) + ["", REPLAY_END]
    text = replace_block(text, REPLAY_BEGIN, REPLAY_END, replay_lines)
  overheads = overhead_files(args.results / "bench")
  if overheads and OVERHEAD_BEGIN in text:
    step_time = args.results / "step_time.json"
    step_time = json.loads(step_time.read_text()) if step_time.exists() else None
    block = [OVERHEAD_BEGIN, "Generated by `python -m benchmarks readme` from "
             + ", ".join(f"`{p.as_posix()}`" for p in overheads)
             + " (`python -m benchmarks overhead`; on the GPU `benchmarks/gpu_overhead.sh`).", ""]
    for path in overheads:
      r = json.loads(path.read_text())
      block += overhead_summary(r, step_time if r["platform"] == "cpu" else None) + [""]
    text = replace_block(text, OVERHEAD_BEGIN, OVERHEAD_END, block + [OVERHEAD_END])
  args.readme.write_text(text)


def replace_block(text: str, begin: str, end: str, lines: list[str]) -> str:
  """``text`` with everything from ``begin`` to ``end`` (both included) replaced by ``lines``."""
  head, rest = text.split(begin, 1)
  _, tail = rest.split(end, 1)
  return head + "\n".join(lines) + tail
