"""Train a Flax NNX CNN on MNIST-1D with AutoLRS choosing the learning rate.

    python -m examples.train_mnist1d            # under a minute on 2 CPU cores
    python -m examples.train_mnist1d --quick    # a smoke run

(from the repository's root, where ``benchmarks`` holds the data and model).

Writes ``<out>/mnist1d.json`` (test accuracy, steps, LR chosen per stage) and
``<out>/mnist1d.png`` (LR per step, probes visible, over the loss curve).
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


def planned_steps(tau: int, tau_max: int, num_trials: int, stages: int) -> int:
  """Update calls of ``stages`` AutoLRS stages (the first probes tau // 10 long, doubling)."""
  total, tau_probe = 0, tau // 10
  for _ in range(stages):
    total += num_trials * tau_probe + tau
    if 2 * tau <= tau_max:
      tau, tau_probe = 2 * tau, 2 * tau_probe
  return total


def stage_summary(history: training.History) -> list[dict]:
  """The LR each stage exploited, and how many steps it searched."""
  rows = []
  for stage in np.unique(history.stage):
    in_stage = history.stage == stage
    exploit = in_stage & (history.phase == autolrs_jax.EXPLOIT)
    rows.append({
        "stage": int(stage),
        "probe_steps": int(np.sum(in_stage & (history.phase == autolrs_jax.PROBE))),
        "exploit_steps": int(np.sum(exploit)),
        "lr": float(history.learning_rate[exploit][0]) if exploit.any() else None,
    })
  return rows


def plot(history: training.History, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  steps = np.arange(len(history.loss))
  fig, (ax_lr, ax_loss) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
  for phase, color in ((autolrs_jax.PROBE, "tab:orange"), (autolrs_jax.EXPLOIT, "tab:blue")):
    on = history.phase == phase
    ax_lr.scatter(steps[on], history.learning_rate[on], s=2, color=color,
                  label=autolrs_jax.PHASE_NAMES[phase])
  ax_lr.set_yscale("log")
  ax_lr.set_ylabel("learning rate")
  ax_lr.legend(loc="upper right", markerscale=5)
  ax_lr.set_title("AutoLRS on MNIST-1D: probes (orange) restart from the stage's snapshot")
  ax_loss.plot(steps, history.loss, lw=0.5, color="0.6", label="minibatch loss")
  window = 50
  smooth = np.convolve(history.loss, np.ones(window) / window, mode="valid")
  ax_loss.plot(steps[window - 1:], smooth, color="k", label=f"mean of {window}")
  ax_loss.set_yscale("log")
  ax_loss.set_xlabel("update calls (probe steps included)")
  ax_loss.set_ylabel("training loss")
  ax_loss.legend(loc="upper right")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--stages", type=int, default=5,
                      help="train until this many stages are done (not in a probe)")
  parser.add_argument("--steps", type=int, default=20_000, help="cap on update calls")
  parser.add_argument("--batch-size", type=int, default=128)
  parser.add_argument("--min-lr", type=float, default=1e-3)
  parser.add_argument("--max-lr", type=float, default=1.0)
  parser.add_argument("--tau", type=int, default=200)
  parser.add_argument("--tau-max", type=int, default=1600)
  parser.add_argument("--num-trials", type=int, default=6)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
  parser.add_argument("--quick", action="store_true", help="600 steps, for a smoke test")
  args = parser.parse_args()
  if args.quick:
    args.stages, args.tau, args.tau_max = 2, 100, 200

  data = mnist1d.load()
  graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(args.seed)), nnx.Param)
  tx = autolrs_jax.autolrs(
      optax.sgd(1.0, momentum=0.9),
      min_lr=args.min_lr, max_lr=args.max_lr, tau=args.tau,
      num_trials=args.num_trials, tau_max=args.tau_max, seed=args.seed)
  # The run ends after its last stage: that many steps, unless --steps is fewer.
  steps = min(args.steps, planned_steps(args.tau, args.tau_max, args.num_trials, args.stages))
  start = time.perf_counter()
  params, _, history = training.train(
      params, tx, model_loss(graphdef), data, steps=steps, batch_size=args.batch_size,
      seed=args.seed, stop_after_stage=args.stages - 1, progress=True)
  seconds = time.perf_counter() - start
  test_accuracy = accuracy(graphdef, params, data.x_test, data.y_test)
  probe_steps = int(np.sum(history.phase == autolrs_jax.PROBE))

  args.out.mkdir(parents=True, exist_ok=True)
  result = {
      "test_accuracy": test_accuracy,
      "steps": len(history.loss),
      "probe_steps": probe_steps,
      "wall_seconds": seconds,
      "stages": stage_summary(history),
      "config": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items()},
  }
  (args.out / "mnist1d.json").write_text(json.dumps(result, indent=2))
  plot(history, args.out / "mnist1d.png")
  print(f"test accuracy {test_accuracy:.4f} after {len(history.loss)} steps "
        f"({probe_steps} of them probes), {seconds:.0f} s")
  for row in result["stages"]:
    print(f"  stage {row['stage']}: {row['probe_steps']} probe steps, "
          f"{row['exploit_steps']} steps at lr {row['lr']}")
  print(f"wrote {args.out / 'mnist1d.json'} and {args.out / 'mnist1d.png'}")


if __name__ == "__main__":
  main()
