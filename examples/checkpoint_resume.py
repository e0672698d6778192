"""Checkpoint AutoLRS mid-run with orbax and resume it in a new process.

    python examples/checkpoint_resume.py --steps 400 --out out/full
    python examples/checkpoint_resume.py --steps 400 --stop-at 130 --ckpt out/ckpt --out out/a
    python examples/checkpoint_resume.py --steps 400 --resume --ckpt out/ckpt --out out/b

The AutoLRS state is a pytree of arrays inside ``nnx.Optimizer.opt_state``
(snapshot, BO observations, probe buffer, PRNG key included), so orbax saves
it with the model like any optimizer state. Minibatches are drawn from a key
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
from autolrs_jax.tasks import loop
from autolrs_jax.tasks import mnist1d


def build(seed: int):
  model = mnist1d.CNN(channels=16, rngs=nnx.Rngs(seed))
  tx = autolrs_jax.autolrs(optax.adam(1.0), min_lr=1e-4, max_lr=1e-1, tau=60,
                           tau_probe=8, num_trials=3, tau_max=120, seed=seed)
  return model, nnx.Optimizer(model, tx, wrt=nnx.Param)


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
  model, optimizer = build(args.seed)
  checkpointer = ocp.StandardCheckpointer()
  start = 0
  if args.resume:
    target = {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}
    restored = checkpointer.restore(args.ckpt.resolve(), target)
    nnx.update(model, restored["model"])
    nnx.update(optimizer, restored["optimizer"])
    start = int(autolrs_jax.find_state(optimizer.opt_state).count)
  stop = args.stop_at if args.stop_at is not None else args.steps

  step = loop.make_train_step(
      mnist1d.cross_entropy, data.x_train, data.y_train, data.x_val, data.y_val,
      batch_size=64, pass_value=True, pass_validation=True)
  keys = jax.random.split(jax.random.key(args.seed), args.steps)
  lrs, phases, stages = [], [], []
  for i in range(start, stop):
    _, lr, phase, stage = step(model, optimizer, keys[i])
    lrs.append(float(lr))
    phases.append(int(phase))
    stages.append(int(stage))

  if args.stop_at is not None:
    checkpointer.save(args.ckpt.resolve(),
                      {"model": nnx.state(model), "optimizer": nnx.state(optimizer)}, force=True)
    checkpointer.wait_until_finished()
  args.out.mkdir(parents=True, exist_ok=True)
  leaves = [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
  np.savez(args.out / "run.npz", lrs=np.asarray(lrs), phases=np.asarray(phases),
           stages=np.asarray(stages), start=start,
           **{f"param_{i}": leaf for i, leaf in enumerate(leaves)})
  info = autolrs_jax.describe(optimizer.opt_state)
  print(f"ran steps {start}..{stop}: stage {info['stage']}, {info['phase']}, "
        f"lr {info['learning_rate']:.3g}")


if __name__ == "__main__":
  main()
