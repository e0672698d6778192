"""Train the MNIST-1D CNN with an ExpTest-style controller choosing the learning rate.

    python -m examples.exptest_mnist1d            # 6000 steps, well under a minute on 2 CPU cores
    python -m examples.exptest_mnist1d --quick    # a smoke run (800 steps, windows of 25)

``exptest(optax.sgd(1.0, momentum=0.9))`` starts from no initial learning rate:
it searches upwards from 1e-6, then tunes (see ``autolrs_jax.exptest``). The
step is the repository's one compiled training step (``benchmarks.training``),
which passes the loss as ``value=`` and records the controller's learning rate
and phase at every step.
"""

import argparse
import json
import pathlib
import time

import numpy as np
import optax
from flax import nnx

import autolrs_jax
from benchmarks import training
from benchmarks.tasks import accuracy
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss

PHASE_NAMES = ("search", "tune")  # Indexed by autolrs_jax.SEARCH and TUNE.


def trajectory(lrs: np.ndarray, phases: np.ndarray) -> list[dict]:
  """The runs of constant learning rate: first step, LR, phase, length."""
  rows = []
  for i, (lr, phase) in enumerate(zip(lrs, phases)):
    if i == 0 or lr != lrs[i - 1] or phase != phases[i - 1]:
      rows.append({"first_step": i, "lr": float(lr), "phase": PHASE_NAMES[int(phase)],
                   "steps": 0})
    rows[-1]["steps"] += 1
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=6000, help="update calls")
  parser.add_argument("--batch-size", type=int, default=128)
  parser.add_argument("--window", type=int, default=100, help="exptest's window")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", type=pathlib.Path, default=None,
                      help="also write <out>/exptest_mnist1d.json")
  parser.add_argument("--quick", action="store_true", help="800 steps, windows of 25")
  args = parser.parse_args()
  if args.quick:
    args.steps, args.window = 800, 25

  data = mnist1d.load()
  graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(args.seed)), nnx.Param)
  tx = autolrs_jax.exptest(optax.sgd(1.0, momentum=0.9), window=args.window)
  start = time.perf_counter()
  params, opt_state, history = training.train(
      params, tx, model_loss(graphdef), data, steps=args.steps, batch_size=args.batch_size,
      seed=args.seed)
  seconds = time.perf_counter() - start
  test_accuracy = accuracy(graphdef, params, data.x_test, data.y_test)
  info = autolrs_jax.describe(opt_state)
  lrs, phases, losses = history.learning_rate, history.phase, history.loss
  runs = trajectory(lrs, phases)

  print("learning-rate trajectory (first step: lr, phase, steps):")
  for row in runs:
    print(f"  {row['first_step']:6d}: {row['lr']:.3g}  {row['phase']:6s} {row['steps']} steps")
  print(f"search ended at step {int(np.argmax(phases == autolrs_jax.TUNE))}, "
        f"{info['num_decreases']} plateau decreases, {info['num_cuts']} divergence cuts")
  print(f"final training loss (mean of last 100) {losses[-100:].mean():.4f}")
  print(f"test accuracy {test_accuracy:.4f} after {args.steps} steps, {seconds:.0f} s")
  if args.out is not None:
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "test_accuracy": test_accuracy,
        "steps": args.steps,
        "wall_seconds": seconds,
        "trajectory": runs,
        "final_state": info,
        "config": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items()},
    }
    path = args.out / "exptest_mnist1d.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
  main()
