"""Checkpoint with orbax, resume in a new process: the same run, bit for bit."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

import autolrs_jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 300


def run(*args):
  subprocess.run([sys.executable, "-m", "examples.checkpoint_resume", "--steps", str(STEPS),
                  *map(str, args)], cwd=ROOT,
                 check=True, timeout=300)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
  out = tmp_path_factory.mktemp("full")
  run("--out", out)
  return np.load(out / "run.npz")


# Stage 0 is 3 probes of 8 steps then 60 steps: 10 is inside a probe, 84 the
# first step of stage 1 (a stage boundary), 130 inside its exploitation.
@pytest.mark.parametrize("stop_at,phase,stage", [
    (10, autolrs_jax.PROBE, 0),
    # Half a minute each from a cold compilation cache: in the slow tier.
    pytest.param(84, autolrs_jax.PROBE, 1, marks=pytest.mark.slow),
    pytest.param(130, autolrs_jax.EXPLOIT, 1, marks=pytest.mark.slow)])
def test_resumed_run_equals_uninterrupted_run(tmp_path, full, stop_at, phase, stage):
  assert full["phases"][stop_at] == phase and full["stages"][stop_at] == stage
  ckpt = tmp_path / "ckpt"
  run("--stop-at", stop_at, "--ckpt", ckpt, "--out", tmp_path / "a")
  run("--resume", "--ckpt", ckpt, "--out", tmp_path / "b")
  first, second = np.load(tmp_path / "a" / "run.npz"), np.load(tmp_path / "b" / "run.npz")
  assert int(second["start"]) == stop_at
  np.testing.assert_array_equal(np.concatenate([first["lrs"], second["lrs"]]), full["lrs"])
  params = [k for k in full.files if k.startswith("param_")]
  assert params
  for k in params:
    np.testing.assert_array_equal(second[k], full[k])
