"""MNIST-1D with AutoLRS on every local device: pmap, or jit with shardings.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m examples.data_parallel
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m examples.data_parallel --sharding

The global batch is split over the devices. With ``pmap`` each replica runs
AutoLRS with ``axis_name='batch'``, which averages the loss over replicas, so
every replica takes the same decisions; gradients are averaged by the step,
as for any optax optimizer. With ``--sharding`` one ``jit`` step runs on a
``NamedSharding`` mesh: the batch is sharded, parameters and the AutoLRS state
replicated, and the compiler inserts the collectives.

Prints the test accuracy, the LR of each stage and the median step time, and
writes them to ``<out>/data_parallel_<mode>_<devices>.json``.
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
from jax.sharding import NamedSharding, PartitionSpec as P

import autolrs_jax
from benchmarks.tasks import accuracy
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss


def make_tx(args, axis_name=None):
  return autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0,
                             tau=args.tau, num_trials=6, tau_max=4 * args.tau,
                             axis_name=axis_name)


def loss_fn(graphdef, params, x, y):
  return model_loss(graphdef)(params, x, y)


def run_pmap(args, graphdef, params, data, devices):
  n = len(devices)
  tx = make_tx(args, axis_name="batch")
  stack = lambda tree: jax.tree.map(lambda a: jnp.stack([a] * n), tree)
  params = stack(params)
  state = jax.pmap(tx.init, devices=devices)(params)

  def step(params, state, x, y):
    loss, grads = jax.value_and_grad(loss_fn, argnums=1)(graphdef, params, x, y)
    grads = jax.lax.pmean(grads, "batch")
    updates, state = tx.update(grads, state, params, value=loss)  # pmean'd inside.
    return optax.apply_updates(params, updates), state, state.learning_rate, state.phase

  step = jax.pmap(step, axis_name="batch", devices=devices)
  shape = lambda a: a.reshape(n, -1, *a.shape[1:])
  return params, state, step, shape, lambda tree: jax.tree.map(lambda a: a[0], tree)


def run_sharding(args, graphdef, params, data, devices):
  mesh = jax.make_mesh((len(devices),), ("batch",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)
  replicated, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
  tx = make_tx(args)
  params = jax.device_put(params, replicated)
  state = tx.init(params)

  @jax.jit
  def step(params, state, x, y):
    loss, grads = jax.value_and_grad(loss_fn, argnums=1)(graphdef, params, x, y)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state, state.learning_rate, state.phase

  return params, state, step, lambda a: jax.device_put(a, batch), lambda tree: tree


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sharding", action="store_true", help="jit + NamedSharding, not pmap")
  parser.add_argument("--devices", type=int, default=None, help="default: all local devices")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--batch-size", type=int, default=256, help="global batch")
  parser.add_argument("--tau", type=int, default=200)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
  args = parser.parse_args()
  devices = jax.local_devices()[:args.devices]
  if args.batch_size % len(devices):
    raise SystemExit(f"--batch-size {args.batch_size} must divide over {len(devices)} devices")

  data = mnist1d.load()
  graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(0)), nnx.Param)
  runner = run_sharding if args.sharding else run_pmap
  params, state, step, place, first = runner(args, graphdef, params, data, devices)
  rng = np.random.default_rng(0)
  lrs, phases, times = [], [], []
  for _ in range(args.steps):
    idx = rng.integers(0, len(data.x_train), args.batch_size)
    x, y = place(data.x_train[idx]), place(data.y_train[idx])
    start = time.perf_counter()
    params, state, lr, phase = step(params, state, x, y)
    jax.block_until_ready(params)
    times.append(time.perf_counter() - start)
    lrs.append(np.asarray(first(lr)))
    phases.append(np.asarray(first(phase)))
  test_accuracy = accuracy(graphdef, first(params), data.x_test, data.y_test)
  lrs, phases = np.asarray(lrs), np.asarray(phases)
  exploited = sorted({float(lr) for lr, ph in zip(lrs, phases) if ph == autolrs_jax.EXPLOIT},
                     key=lambda v: np.argmax((lrs == v) & (phases == autolrs_jax.EXPLOIT)))
  mode = "sharding" if args.sharding else "pmap"
  result = {"mode": mode, "devices": len(devices), "global_batch": args.batch_size,
            "steps": args.steps, "test_accuracy": test_accuracy, "exploited_lrs": exploited,
            "median_step_ms": 1e3 * float(np.median(times[50:])),
            "first_step_s": times[0]}
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / f"data_parallel_{mode}_{len(devices)}.json").write_text(json.dumps(result, indent=2))
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  main()
