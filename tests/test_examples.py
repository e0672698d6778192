"""The README's main example runs end to end (in its --quick mode)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import autolrs_jax

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_mnist1d_example_quick(tmp_path):
  subprocess.run(
      [sys.executable, "-m", "examples.train_mnist1d", "--quick",
       "--out", str(tmp_path)],
      check=True, cwd=ROOT, timeout=600)
  result = json.loads((tmp_path / "mnist1d.json").read_text())
  # --quick: two stages (tau = 100 then 200, 6 probes of 10 then 20 steps).
  assert [s["stage"] for s in result["stages"]] == [0, 1]
  assert [s["exploit_steps"] for s in result["stages"]] == [100, 200]
  assert result["steps"] == sum(s["probe_steps"] + s["exploit_steps"] for s in result["stages"])
  assert 0 < result["probe_steps"] <= 6 * 10 + 6 * 20
  assert result["test_accuracy"] > 0.5
  assert (tmp_path / "mnist1d.png").stat().st_size > 10_000


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
