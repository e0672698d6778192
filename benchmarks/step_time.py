"""Compiled step time of AutoLRS vs the bare base optimizer on the example's CNN.

    python -m benchmarks step-time [--steps 2000] [--out out/step_time.json]

Both steps are the repository's one training step (:mod:`benchmarks.training`:
forward, backward, update, the minibatch drawn inside; params and state
donated) on the MNIST-1D CNN with batch 128; they differ only in the
optimizer: AutoLRS in the paper's mode and with a budget (``total_steps``), each
handed the training loss, no validation loss. Each is warmed up, then timed per step with ``block_until_ready``,
the two in alternating blocks of ten steps; AutoLRS is timed over whole stages
so that the BO steps at the end of probes are included in the mean (the
median is the typical step). A first call (trace, lowering, XLA's compile,
one step) is timed on fresh steps, each optimizer's ``--first-calls`` times in
turns, and its median kept: one compile varies by a second from run to run on
2 cores. Then each step's first call once more with JAX's persistent
compilation cache holding it (``cached_first_call_s``): what a notebook's
re-definition of the same step costs with the cache on (trace and lowering,
no XLA compile). Last, where AutoLRS's compile goes (:func:`compile_breakdown`):
XLA's compile of each mode's step whole, without its probe scoring, without
its transitions, and of its quiet step, with their fusion counts.
"""

import argparse
import functools
import json
import pathlib
import tempfile
import time
from unittest import mock

import jax
import numpy as np
import optax
from flax import nnx

import autolrs_jax
from autolrs_jax import _autolrs
from benchmarks import host
from benchmarks import overhead
from benchmarks import training
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss


def cnn_step(tx, data, pass_value, quiet: bool = False):
  """``(step, params, opt_state)`` of the CNN's donating training step
  (``quiet``: the controller's quiet step)."""
  graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(0)), nnx.Param)
  opt_state = tx.init(params)
  step = training.make_step(model_loss(graphdef), tx, data, 128, pass_value=pass_value,
                            opt_state=opt_state, donate=True, validate=False, quiet=quiet)
  return step, params, opt_state


# Where AutoLRS's compile goes: its one-program step compiled with a part of
# the controller replaced by a stand-in that compiles to next to nothing
# (patched in autolrs_jax._autolrs while the step is traced).
WITHOUT = {
    "without probe scoring": ("score_ended_probe", lambda cfg, state, signals: signals),
    "without transitions": ("TRANSITIONS", (_autolrs.continue_phase,) * len(_autolrs.TRANSITIONS)),
}


def xla_compile(tx, data, pass_value, quiet=False, repeats: int = 2) -> dict:
  """The fastest of ``repeats`` XLA compiles of a fresh step, and its fusions."""
  seconds, fusions = [], None
  for _ in range(repeats):
    step, params, opt_state = cnn_step(tx, data, pass_value, quiet)
    lowered = step.trace(params, opt_state, jax.random.key(0)).lower()
    start = time.perf_counter()
    compiled = lowered.compile()
    seconds.append(time.perf_counter() - start)
    fusions = overhead.fusions(compiled)
  return {"compile_s": min(seconds), "fusions": fusions}


def compile_breakdown(optimizers: dict, data, repeats: int = 2) -> dict:
  """Per mode, the XLA compile of its one-program step whole, without each
  part of :data:`WITHOUT`, and of its quiet step; the bare step's beside."""
  compile_ = functools.partial(xla_compile, data=data, repeats=repeats)
  out = {"base": {"whole": compile_(optimizers["base"], pass_value=False)}}
  for name, tx in optimizers.items():
    if name == "base":
      continue
    rows = {"whole": compile_(tx, pass_value=True),
            "quiet step": compile_(tx, pass_value=True, quiet=True)}
    for variant, (attribute, stand_in) in WITHOUT.items():
      with mock.patch.object(_autolrs, attribute, stand_in):
        rows[variant] = compile_(tx, pass_value=True)
    out[name] = rows
  return out


def first_call_s(tx, data, pass_value) -> float:
  """Seconds of the first call of a fresh step of ``tx`` (compilation included)."""
  return overhead.first_call_s(*cnn_step(tx, data, pass_value))


def cached_first_calls(optimizers: dict, data) -> dict[str, float]:
  """Each optimizer's first call with JAX's persistent compilation cache on and
  holding its step (compiled once before, into a temporary directory)."""
  options = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
  saved = {name: getattr(jax.config, name) for name in options}
  with tempfile.TemporaryDirectory() as cache:
    for name, value in zip(options, (cache, 0.0, 0)):
      jax.config.update(name, value)
    try:
      for name, tx in optimizers.items():  # Fills the cache.
        first_call_s(tx, data, pass_value=name != "base")
      return {name: first_call_s(tx, data, pass_value=name != "base")
              for name, tx in optimizers.items()}
    finally:
      for name, value in saved.items():
        jax.config.update(name, value)


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
  parser.add_argument("--first-calls", type=int, default=3)
  parser.add_argument("--compile-repeats", type=int, default=2)
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
  optimizers = {"base": base, "autolrs": auto, "autolrs_budget": budget}
  first_calls = {name: [] for name in optimizers}
  for _ in range(args.first_calls):
    for name, tx in optimizers.items():
      first_calls[name].append(first_call_s(tx, data, pass_value=name != "base"))
  cached = cached_first_calls(optimizers, data)
  breakdown = compile_breakdown(optimizers, data, args.compile_repeats)
  # Where a first call's seconds go, on fresh steps.
  phases = {name: compile_phases(*cnn_step(tx, data, pass_value=name != "base"))
            for name, tx in optimizers.items()}
  result = {"device": str(jax.devices()[0]), "host": host.numerics(), "steps": args.steps,
            "compile_breakdown": breakdown} | {
      name: timing[name] | phases[name] | {
          "first_call_s": float(np.median(first_calls[name])), "first_calls_s": first_calls[name],
          "cached_first_call_s": cached[name]}
      for name in steps}
  for name, suffix in (("autolrs", ""), ("autolrs_budget", "_budget")):
    for stat in ("median_ms", "mean_ms", "first_call_s"):
      result[f"ratio_{stat.rsplit('_', 1)[0]}{suffix}"] = (
          result[name][stat] / result["base"][stat])
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=2))
  print(json.dumps(result, indent=2))
