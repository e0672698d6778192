"""The README's main example runs end to end (in its --quick mode)."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_mnist1d_example_quick(tmp_path):
  subprocess.run(
      [sys.executable, str(ROOT / "examples" / "train_mnist1d.py"), "--quick",
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
