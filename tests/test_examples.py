"""The README's main example runs end to end (in its --quick mode)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import autolrs_jax

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mnist1d_example_quick(tmp_path):
  subprocess.run(
      [sys.executable, "-m", "examples.train_mnist1d", "--quick",
       "--out", str(tmp_path)],
      check=True, cwd=ROOT, timeout=600)
  result = json.loads((tmp_path / "mnist1d.json").read_text())
  # --quick: 300 calls; no best-of-grid cosine exists at that budget.
  assert result["steps"] == 300
  autolrs, guessed = result["runs"].values()
  assert list(result["runs"]) == ["AutoLRS (total_steps)", "cosine at a guessed 0.01"]
  assert len(autolrs["learning_rate"]) == len(guessed["learning_rate"]) == 300
  assert 0 < autolrs["probe_steps"] <= 0.25 * 300
  assert min(autolrs["probed_lrs"]) <= autolrs["held_lr"] <= max(autolrs["probed_lrs"])
  assert autolrs["test_accuracy"] > 0.5 and autolrs["eval_steps"][-1] == 300
  assert (tmp_path / "mnist1d.png").stat().st_size > 10_000


def test_the_example_reads_the_benchmark_s_best_of_grid_cosine():
  from examples import train_mnist1d  # pylint: disable=g-import-not-at-top
  tuned = train_mnist1d.best_of_grid("mnist1d", 0, 3000)
  rows = json.loads((ROOT / "results/bench/results.json").read_text())["tasks"]["mnist1d"]
  cosine = next(r for r in rows["rows"] if r["method"] == "cosine")
  assert tuned["peak"] == cosine["lr"] and tuned["grid_runs"] == 7
  assert tuned["final_val_loss"] == cosine["per_seed"]["0"]
  assert train_mnist1d.best_of_grid("mnist1d", 0, 300) is None


@pytest.mark.slow
def test_data_parallel_example_pmap_and_sharding_agree(tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
  results = {}
  for mode in ([], ["--sharding"]):
    subprocess.run(
        [sys.executable, "-m", "examples.data_parallel", "--steps", "80",
         "--tau", "20", "--out", str(tmp_path), *mode],
        check=True, cwd=ROOT, timeout=600, env=env)
  for mode in ("pmap", "sharding"):
    results[mode] = json.loads((tmp_path / f"data_parallel_{mode}_8.json").read_text())
    assert results[mode]["devices"] == 8
  assert results["pmap"]["exploited_lrs"] == results["sharding"]["exploited_lrs"]
  assert len(results["pmap"]["exploited_lrs"]) >= 1


@pytest.mark.slow
def test_search_then_replay_example_quick(tmp_path):
  subprocess.run([sys.executable, "-m", "examples.search_then_replay", "--quick",
                  "--out", str(tmp_path)], check=True, cwd=ROOT, timeout=600)
  result = json.loads((tmp_path / "search_then_replay.json").read_text())
  search, replay, cosine = result["search"], result["replay"], result["cosine"]
  # The replay is the search's calls without the probes that were thrown away.
  assert 0 < search["steps"] - replay["steps"] <= search["probe_steps"]
  assert cosine["steps"] == replay["steps"] and cosine["grid_runs"] == 3
  assert sum(s["steps"] for s in result["segments"]) == replay["steps"]
  found = autolrs_jax.FoundSchedule.load(tmp_path / "search_then_replay_schedule.json")
  assert found.total_steps == replay["steps"]
  assert (tmp_path / "search_then_replay.png").stat().st_size > 10_000
