"""Checkpoint AutoLRS mid-run with orbax and resume it in a new process.

    python -m examples.checkpoint_resume --steps 400 --out out/full
    python -m examples.checkpoint_resume --steps 400 --stop-at 130 --ckpt out/ckpt --out out/a
    python -m examples.checkpoint_resume --steps 400 --resume --ckpt out/ckpt --out out/b

The AutoLRS state is a pytree of arrays (snapshot, BO observations, probe
buffer, PRNG key included), so orbax saves it with the parameters like any
optimizer state. Minibatches are drawn from a key
per step, so a resumed run sees the same data as an uninterrupted one: it
makes the same LR decisions and ends with the same parameters, bit for bit
on CPU. Each run writes ``<out>/run.npz`` with the LR, phase and stage of
every step it ran, and the final parameters.
"""

import argparse
import pathlib

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

import autolrs_jax
from benchmarks import training
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss


def build(seed: int):
  graphdef, params = nnx.split(mnist1d.CNN(channels=16, rngs=nnx.Rngs(seed)), nnx.Param)
  tx = autolrs_jax.autolrs(optax.adam(1.0), min_lr=1e-4, max_lr=1e-1, tau=60,
                           tau_probe=8, num_trials=3, tau_max=120, seed=seed)
  return graphdef, params, tx


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--stop-at", type=int, default=None, help="save a checkpoint here and exit")
  parser.add_argument("--resume", action="store_true", help="start from the checkpoint")
  parser.add_argument("--ckpt", type=pathlib.Path, default=pathlib.Path("out/ckpt"))
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/checkpoint_resume"))
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  data = mnist1d.load(num_samples=1500, num_val=200)
  graphdef, params, tx = build(args.seed)
  opt_state = tx.init(params)
  checkpointer = ocp.StandardCheckpointer()
  start = 0
  if args.resume:
    restored = checkpointer.restore(args.ckpt.resolve(),
                                    {"params": params, "opt_state": opt_state})
    params, opt_state = restored["params"], restored["opt_state"]
    start = int(autolrs_jax.find_state(opt_state).count)
  stop = args.stop_at if args.stop_at is not None else args.steps

  step = training.make_step(model_loss(graphdef), tx, data, batch_size=64, pass_value=True,
                            opt_state=opt_state)
  keys = jax.random.split(jax.random.key(args.seed), args.steps)
  lrs, phases, stages = [], [], []
  for i in range(start, stop):
    params, opt_state, record = step(params, opt_state, keys[i])
    lrs.append(float(record.learning_rate))
    phases.append(int(record.phase))
    stages.append(int(record.stage))

  if args.stop_at is not None:
    checkpointer.save(args.ckpt.resolve(), {"params": params, "opt_state": opt_state},
                      force=True)
    checkpointer.wait_until_finished()
  args.out.mkdir(parents=True, exist_ok=True)
  leaves = [np.asarray(x) for x in jax.tree.leaves(params)]
  np.savez(args.out / "run.npz", lrs=np.asarray(lrs), phases=np.asarray(phases),
           stages=np.asarray(stages), start=start,
           **{f"param_{i}": leaf for i, leaf in enumerate(leaves)})
  info = autolrs_jax.describe(opt_state)
  print(f"ran steps {start}..{stop}: stage {info['stage']}, {info['phase']}, "
        f"lr {info['learning_rate']:.3g}")


if __name__ == "__main__":
  main()
