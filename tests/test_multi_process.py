"""Two processes x two CPU devices (jax.distributed, gloo) match one process x four."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "examples" / "multi_process.py"


def run(tmp_path, processes, local_devices):
  out = tmp_path / f"{processes}x{local_devices}"
  subprocess.run([sys.executable, str(SCRIPT), "--launch", str(processes),
                  "--local-devices", str(local_devices), "--out", str(out)],
                 check=True, timeout=300)
  return np.load(out / "run.npz")


@pytest.mark.slow
def test_two_processes_give_the_schedule_and_params_of_one(tmp_path):
  multi = run(tmp_path, 2, 2)
  single = run(tmp_path, 1, 4)
  assert int(multi["processes"]) == 2 and int(single["processes"]) == 1
  assert int(multi["devices"]) == int(single["devices"]) == 4
  np.testing.assert_array_equal(multi["lrs"], single["lrs"])
  assert len(np.unique(multi["lrs"])) > 3  # Probes and exploitation happened.
  np.testing.assert_allclose(multi["w"], single["w"], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(multi["b"], single["b"], rtol=1e-5, atol=1e-5)
