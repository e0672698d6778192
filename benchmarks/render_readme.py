"""Renders the README's "Measurements" section from the results files.

    python benchmarks/render_readme.py [--results results] [--readme README.md]

Every number in that section comes from a JSON file written by a command of
this repository; the section names the command next to its numbers.
"""

import argparse
import json
import pathlib

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def mnist1d_section(r):
  lines = [
      "### The main example (`python examples/train_mnist1d.py --out results`)",
      "",
      f"Test accuracy **{r['test_accuracy']:.4f}** after {r['steps']} update calls, of which "
      f"{r['probe_steps']} were probe steps ({100 * r['probe_steps'] / r['steps']:.0f}%), "
      f"{r['wall_seconds']:.0f} s on this machine's CPU.",
      "",
      "| stage | probe steps | exploit steps | LR exploited |",
      "|---:|---:|---:|---:|",
  ]
  for s in r["stages"]:
    lr = "—" if s["lr"] is None else f"{s['lr']:.3g}"
    lines.append(f"| {s['stage']} | {s['probe_steps']} | {s['exploit_steps']} | {lr} |")
  lines += ["", "![AutoLRS on MNIST-1D](results/mnist1d.png)"]
  return lines


def exptest_section(r):
  search = [t for t in r["trajectory"] if t["phase"] == "search"]
  tune = [t for t in r["trajectory"] if t["phase"] == "tune"]
  lrs = " → ".join(f"{t['lr']:.3g}" for t in tune)
  state = r["final_state"]
  return [
      "### ExpTest-style control (`python examples/exptest_mnist1d.py --out results`)",
      "",
      f"MNIST-1D CNN, `exptest(optax.sgd(1.0, momentum=0.9))` with no initial LR: test accuracy "
      f"**{r['test_accuracy']:.4f}** after {r['steps']} update calls ({r['wall_seconds']:.0f} s). "
      f"The search grew the LR from {search[0]['lr']:.3g} to {search[-1]['lr']:.3g} over "
      f"{sum(t['steps'] for t in search)} steps; tuning then ran at {lrs} "
      f"({state['num_decreases']} plateau decreases, {state['num_cuts']} divergence cuts).",
  ]


def step_time_section(r):
  b, a = r["base"], r["autolrs"]
  return [
      "### Step time (`python benchmarks/step_time.py --out results/step_time.json`)",
      "",
      f"MNIST-1D CNN, batch 128, {r['steps']} timed steps on `{r['device']}`, same process:",
      "",
      "| | median step | mean step | first call (compile) |",
      "|---|---:|---:|---:|",
      f"| `sgd` (bare) | {b['median_ms']:.2f} ms | {b['mean_ms']:.2f} ms | {b['first_call_s']:.1f} s |",
      f"| `autolrs(sgd)` | {a['median_ms']:.2f} ms | {a['mean_ms']:.2f} ms | {a['first_call_s']:.1f} s |",
      f"| ratio | **{r['ratio_median']:.2f}×** | **{r['ratio_mean']:.2f}×** | |",
      "",
      "On this 10k-parameter model the step is dominated by a fixed per-step cost of AutoLRS "
      "(its controller, and XLA:CPU's cost of a conditional holding the BO branch); "
      "the ratio is not a per-parameter cost.",
  ]


def kappa_section(r):
  lines = [
      f"### Acquisition and κ (`python benchmarks/kappa.py --out results/kappa.json`)",
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
      "examples/data_parallel.py --steps 1000 --devices D [--sharding] --out results`)",
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
  """The benchmark's table (``python -m autolrs_jax.bench``) and its plots."""
  bench = results_dir / "bench"
  if not (bench / "table.md").exists():
    return []
  machine = json.loads((bench / "results.json").read_text())["machine"]
  lines = [
      "### Benchmark (`python -m autolrs_jax.bench`)",
      "",
      f"Full run on this machine ({machine}); `results/bench/results.json` holds every number. "
      "Speed-up = update calls the best-of-grid cosine run needs to reach its own final "
      "validation loss, divided by the method's (AutoLRS's probe steps count); '—' = never "
      "reached. 'tuning runs' = runs of the same budget spent on the LR grid before this run.",
      "",
      (bench / "table.md").read_text().strip(),
      "",
  ]
  for png in sorted(bench.glob("*.png")):
    lines += [f"![{png.stem}]({png.relative_to(results_dir.parent)})", ""]
  overhead = bench / "overhead.json"
  if overhead.exists():
    lines += overhead_section(json.loads(overhead.read_text()))
  tables = sorted(bench.glob("ensemble_*.md"))
  if tables:
    lines += ["### Ensembles (`python -m autolrs_jax.bench ensemble`)", "",
              "Selected on validation, reported on test; gain = test accuracy minus that of the "
              "best single model (picked on validation), per seed, then the median [min, max].", ""]
  for table in tables:
    lines += [table.read_text().strip(), ""]
  return lines


def overhead_section(r):
  lines = [
      "### Overhead (`python -m autolrs_jax.bench overhead`)",
      "",
      f"MLPs, batch {r['batch']}, same process, warmed up; {r['machine']}. Median step (mean "
      "includes the BO steps that end probes):",
      "",
      "| parameters | sgd median | autolrs median | ratio (median) | ratio (mean) | "
      "first call ratio | state / base state | state / params |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for row in r["rows"]:
    lines.append(
        f"| {row['parameters']:,} | {row['sgd']['median_ms']:.3f} ms | "
        f"{row['autolrs']['median_ms']:.3f} ms | {row['ratio_median']:.2f}× | "
        f"{row['ratio_mean']:.2f}× | {row['ratio_first_call']:.1f}× | "
        f"{row['state_over_base_state']:.2f} | {row['state_over_params']:.2f} |")
  bo = r["bo_proposal"]
  lines += ["", f"One BO proposal (GP fit + acquisition on 512 grid points): "
            f"{bo['median_ms']:.1f} ms (compiled in {bo['first_call_s']:.1f} s).", ""]
  return lines


SECTIONS = (("mnist1d.json", mnist1d_section), ("exptest_mnist1d.json", exptest_section),
            ("step_time.json", step_time_section),
            ("kappa.json", kappa_section))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--results", type=pathlib.Path, default=pathlib.Path("results"))
  parser.add_argument("--readme", type=pathlib.Path, default=pathlib.Path("README.md"))
  args = parser.parse_args()
  lines = [BEGIN, "Generated by `python benchmarks/render_readme.py` from `results/*.json`; "
           "do not edit by hand.", ""]
  for name, render in SECTIONS:
    path = args.results / name
    if path.exists():
      lines += render(json.loads(path.read_text())) + [""]
  parallel = [json.loads(p.read_text()) for p in sorted(args.results.glob("data_parallel_*.json"))]
  if parallel:
    lines += data_parallel_section(parallel) + [""]
  lines += bench_section(args.results)
  lines.append(END)
  text = args.readme.read_text()
  head, rest = text.split(BEGIN, 1)
  _, tail = rest.split(END, 1)
  args.readme.write_text(head + "\n".join(lines) + tail)


if __name__ == "__main__":
  main()
