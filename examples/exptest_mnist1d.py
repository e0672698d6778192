"""Train the MNIST-1D CNN with an ExpTest-style controller choosing the learning rate.

    python examples/exptest_mnist1d.py            # 6000 steps, well under a minute on 2 CPU cores
    python examples/exptest_mnist1d.py --quick    # a smoke run (800 steps, windows of 25)

``exptest(optax.sgd(1.0, momentum=0.9))`` starts from no initial learning rate:
it searches upwards from 1e-6, then tunes (see ``autolrs_jax.exptest``). The
step is the project's compiled NNX step (``autolrs_jax.tasks.loop``, with the
loss passed as ``value=``); this script drives it itself rather than through
``loop.train`` because ``loop.train`` records the learning rate of AutoLRS
only, and this example prints the controller's learning-rate trajectory.
"""

import argparse
import json
import pathlib
import time

import jax
import numpy as np
import optax
from flax import nnx

from autolrs_jax.exptest import ExpTestState
from autolrs_jax.exptest import exptest
from autolrs_jax.exptest import PHASE_NAMES
from autolrs_jax.exptest import TUNE
from autolrs_jax.autolrs import describe
from autolrs_jax.autolrs import find_state
from autolrs_jax.tasks import loop
from autolrs_jax.tasks import mnist1d


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
  model = mnist1d.CNN(rngs=nnx.Rngs(args.seed))
  tx = exptest(optax.sgd(1.0, momentum=0.9), window=args.window)
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  step = loop.make_train_step(
      mnist1d.cross_entropy, data.x_train, data.y_train, data.x_val, data.y_val,
      args.batch_size, pass_value=True, pass_validation=False)
  keys = jax.random.split(jax.random.key(args.seed), args.steps)

  start = time.perf_counter()
  lrs, phases, losses = [], [], []
  for i in range(args.steps):
    # The LR and phase this step applies (device arrays: no host sync here).
    state = find_state(optimizer.opt_state, kind=ExpTestState)
    lrs.append(state.learning_rate)
    phases.append(state.phase)
    losses.append(step(model, optimizer, keys[i])[0])
  lrs, phases, losses = (np.asarray(jax.device_get(x)) for x in (lrs, phases, losses))
  seconds = time.perf_counter() - start
  test_accuracy = mnist1d.accuracy(model, data.x_test, data.y_test)
  info = describe(optimizer.opt_state)
  runs = trajectory(lrs, phases)

  print("learning-rate trajectory (first step: lr, phase, steps):")
  for row in runs:
    print(f"  {row['first_step']:6d}: {row['lr']:.3g}  {row['phase']:6s} {row['steps']} steps")
  print(f"search ended at step {int(np.argmax(phases == TUNE))}, "
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
