"""Compiled step time of AutoLRS vs the bare base optimizer on the example's CNN.

    python benchmarks/step_time.py [--steps 2000] [--out out/step_time.json]

Both steps are the same ``jax.jit`` function (forward, backward, update) on
the MNIST-1D CNN with batch 128; they differ only in the optimizer. Each is
warmed up, then timed per step with ``block_until_ready``; AutoLRS is timed
over whole stages so that the BO steps at the end of probes are included in
the mean (the median is the typical step).
"""

import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import autolrs_jax
from autolrs_jax.tasks import mnist1d


def time_steps(tx, data, steps, pass_value):
  model = mnist1d.CNN(rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model, nnx.Param)
  opt_state = tx.init(params)
  x, y = jnp.asarray(data.x_train[:128]), jnp.asarray(data.y_train[:128])

  @jax.jit
  def step(params, opt_state):
    loss_fn = lambda p: mnist1d.cross_entropy(nnx.merge(graphdef, p), x, y)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    kwargs = {"value": loss} if pass_value else {}
    updates, opt_state = tx.update(grads, opt_state, params, **kwargs)
    return optax.apply_updates(params, updates), opt_state, loss

  start = time.perf_counter()
  params, opt_state, loss = step(params, opt_state)
  jax.block_until_ready(loss)
  compile_s = time.perf_counter() - start
  for _ in range(50):
    params, opt_state, loss = step(params, opt_state)
  jax.block_until_ready(loss)
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    params, opt_state, loss = step(params, opt_state)
    jax.block_until_ready((params, opt_state))
    times.append(time.perf_counter() - start)
  times = np.asarray(times)
  return {"median_ms": 1e3 * float(np.median(times)), "mean_ms": 1e3 * float(times.mean()),
          "max_ms": 1e3 * float(times.max()), "first_call_s": compile_s}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=2000)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/step_time.json"))
  args = parser.parse_args()
  data = mnist1d.load(num_samples=2000, num_val=100)
  base = optax.sgd(0.05, momentum=0.9)
  auto = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0,
                             tau=200, num_trials=6, tau_max=1600)
  result = {"device": str(jax.devices()[0]), "steps": args.steps,
            "base": time_steps(base, data, args.steps, pass_value=False),
            "autolrs": time_steps(auto, data, args.steps, pass_value=True)}
  for stat in ("median_ms", "mean_ms"):
    result[f"ratio_{stat[:-3]}"] = result["autolrs"][stat] / result["base"][stat]
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=2))
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
