"""AutoLRS across processes: ``jax.distributed`` on localhost, CPU devices, gloo.

    python -m examples.multi_process --launch 2 --local-devices 2 --out out/mp
    python -m examples.multi_process --launch 1 --local-devices 4 --out out/sp

Each launch starts N copies of this script as processes (``--process-id``
0..N-1) that join through ``jax.distributed.initialize`` on a free localhost
port, build one global mesh over all their CPU devices, and train the same
small model with ``jit`` + ``NamedSharding``: every process feeds its own part
of the global batch (``jax.make_array_from_process_local_data``). Process 0
writes the LR of every step and the final parameters to ``<out>/run.npz``.
The same global batch on 1 x 4 or 2 x 2 devices must give the same schedule.

On a TPU pod or GPU cluster the recipe is the same without the CPU flags:
call ``jax.distributed.initialize()`` (arguments come from the cluster's
environment), build the mesh over ``jax.devices()``, and feed process-local
data; AutoLRS needs nothing else, since its state is replicated and every
decision is computed from the globally averaged loss.
"""

import argparse
import pathlib
import socket
import subprocess
import sys

GLOBAL_BATCH = 64
STEPS = 2 * (4 * 3 + 12) + 6


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def launch(args) -> None:
  port = free_port()
  procs = [
      subprocess.Popen([sys.executable, __file__, "--process-id", str(i),
                        "--num-processes", str(args.launch), "--port", str(port),
                        "--local-devices", str(args.local_devices), "--out", str(args.out)])
      for i in range(args.launch)
  ]
  codes = [p.wait(timeout=300) for p in procs]
  if any(codes):
    raise SystemExit(f"a process failed: exit codes {codes}")


def train(args) -> None:
  import jax  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_num_cpu_devices", args.local_devices)
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if args.num_processes > 1:
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{args.port}",
                               num_processes=args.num_processes, process_id=args.process_id)
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top

  import autolrs_jax  # pylint: disable=g-import-not-at-top

  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  batch_sharding = NamedSharding(mesh, P("data"))
  replicated = NamedSharding(mesh, P())
  rng = np.random.default_rng(0)  # Same global data in every process.
  x = rng.normal(size=(STEPS, GLOBAL_BATCH, 8)).astype(np.float32)
  w_true = rng.normal(size=(8, 1)).astype(np.float32)
  y = np.tanh(x @ w_true) + 0.1 * rng.normal(size=(STEPS, GLOBAL_BATCH, 1)).astype(np.float32)
  per_process = GLOBAL_BATCH // jax.process_count()
  mine = slice(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)

  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0, tau=12,
                           tau_probe=3, num_trials=4, tau_max=12, kappa=2.0)
  params = jax.jit(lambda: {"w": jnp.zeros((8, 1), jnp.float32),
                            "b": jnp.zeros((1,), jnp.float32)}, out_shardings=replicated)()
  state = tx.init(params)

  @jax.jit
  def step(params, state, xb, yb):
    loss_fn = lambda p: jnp.mean((jnp.tanh(xb @ p["w"] + p["b"]) - yb) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state, state.learning_rate

  lrs = []
  for t in range(STEPS):
    xb = jax.make_array_from_process_local_data(batch_sharding, x[t, mine])
    yb = jax.make_array_from_process_local_data(batch_sharding, y[t, mine])
    params, state, lr = step(params, state, xb, yb)
    lrs.append(float(jax.device_get(lr)))
  params = jax.device_get(params)
  if jax.process_index() == 0:
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "run.npz", lrs=np.asarray(lrs), w=params["w"], b=params["b"],
             devices=jax.device_count(), processes=jax.process_count())
  if args.num_processes > 1:
    jax.distributed.shutdown()


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--launch", type=int, help="start this many processes")
  parser.add_argument("--process-id", type=int, default=0)
  parser.add_argument("--num-processes", type=int, default=1)
  parser.add_argument("--port", type=int, default=0)
  parser.add_argument("--local-devices", type=int, default=2)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/multi_process"))
  args = parser.parse_args()
  if args.launch:
    launch(args)
  else:
    train(args)


if __name__ == "__main__":
  main()
