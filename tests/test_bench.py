"""The benchmark: its metrics on hand-made records, what it evaluates, and its --quick run."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import autolrs_jax
from benchmarks import host
from benchmarks import methods
from benchmarks import overhead
from benchmarks import report
from benchmarks import runner
from benchmarks import tasks

ROOT = pathlib.Path(__file__).resolve().parents[1]


def record(method, seed, lr, val_loss, steps=100, eval_every=25, **kw):
  return {"task": "digits", "method": method, "seed": seed, "lr": lr, "steps": steps,
          "eval_every": eval_every, "eval_steps": [25, 50, 75, 100], "val_loss": val_loss,
          "final_val_loss": val_loss[-1], "test_metric": 0.9, "wall_seconds": 1.0,
          "bo_stages": [], **kw}


def test_steps_to_target_is_the_first_evaluation_at_or_below_it():
  r = record("cosine", 0, 0.1, [1.0, 0.5, 0.4, 0.3])
  assert report.steps_to_target(r, 0.5) == 50
  assert report.steps_to_target(r, 0.3) == 100
  assert report.steps_to_target(r, 0.2) is None


def test_best_grid_lr_minimises_the_median_final_loss_over_seeds():
  runs = [record("cosine", s, lr, [1.0, 1.0, 1.0, v]) for lr, vals in
          {0.1: [0.5, 0.6, 9.0], 0.3: [0.55, 0.56, 0.57], 1.0: [float("nan")] * 3}.items()
          for s, v in enumerate(vals)]
  # 0.1 has the lowest single value and the highest mean; its median (0.6) loses to 0.56.
  assert report.best_grid_lr(runs) == 0.3


def test_summary_targets_speedups_and_tuning_cost():
  runs = [record("cosine", s, lr, v) for s in range(2) for lr, v in
          ((0.1, [1.0, 0.8, 0.6, 0.5]), (1.0, [2.0, 2.0, 2.0, 2.0]))]
  runs += [record("autolrs-sgd", 0, None, [0.9, 0.5, 0.4, 0.4], probe_fraction=0.5),
           record("autolrs-sgd", 1, None, [0.9, 0.9, 0.9, 0.9], probe_fraction=0.5),
           record("step", 0, 0.1, [0.6, 0.5, 0.5, 0.5])]
  rows = {r["method"]: r for r in report.summarize(runs)["digits"]["rows"]}
  assert rows["cosine"]["lr"] == 0.1
  assert rows["cosine"]["speedup"]["median"] == 1.0
  assert rows["cosine"]["tuning_steps"] == 2 * 100  # Two grid points.
  # Target 0.5: AutoLRS seed 0 reaches it at 50 (cosine at 100): 2x; seed 1 never.
  assert rows["autolrs-sgd"]["reached_target"] == 1
  assert rows["autolrs-sgd"]["speedup"] == {"median": 2.0, "min": 2.0, "max": 2.0, "n": 1}
  assert rows["autolrs-sgd"]["tuning_steps"] == 0
  assert rows["step"]["speedup"]["median"] == 2.0


def test_autolrs_is_evaluated_at_its_snapshot_while_it_probes():
  tx = autolrs_jax.autolrs(optax.sgd(1.0), min_lr=0.01, max_lr=0.1, tau=10, tau_probe=3,
                           num_trials=2)
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  method = methods.METHODS["autolrs-sgd"]
  held = lambda p, s: runner._held_params(p, s, method)["w"]  # pylint: disable=protected-access
  np.testing.assert_array_equal(held(params, state), params["w"])  # Before the snapshot.
  for _ in range(2):  # Two probe steps from the snapshot (ones).
    updates, state = tx.update({"w": jnp.ones(3)}, state, params, value=jnp.float32(1.0))
    params = optax.apply_updates(params, updates)
  assert autolrs_jax.describe(state)["phase"] == "probe"
  assert not np.array_equal(params["w"], np.ones(3))
  np.testing.assert_array_equal(held(params, state), np.ones(3))


def test_the_lm_grid_is_the_four_points_around_its_best():
  grid = tasks.task_grid(tasks.TASKS["charlm"], quick=False)
  assert grid == tasks.lr_grid("adam")[2:6]
  assert tasks.task_grid(tasks.TASKS["mnist1d"], quick=False) == tasks.lr_grid("sgd")
  assert len(tasks.task_grid(tasks.TASKS["charlm"], quick=True)) == tasks.QUICK_GRID_POINTS


@pytest.mark.parametrize("peer", ["schedule-free-adamw", "prodigy", "prodigy-cosine",
                                  "dadapt-adamw", "dadapt-adamw-cosine"])
def test_an_lr_free_peer_keeps_an_adamw_task_s_weight_decay(peer):
  # The same constant gradient for 20 calls: only the weight decay can tell
  # the sorting task's peer (AdamW, 0.1) from the digits-with-Adam one's.
  def trained(task):
    tx = methods.METHODS[peer].build(tasks.TASKS[task], 100, 0, None)
    params = {"w": jnp.ones([3])}
    state = tx.init(params)
    for _ in range(20):
      updates, state = tx.update({"w": jnp.full([3], 0.1)}, state, params)
      params = optax.apply_updates(params, updates)
    return params["w"]
  assert bool(jnp.all(trained("sorting") < trained("digits-adam")))


def test_the_oracle_without_search_replays_the_full_run_s_schedule_over_the_whole_budget():
  task, oracle = tasks.TASKS["digits"], methods.METHODS["autolrs-budget:without-search"]
  steps, every = task.quick.steps, task.quick.eval_every
  full = runner.train(task, methods.METHODS["autolrs-budget"], 0, steps, every)
  schedule = runner.replayed_schedule(task, oracle, 0, steps, every)
  lrs = np.asarray([schedule(c) for c in range(steps)])
  held = full.bo_stages[0]["exploited_lr"]
  exploited = full.learning_rate[full.phase == autolrs_jax.EXPLOIT]
  # Its warm-up, hold and anneal, with no probe: it starts below the held LR,
  # holds it, ends at 0, and is longer than the run's own non-probe calls.
  assert lrs[0] < held and lrs.max() == pytest.approx(held) and lrs[-1] == 0.0
  assert np.sum(lrs == lrs.max()) > np.sum(exploited == exploited.max())


@pytest.mark.parametrize("name, top", [("warm-start-mid", np.sqrt(1e-3 * 1.0)),
                                       ("warm-start-min", 1e-3)])
def test_a_warm_start_candidate_ramps_to_its_lr_before_the_ladder_s_first_probe(name, top):
  task = tasks.TASKS["digits"]  # SGD: the range 1e-3..1.
  steps, every = task.quick.steps, task.quick.eval_every
  run = runner.train(task, methods.METHODS[f"autolrs-budget:{name}"], 0, steps, every)
  warm = round(0.05 * steps)
  assert np.all(run.phase[:warm] == autolrs_jax.WARMUP)
  assert run.phase[warm] == autolrs_jax.PROBE
  np.testing.assert_allclose(run.learning_rate[:warm], top * np.arange(1, warm + 1) / warm,
                             rtol=1e-5)
  assert run.learning_rate[warm] == pytest.approx(1.0)  # The ladder's top rung.


def test_a_candidate_keeps_the_mechanisms_it_ran_with():
  # Records stay reproducible: a default that came after a candidate ran is
  # switched off in it, one it measured stays on.
  changes = {name: c for name, _, c in methods.CANDIDATES}
  with_margin = {name for name, c in changes.items() if c["edge_margin"] is not None}
  assert with_margin == {"edge2", "warm-start-mid-edge2"}
  assert changes["edge2"]["edge_margin"] == autolrs_jax.BudgetPlan().edge_margin
  assert changes["refine-vertex"]["spike_noise"] == autolrs_jax.BudgetPlan().spike_noise
  assert changes["linear-anneal20"]["spike_noise"] is None
  ablations = {name: c for name, _, c in methods.ABLATIONS}
  assert ablations["no-edge-margin"] == {"edge_margin": None}


def test_lr_grid_spans_the_range_half_a_decade_apart():
  grid = tasks.lr_grid("sgd")
  assert len(grid) == tasks.GRID_POINTS
  assert grid[0] == pytest.approx(1e-3) and grid[-1] == pytest.approx(1.0)
  np.testing.assert_allclose(np.diff(np.log10(grid)), 0.5)


def test_autolrs_stages_fill_each_full_budget():
  for task in tasks.TASKS.values():
    b = task.full
    tau_probe = b.tau_probe or b.tau // 10
    stages = sum(b.num_trials * tau_probe * 2**i + b.tau * 2**i for i in range(4))
    # 4,000 is not a multiple of 15 (the LM's budget): its last 100 calls
    # start a fifth stage, shorter than a first stage's exploitation.
    assert 0 <= b.steps - stages < b.tau, task.name


@pytest.mark.slow
def test_quick_benchmark_and_ensembles_on_digits(tmp_path):
  out = tmp_path / "bench"
  for command in ([], ["ensemble"]):
    subprocess.run([sys.executable, "-m", "benchmarks", *command, "--task", "digits",
                    "--quick", "--out", str(out)], check=True, cwd=ROOT, timeout=600)
  result = json.loads((out / "results.json").read_text())["tasks"]["digits"]
  names = {r["method"] for r in result["rows"]}
  assert names == set(methods.METHODS)
  cosine = next(r for r in result["rows"] if r["method"] == "cosine")
  assert cosine["speedup"]["median"] == 1.0
  assert cosine["tuning_steps"] == tasks.QUICK_GRID_POINTS * result["steps"]
  # What each result cost, in runs of the budget: the grid, the grid and one
  # more run for a derived schedule, one run for AutoLRS.
  compute = {r["method"]: r["compute_runs"] for r in result["rows"]}
  assert compute["cosine"] == tasks.QUICK_GRID_POINTS
  assert compute["wsd"] == tasks.QUICK_GRID_POINTS + 1
  assert compute["autolrs-budget"] == compute["prodigy-cosine"] == 1
  budget = next(r for r in result["rows"] if r["method"] == "autolrs-budget")
  assert budget["probe_fraction"]["median"] <= 0.1 + 1e-9
  table = (out / "table.md").read_text()
  assert "| autolrs-budget:no-anneal |" in table and "ablation" in table
  autolrs = next(r for r in result["rows"] if r["method"] == "autolrs-sgd")
  assert 0.3 < autolrs["probe_fraction"]["median"] < 0.7
  # ExpTest's LR is recorded: its search starts at the range's bottom and grows.
  runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
  assert {r["numerics"] for r in runs} == {host.numerics()}
  exptest_lr = np.asarray(next(r for r in runs if r["method"] == "exptest")["learning_rate"])
  assert exptest_lr[0] == pytest.approx(tasks.LR_RANGES["sgd"][0])
  assert exptest_lr.max() > exptest_lr[0] and np.isfinite(exptest_lr).all()
  for name in ("table.md", "digits_val_loss.png", "digits_autolrs_lr.png", "digits_gp_stage1.png"):
    assert (out / name).stat().st_size > 500, name
  ens = json.loads((out / "ensemble_digits.json").read_text())
  # Every method's models but the ablation and candidate variants of AutoLRS.
  assert ens["pool_size"] >= len([m for m in methods.METHODS if ":" not in m])
  greedy = ens["summary"]["greedy (Caruana)"]
  assert greedy["test_accuracy"]["median"] > 0.8


def test_buffer_allocations_count_the_buffers_of_a_branch_that_is_not_taken():
  x, never = jnp.zeros(64, jnp.float32), jnp.asarray(False)
  empty = overhead.buffer_allocations(overhead.untaken_branch_step(0), x, never)
  full = overhead.buffer_allocations(overhead.untaken_branch_step(8), x, never)
  assert empty.get("constant", 0) == 0 and full["constant"] == 8  # One initial value each.
  assert full["total"] > empty["total"] + 8


def test_choice_rows_compare_autolrs_with_the_cosine_the_peers_and_the_wide_range():
  def runs(method, vals, **kw):
    return [record(method, s, None, [1.0, 1.0, 1.0, v], **kw) for s, v in enumerate(vals)]
  records = [record("cosine", s, lr, [1.0, 1.0, 1.0, v]) for lr, vals in
             ((0.1, [0.5, 0.6, 0.7]), (1.0, [2.0, 2.0, 2.0])) for s, v in enumerate(vals)]
  def held(*lrs):  # One stage per seed, each holding its LR.
    return [[{"stage": 0, "exploited_lr": lr}] for lr in lrs]
  records += [r | {"bo_stages": b} for r, b in zip(
      runs("autolrs-budget", [0.4, 0.66, 0.9], probe_fraction=0.08), held(0.1, 0.1, 0.3))]
  records += [r | {"bo_stages": b} for r, b in zip(
      runs("autolrs-budget-wide", [0.45, 0.66, 0.9], probe_fraction=0.1), held(0.1, 0.1, 0.1))]
  records += runs("prodigy-cosine", [0.5, 0.55, 0.6])
  records += runs("autolrs-sgd", [0.5, 1.5, 0.7])  # Seed 1: 1.5 / 0.6 = 2.5x the cosine.
  (row,) = report.choice_rows(report.summarize(records))
  assert row["task"] == "digits" and row["split"] == "tuning"
  assert row["versus_cosine"] == pytest.approx(0.66 / 0.6)
  assert row["versus_peers"]["prodigy-cosine"] == pytest.approx(0.66 / 0.55)
  assert row["versus_peers"]["schedule-free-adamw"] is None
  assert row["cosine_versus_peers"]["prodigy-cosine"] == pytest.approx(0.6 / 0.55)
  assert row["wide_versus_default"] == pytest.approx(1.0)
  assert row["wide_same_lrs"] == (2, 3)  # Seed 2 held 0.1 instead of 0.3.
  assert row["paper_worst_versus_cosine"]["autolrs-sgd"] == pytest.approx(2.5)
  assert row["paper_worst_versus_cosine"]["autolrs-adam"] is None
  assert row["probe_fraction_max"] == pytest.approx(0.08)
  table = "\n".join(report.choice_markdown(report.summarize(records)))
  assert "1.100 ✗" in table and "2.500 ✗" in table and "(same LRs 2/3)" in table


def test_paired_variants_are_ratios_to_the_full_method_seed_by_seed_with_what_they_change():
  records = [record("autolrs-budget", s, None, [1.0, 1.0, 1.0, v]) for s, v in enumerate([0.5, 1.0, 2.0])]
  records += [record("autolrs-budget:fixed-drift", s, None, [1.0, 1.0, 1.0, v])
              for s, v in enumerate([1.0, 1.0, 1.0])]
  (row,) = report.paired(records)
  assert row["seeds"] == 3 and row["ratio_worst"] == pytest.approx(2.0)
  assert row["ratio_best"] == pytest.approx(0.5) and row["ratio_geometric_mean"] == pytest.approx(1.0)
  (line,) = report.paired_markdown([row])[2:]
  assert "| fixed-drift | ablation: the drift bound for a whole probe" in line


def test_wide_range_candidates_pair_with_the_wide_row():
  records = [record("autolrs-budget", 0, None, [1.0, 1.0, 1.0, 0.5]),
             record("autolrs-budget-wide", 0, None, [1.0, 1.0, 1.0, 2.0]),
             record("autolrs-budget-wide:spike2", 0, None, [1.0, 1.0, 1.0, 1.0])]
  assert report.paired(records) == []  # Not a variant of the default range's row.
  (row,) = report.paired(records, base="autolrs-budget-wide")
  assert row["ratio_worst"] == pytest.approx(0.5)
  (line,) = report.paired_markdown([row])[2:]
  assert "| autolrs-budget-wide:spike2 | candidate, the range 10x wider" in line


def test_variants_pair_with_the_full_method_only_on_the_same_numerics():
  """A run rounds otherwise on another CPU or jax: the same decisions end elsewhere."""
  here, there = {"numerics": "cpu: A"}, {"numerics": "cpu: B"}
  records = [record("autolrs-budget", 0, None, [1.0, 1.0, 1.0, 0.5], **there),
             record("autolrs-budget", 1, None, [1.0, 1.0, 1.0, 0.5], **there),
             record("autolrs-budget", 0, None, [1.0, 1.0, 1.0, 0.8], **here),
             record("autolrs-budget:fixed-drift", 0, None, [1.0, 1.0, 1.0, 0.8], **here),
             record("autolrs-budget:fixed-drift", 2, None, [1.0, 1.0, 1.0, 0.8], **here)]
  (row,) = report.paired(records)
  # Seed 0 against its run on "cpu: A" (not 0.5 on B); seed 2 has no full run.
  assert row["seeds"] == 1 and row["unpaired"] == 1
  assert row["ratio_geometric_mean"] == pytest.approx(1.0)
  assert "| fixed-drift |" in report.paired_markdown([row])[2] and "1 (1 unpaired)" in (
      report.paired_markdown([row])[2])
  # The summaries take each run's latest record: seed 0's on A.
  finals = {(r["method"], r["seed"]): r["final_val_loss"] for r in report.latest(records)}
  assert finals[("autolrs-budget", 0)] == 0.8 and finals[("autolrs-budget", 1)] == 0.5
  assert len(report.latest(records)) == 4


def test_a_run_recorded_on_other_numerics_is_redone_only_with_same_numerics(tmp_path):
  from benchmarks import __main__ as bench  # pylint: disable=g-import-not-at-top
  assert host.numerics().startswith(f"{jax.devices()[0].platform}: ")
  assert f"jax {jax.__version__}" in host.numerics()
  steps = tasks.TASKS["digits"].quick.steps
  elsewhere = record("prodigy-cosine", 0, None, [1.0, 1.0, 1.0, 0.5], steps=steps,
                     numerics="cpu: elsewhere")
  (tmp_path / "runs.jsonl").write_text(json.dumps(elsewhere) + "\n")
  run = lambda *flags: bench.main(["--task", "digits", "--quick", "--methods", "prodigy-cosine",
                                   "--seeds", "1", "--out", str(tmp_path), *flags])
  run()  # Recorded: resumed, nothing run.
  assert len(bench.load_records(tmp_path / "runs.jsonl")) == 1
  run("--same-numerics")
  older, redone = bench.load_records(tmp_path / "runs.jsonl")
  assert older == elsewhere and redone["numerics"] == host.numerics()
  assert report.latest([older, redone]) == [redone]
  run("--same-numerics")  # Now recorded here too.
  assert len(bench.load_records(tmp_path / "runs.jsonl")) == 2


@pytest.mark.slow
def test_the_readme_s_measurement_commands_run(tmp_path):
  """Every ``python -m benchmarks`` command the README shows, at a small size."""
  # Without the tests' compilation cache: a cached program dumps no buffer assignment.
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  bench = lambda *args: subprocess.run([sys.executable, "-m", "benchmarks", *args],
                                       check=True, cwd=ROOT, timeout=900, env=env)
  bench("overhead", "--quick", "--out", str(tmp_path))
  result = json.loads((tmp_path / "overhead.json").read_text())
  assert {(r["base"], r["mode"]) for r in result["rows"]} == {
      (b, m) for b in overhead.BASES for m in overhead.MODES}
  assert {(r["base"], r["mode"]) for r in result["whole_runs"]} == {
      (b, m) for b in overhead.BASES for m in overhead.WHOLE_RUN_MODES}
  assert all(r["timing"]["fast"]["total_s"] > 0 for r in result["whole_runs"])
  leaves = result["state_leaves"]
  assert leaves["scalars"] > leaves["packed_arrays"] == 3
  assert all(t["median_ms"] > 0 for t in leaves["timing"].values())
  bench("step-time", "--steps", "40", "--first-calls", "1", "--compile-repeats", "1",
        "--out", str(tmp_path / "step_time.json"))
  step_time = json.loads((tmp_path / "step_time.json").read_text())
  assert step_time["autolrs"]["first_call_s"] > 0 < step_time["ratio_median"]
  breakdown = step_time["compile_breakdown"]["autolrs_budget"]
  # A stand-in for a part of the controller compiles fewer kernels than the whole.
  assert breakdown["without probe scoring"]["fusions"] < breakdown["whole"]["fusions"]
  assert breakdown["quiet step"]["fusions"] < breakdown["without transitions"]["fusions"]
  bench("probes", "--task", "digits", "--seeds", "1", "--out", str(tmp_path / "probes.json"))
  digits = json.loads((tmp_path / "probes.json").read_text())["tasks"][0]
  assert [r["lr"] for r in digits["rungs"]][:2] == pytest.approx([1.0, 10 ** -0.5])
  bench("probes", "--task", "digits", "--seeds", "1", "--budget-scale", "2",
        "--out", str(tmp_path / "probes_2x.json"))
  doubled = json.loads((tmp_path / "probes_2x.json").read_text())["tasks"][0]
  assert doubled["budget"] == 2 * digits["budget"]
  assert doubled["probe_calls"] == 2 * digits["probe_calls"]
  # A run over a scaled budget, in its own results directory.
  scaled = tmp_path / "scaled"
  bench("--task", "digits", "--methods", "autolrs-budget", "--quick", "--budget-scale", "0.5",
        "--out", str(scaled))
  quick_budget = tasks.TASKS["digits"].quick
  [run] = [json.loads(line) for line in (scaled / "runs.jsonl").read_text().splitlines()]
  assert (run["steps"], run["eval_every"]) == (round(0.5 * quick_budget.steps),
                                               round(0.5 * quick_budget.eval_every))
  assert subprocess.run([sys.executable, "-m", "benchmarks", "--task", "digits",
                         "--budget-scale", "2"], cwd=ROOT, capture_output=True).returncode == 2
  # The generated documents, from the repository's results and these files.
  results = tmp_path / "results"
  subprocess.run(["cp", "-r", str(ROOT / "results"), str(results)], check=True)
  for name in ("step_time.json", "probes.json", "probes_2x.json"):
    (results / name).write_text((tmp_path / name).read_text())
  readme = tmp_path / "README.md"
  readme.write_text((ROOT / "README.md").read_text())
  bench("readme", "--results", str(results), "--readme", str(readme),
        "--docs", str(tmp_path / "benchmarks.md"))
  docs = (tmp_path / "benchmarks.md").read_text()
  assert "What the ladder sees" in docs and "**digits** (tuning task" in docs
  assert "What the ladder would see in a budget 2×" in docs
  assert "<!-- example:begin -->\nGenerated" in readme.read_text()
  # verify, on the repository's records; backfill, on one older record of a quick run.
  bench("verify", "--task", "digits", "--out", str(results / "bench"))
  verified = json.loads((results / "bench" / "verify_digits.json").read_text())
  assert verified["budget"] == tasks.TASKS["digits"].full.steps and verified["rows"]
  quick = tmp_path / "older"
  quick.mkdir()
  run = runner.train(tasks.TASKS["digits"], methods.METHODS["constant"], 0, 300, 25, lr=0.1)
  from benchmarks import __main__ as main  # pylint: disable=g-import-not-at-top
  older = main._record("digits", "constant", 0, 0.1, 300, 25, run)
  del older["final_train_loss"]
  (quick / "runs.jsonl").write_text(json.dumps(older) + "\n")
  bench("backfill", "--task", "digits", "--out", str(quick))
  assert "final_train_loss" in main.load_records(quick / "runs.jsonl")[0]


def test_the_pool_is_refilled_from_the_records_with_the_recorded_model(tmp_path):
  from benchmarks import __main__ as bench  # pylint: disable=g-import-not-at-top
  task, method = tasks.TASKS["digits"], methods.METHODS["constant"]
  budget = task.quick
  run = runner.train(task, method, 0, budget.steps, budget.eval_every, lr=0.1)
  record = bench._record("digits", "constant", 0, 0.1, budget.steps, budget.eval_every, run)
  (tmp_path / "runs.jsonl").write_text(json.dumps(record) + "\n")
  bench.refill_pool("digits", 1, True, tmp_path)
  with np.load(report.pool_path(tmp_path, record)) as pool:
    test_logits = pool["test"]
  model = runner.train(task, method, 0, budget.steps, budget.eval_every, lr=0.1,
                       keep_logits=True)
  np.testing.assert_array_equal(test_logits, model.test_logits.astype(np.float16))


def test_verify_finds_who_reaches_the_target_in_the_budget_and_recommends_the_cheapest():
  from benchmarks import verify  # pylint: disable=g-import-not-at-top
  runs = []
  for seed in (0, 1):
    runs += [record("cosine", seed, 0.1, [0.6, 0.5, 0.4, 0.3]),
             record("cosine", seed, 0.01, [0.9, 0.8, 0.7, 0.6]),
             record("constant", seed, 0.1, [0.5, 0.4, 0.35, 0.32]),
             record("constant", seed, 0.01, [0.9, 0.9, 0.9, 0.9]),
             record("wsd", seed, 0.1, [0.5, 0.4, 0.3, 0.2]),
             record("autolrs-budget", seed, None, [0.5, 0.3, 0.3, 0.25]),
             record("prodigy", seed, None, [0.4, 0.3, 0.3, 0.3] if seed == 0 else [0.9] * 4)]
  summary = report.summarize(runs)["digits"]
  answer = lambda target, budget: verify.verify(summary, runs, target, budget)
  by_method = lambda result: {r["method"]: r for r in result["rows"]}
  # Target 0.3 (the cosine's final loss) in 100 calls. Cost: a grid's other
  # runs of the whole budget, then the run up to the target.
  result = answer(0.3, 100)
  rows = by_method(result)
  assert (rows["autolrs-budget"]["reach_call"], rows["autolrs-budget"]["cost_calls"]) == (50, 50)
  assert (rows["cosine"]["reach_call"], rows["cosine"]["runs"], rows["cosine"]["cost_calls"]) == (
      100, 2, 200)
  assert (rows["wsd"]["reach_call"], rows["wsd"]["runs"], rows["wsd"]["cost_calls"]) == (75, 3, 275)
  assert rows["prodigy"]["reached"] == 1 and rows["prodigy"]["cost_calls"] is None
  assert rows["constant"]["reached"] == 0
  assert result["recommended"] == "autolrs-budget"
  assert [r["method"] for r in result["rows"]][:3] == ["autolrs-budget", "cosine", "wsd"]
  # A budget of 60 calls: the cosine no longer makes it.
  assert by_method(answer(0.3, 60))["cosine"]["cost_calls"] is None
  # Only the warmup-stable-decay schedule reaches 0.2.
  assert answer(0.2, 100)["recommended"] == "wsd"
  assert answer(0.1, 100)["recommended"] is None
  assert "No policy reaches" in verify.markdown("digits", answer(0.1, 100))


def test_backfill_completes_an_older_record_from_the_same_run(tmp_path):
  from benchmarks import __main__ as bench  # pylint: disable=g-import-not-at-top
  task, budget = tasks.TASKS["digits"], tasks.TASKS["digits"].quick
  run = runner.train(task, methods.METHODS["cosine"], 1, budget.steps, budget.eval_every,
                     lr=0.1, keep_logits=True)
  fresh = bench._record("digits", "cosine", 1, 0.1, budget.steps, budget.eval_every, run)
  older = {k: v for k, v in fresh.items() if k not in ("final_train_loss", "classification")}
  (tmp_path / "runs.jsonl").write_text(json.dumps(older) + "\n")
  bench.backfill("digits", tmp_path)
  (filled,) = bench.load_records(tmp_path / "runs.jsonl")
  assert filled["final_train_loss"] == fresh["final_train_loss"]
  assert filled["classification"] == fresh["classification"]
  assert {k: filled[k] for k in older} == older


def test_the_search_cost_line_gives_the_oracle_s_geometric_mean_and_its_seeds_span(tmp_path):
  from benchmarks import render_readme
  assert render_readme.search_cost_sentence(tmp_path) == []  # No oracle run: no line.
  records = [record("autolrs-budget", s, None, [1.0, 1.0, 1.0, v])
             for s, v in enumerate([0.5, 0.4, 0.8])]
  records += [record("autolrs-budget:without-search", s, None, [1.0, 1.0, 1.0, v])
              for s, v in enumerate([0.4, 0.4, 0.4])]
  out = tmp_path / "search_cost"
  out.mkdir()
  (out / "paired.json").write_text(json.dumps({"rows": report.paired(records)}))
  line, _ = render_readme.search_cost_sentence(tmp_path)
  # Per seed 0.8, 1.0, 0.5: geometric mean 0.4 ** (1/3) = 0.737.
  assert "digits 0.737 (3 seeds, per seed 0.500–1.000)" in line and "search_cost" in line


def test_the_noise_floor_line_gives_the_median_ratio_its_seeds_span_and_the_same_lrs(tmp_path):
  from benchmarks import render_readme
  def runs(method, vals, lrs):
    return [record(method, s, None, [1.0, 1.0, 1.0, v],
                   bo_stages=[{"stage": 0, "exploited_lr": lr}]) for s, (v, lr) in
            enumerate(zip(vals, lrs))]
  records = [record("cosine", s, 0.1, [1.0, 1.0, 1.0, 0.5]) for s in range(3)]
  records += runs("autolrs-budget", [0.4, 0.5, 0.6], [0.1, 0.1, 0.1])
  records += runs("autolrs-budget:other-batches", [0.6, 0.4, 0.6], [0.1, 0.1, 0.3])
  out = tmp_path / "seeds"
  out.mkdir()
  (out / "results.json").write_text(json.dumps({"tasks": report.summarize(records)}))
  (out / "paired.json").write_text(json.dumps({"rows": report.paired(records)}))
  (line,) = render_readme.noise_floor_sentence(tmp_path)
  # Medians 0.6 / 0.5; per seed 1.5, 0.8, 1.0; seed 2 held another LR.
  assert "digits 1.200 (3 seeds" in line and "per seed 0.800–1.500" in line
  assert "the same LRs held on 2 of 3" in line
  assert "moves by ×1.202 (one standard error)" in line  # exp(stdev(log ratios) / sqrt(3)).
  fewer = tmp_path / "bench"  # Two of the seeds again, elsewhere: the task is told once.
  fewer.mkdir()
  two = [r for r in records if r["seed"] < 2]
  (fewer / "results.json").write_text(json.dumps({"tasks": report.summarize(two)}))
  (fewer / "paired.json").write_text(json.dumps({"rows": report.paired(two)}))
  assert render_readme.noise_floor_sentence(tmp_path) == [line]


def test_a_paper_mode_above_twice_the_cosine_is_set_beside_the_best_constant_lr():
  from benchmarks import render_readme
  def runs(method, vals, lr=None):
    return [record(method, s, lr, [1.0, 1.0, 1.0, v]) for s, v in enumerate(vals)]
  records = runs("cosine", [0.1, 0.1, 0.1], 0.1) + runs("constant", [0.3, 0.5, 0.4], 0.1)
  records += runs("autolrs-budget", [0.1, 0.1, 0.1]) + runs("autolrs-sgd", [0.3, 0.6, 0.2])
  tasks = report.summarize(records)
  (line,) = render_readme.unannealed_sentence(tasks)
  assert "digits 4.00× (worst seed 5.00×)" in line
  tasks["digits"]["rows"] = [r for r in tasks["digits"]["rows"] if r["method"] != "autolrs-sgd"]
  assert render_readme.unannealed_sentence(tasks) == []  # No paper mode above 2x: no line.


def test_a_peer_autolrs_ends_above_is_set_beside_the_tuned_cosine_s_standing_against_it():
  from benchmarks import render_readme
  def runs(method, vals, lr=None):
    return [record(method, s, lr, [1.0, 1.0, 1.0, v]) for s, v in enumerate(vals)]
  records = runs("cosine", [0.4, 0.4, 0.4], 0.1) + runs("autolrs-budget", [0.5, 0.5, 0.5])
  records += runs("prodigy-cosine", [0.2, 0.2, 0.2]) + runs("dadapt-adamw-cosine", [0.6, 0.6, 0.6])
  tasks = report.summarize(records)
  line, _ = render_readme.peer_bar_sentence(tasks)
  # Above Prodigy only (0.5 / 0.2), where the cosine ends at 0.4 / 0.2; D-Adapt is not told.
  assert "digits (sgd) 2.000× prodigy-cosine's" in line and "dadapt" not in line
  tasks["digits"]["rows"] = [r for r in tasks["digits"]["rows"] if r["method"] != "prodigy-cosine"]
  assert render_readme.peer_bar_sentence(tasks) == []  # Below every peer: no line.


def test_the_numerics_line_sets_each_run_redone_elsewhere_beside_its_first_record(tmp_path):
  from benchmarks import render_readme
  older = [record("autolrs-budget", s, None, [1.0, 1.0, 1.0, v]) for s, v in enumerate([0.5, 0.4])]
  redone = [record("autolrs-budget", s, None, [1.0, 1.0, 1.0, v], numerics="cpu: here")
            for s, v in enumerate([0.5, 0.6])]
  untouched = [record("cosine", 0, 0.1, [1.0, 1.0, 1.0, 0.5])] * 2  # Twice, on one numerics.
  (tmp_path / "bench").mkdir()
  (tmp_path / "bench" / "runs.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in older + untouched + redone))
  (line,) = render_readme.numerics_sentence(tmp_path)
  assert "digits 2 runs, 1 to the last digit, 1.000–1.500" in line
  (tmp_path / "bench" / "runs.jsonl").write_text(json.dumps(older[0]) + "\n")
  assert render_readme.numerics_sentence(tmp_path) == []


def test_the_ablation_table_divides_each_seed_by_the_full_run_on_its_numerics(tmp_path):
  here, there = {"numerics": "cpu: A"}, {"numerics": "cpu: B"}
  records = [record("cosine", s, 0.1, [1.0, 1.0, 1.0, 0.5]) for s in range(2)]
  records += [record("autolrs-budget", 1, None, [1.0, 1.0, 1.0, 0.5], **there),
              record("autolrs-budget:fixed-drift", 1, None, [1.0, 1.0, 1.0, 0.5], **there),
              record("autolrs-budget", 0, None, [1.0, 1.0, 1.0, 0.8], **here),
              record("autolrs-budget", 1, None, [1.0, 1.0, 1.0, 1.0], **here),
              record("autolrs-budget:fixed-drift", 0, None, [1.0, 1.0, 1.0, 0.8], **here)]
  report.write_report(records, tmp_path, "test machine")
  (line,) = [l for l in (tmp_path / "table.md").read_text().splitlines()
             if l.startswith("| autolrs-budget:fixed-drift |")]
  # Seed 1 against its full run on B (0.5), not the latest one (1.0, on A).
  assert "| 1 1 |" in line


def test_the_probes_table_takes_each_cosine_run_s_latest_record(tmp_path, monkeypatch):
  from benchmarks import probe_landscape
  runs = [record("cosine", 0, 0.1, [1.0, 1.0, 1.0, 0.5]), record("cosine", 1, 0.1, [1.0, 1.0, 1.0, 0.7]),
          record("cosine", 0, 0.1, [1.0, 1.0, 1.0, 0.9], numerics="cpu: redone"),
          record("cosine", 0, 1.0, [1.0, 1.0, 1.0, 2.0])]
  (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
  monkeypatch.setattr(probe_landscape, "RUNS", tmp_path / "runs.jsonl")
  by_peak = probe_landscape.cosine_by_peak("digits", 100)
  assert by_peak == {-1.0: pytest.approx(0.8), 0.0: pytest.approx(2.0)}  # Seeds 0 (redone), 1.


def test_the_probes_table_stars_a_path_past_the_bound_only_where_the_default_bounds_it():
  from benchmarks import probe_landscape, render_readme
  assert probe_landscape.drift_bounded(tasks.TASKS["digits"], 300)  # SGD's step scales.
  assert not probe_landscape.drift_bounded(tasks.TASKS["digits-adam"], 300)
  rung = {"lr": 0.1, "end_val_loss": 1.0, "forecast": 1.0, "end_fit": 1.0, "path_ratio": 9.0,
          "cosine_final_val_loss": 0.5}
  task = {"split": "tuning", "probe_calls": 10, "horizon": 100, "seeds": 2, "rungs": [rung]}
  lines = render_readme.probes_section({"drift_bound": 2.0, "tasks": [
      task | {"task": "sgd-task", "optimizer": "sgd", "drift_bounded": True},
      task | {"task": "adam-task", "optimizer": "adam", "drift_bounded": False}]})
  rows = [line for line in lines if line.startswith("| 0.1 |")]
  assert rows[0].endswith("| 9.00 ★ | **0.5** |") and rows[1].endswith("| 9.00 | **0.5** |")
  assert any(line.startswith("**adam-task**") and "no drift bound" in line for line in lines)
