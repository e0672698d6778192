"""Compiled step time of AutoLRS vs the bare base optimizer on the example's CNN.

    python -m benchmarks step-time [--steps 2000] [--out out/step_time.json]

Both steps are the repository's one training step (:mod:`benchmarks.training`:
forward, backward, update, the minibatch drawn inside; params and state
donated) on the MNIST-1D CNN with batch 128; they differ only in the
optimizer: AutoLRS in the paper's mode and with a budget (``total_steps``), each
handed the training loss, no validation loss. Each is warmed up, then timed per step with ``block_until_ready``,
the two in alternating blocks of ten steps; AutoLRS is timed over whole stages
so that the BO steps at the end of probes are included in the mean (the
median is the typical step).
"""

import argparse
import json
import pathlib
import time

import jax
import optax
from flax import nnx

import autolrs_jax
from benchmarks import training
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss


def cnn_step(tx, data, pass_value):
  """``(step, params, opt_state)`` of the CNN's donating training step."""
  graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(0)), nnx.Param)
  opt_state = tx.init(params)
  step = training.make_step(model_loss(graphdef), tx, data, 128, pass_value=pass_value,
                            opt_state=opt_state, donate=True, validate=False)
  return step, params, opt_state


def compile_phases(step, params, opt_state) -> dict[str, float]:
  """Seconds to trace, lower and XLA-compile ``step`` (a fresh ``jax.jit``), apart."""
  start = time.perf_counter()
  traced = step.trace(params, opt_state, jax.random.key(0))
  traced_at = time.perf_counter()
  lowered = traced.lower()
  lowered_at = time.perf_counter()
  lowered.compile()
  return {"trace_s": traced_at - start, "lower_s": lowered_at - traced_at,
          "compile_s": time.perf_counter() - lowered_at}


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks step-time")
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/step_time.json"))
  args = parser.parse_args(argv)
  data = mnist1d.load(num_samples=2000, num_val=100)
  base = optax.sgd(0.05, momentum=0.9)
  sgd = optax.sgd(1.0, momentum=0.9)
  auto = autolrs_jax.autolrs(sgd, min_lr=1e-3, max_lr=1.0, tau=200, num_trials=6, tau_max=1600)
  budget = autolrs_jax.autolrs(sgd, min_lr=1e-3, max_lr=1.0, total_steps=3000)
  steps = {"base": cnn_step(base, data, pass_value=False),
           "autolrs": cnn_step(auto, data, pass_value=True),
           "autolrs_budget": cnn_step(budget, data, pass_value=True)}
  timing = training.time_steps(steps, args.steps, warmup=50)
  # Where the first call's seconds go, on fresh copies of the steps (the timed
  # ones are compiled and their states donated by now).
  phases = {}
  for name, tx in (("base", base), ("autolrs", auto), ("autolrs_budget", budget)):
    phases[name] = compile_phases(*cnn_step(tx, data, pass_value=name != "base"))
  result = {"device": str(jax.devices()[0]), "steps": args.steps} | {
      name: timing[name] | phases[name] for name in steps}
  for name, suffix in (("autolrs", ""), ("autolrs_budget", "_budget")):
    for stat in ("median_ms", "mean_ms", "first_call_s"):
      result[f"ratio_{stat.rsplit('_', 1)[0]}{suffix}"] = (
          result[name][stat] / result["base"][stat])
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=2))
  print(json.dumps(result, indent=2))
