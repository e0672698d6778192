"""AutoLRS with a step budget on MNIST-1D, beside a guessed and a tuned cosine.

    python -m examples.train_mnist1d            # about a minute on 2 CPU cores
    python -m examples.train_mnist1d --quick    # a smoke run (300 calls)

(from the repository's root, where ``benchmarks`` holds the data and model).

Three schedules of the same Flax NNX CNN, SGD with momentum 0.9, and the same
3,000 update calls (AutoLRS's probe steps count as calls):

- AutoLRS given only the range 1e-3..1 and ``total_steps``;
- a cosine (5% warm-up) at the peak a user guesses without tuning: 0.01,
  Keras's default SGD learning rate;
- the benchmark's best-of-grid cosine: the best of 7 peaks, read from
  ``results/bench`` (the same seed's run; nothing is rerun), which cost 7 runs.

Writes ``<out>/mnist1d.json`` (final validation loss and test accuracy of
each, AutoLRS's search) and ``<out>/mnist1d.png`` (LR and validation loss over
update calls).
"""

import argparse
import json
import pathlib

import numpy as np
import optax

import autolrs_jax
from benchmarks import methods
from benchmarks import runner
from benchmarks.tasks import TASKS

GUESSED_PEAK = 0.01  # Keras's default SGD learning rate: a guess, not a tuning.
RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results" / "bench"


def cosine_lrs(steps: int, peak: float) -> np.ndarray:
  """The benchmark's cosine schedule (5% warm-up) at each update call."""
  schedule = optax.warmup_cosine_decay_schedule(
      0.0, peak, warmup_steps=max(steps // 20, 1), decay_steps=steps)
  return np.asarray([schedule(i) for i in range(steps)])


def best_of_grid(task: str, seed: int, steps: int) -> dict | None:
  """The benchmark's best-of-grid cosine on ``task``, its run of ``seed``;
  None without results at this budget."""
  results, runs = RESULTS / "results.json", RESULTS / "runs.jsonl"
  if not (results.exists() and runs.exists()):
    return None
  rows = json.loads(results.read_text())["tasks"].get(task, {})
  if rows.get("steps") != steps:
    return None
  peak = next(r["lr"] for r in rows["rows"] if r["method"] == "cosine")
  for line in runs.read_text().splitlines():
    run = json.loads(line)
    if (run["task"], run["method"], run["seed"], run["steps"]) == (task, "cosine", seed, steps) \
        and np.isclose(run["lr"], peak):
      return {"peak": peak, "grid_runs": len(rows["grid"]), "eval_steps": run["eval_steps"],
              "val_loss": run["val_loss"], "final_val_loss": run["final_val_loss"],
              "test_accuracy": run["test_metric"]}
  return None


def summary(run: runner.Run) -> dict:
  return {"final_val_loss": run.final_val_loss, "test_accuracy": run.test_accuracy,
          "eval_steps": run.eval_steps.tolist(), "val_loss": run.val_loss.tolist()}


def plot(runs: dict[str, dict], path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, (ax_lr, ax_loss) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
  colors = dict(zip(runs, ("tab:red", "tab:gray", "tab:blue")))
  for name, run in runs.items():
    if "learning_rate" in run:
      ax_lr.plot(run["learning_rate"], color=colors[name], lw=1, label=name)
    ax_loss.plot(run["eval_steps"], run["val_loss"], color=colors[name], label=name)
  ax_lr.set_yscale("log")
  ax_lr.set_ylim(1e-4, 2.0)  # The schedules' ends at 0 would take the axis down to 1e-9.
  ax_lr.set_ylabel("learning rate")
  ax_lr.set_title("MNIST-1D, SGD-momentum, one budget: AutoLRS's probes are its first steps")
  ax_lr.legend(loc="lower left")
  ax_loss.set_yscale("log")
  ax_loss.set_xlabel("update calls (AutoLRS's probe steps included)")
  ax_loss.set_ylabel("validation loss")
  ax_loss.legend(loc="upper right")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
  parser.add_argument("--quick", action="store_true",
                      help="300 calls, for a smoke test (no tuned cosine at that budget)")
  args = parser.parse_args()

  task = TASKS["mnist1d"]
  budget = task.quick if args.quick else task.full
  autolrs = runner.train(task, methods.METHODS["autolrs-budget"], args.seed, budget.steps,
                         budget.eval_every)
  guessed = runner.train(task, methods.METHODS["cosine"], args.seed, budget.steps,
                         budget.eval_every, lr=GUESSED_PEAK)
  tuned = best_of_grid(task.name, args.seed, budget.steps)

  search = autolrs.bo_stages[0] if autolrs.bo_stages else {}
  runs = {
      "AutoLRS (total_steps)": summary(autolrs) | {
          "learning_rate": autolrs.learning_rate.tolist(),
          "probe_steps": int(np.sum(autolrs.phase == autolrs_jax.PROBE)),
          "probed_lrs": search.get("learning_rates"), "held_lr": search.get("exploited_lr")},
      f"cosine at a guessed {GUESSED_PEAK:g}": summary(guessed) | {
          "learning_rate": cosine_lrs(budget.steps, GUESSED_PEAK).tolist()},
  }
  if tuned is not None:
    name = f"best-of-grid cosine ({tuned['peak']:.2g}, {tuned['grid_runs']} runs)"
    runs[name] = tuned | {"learning_rate": cosine_lrs(budget.steps, tuned["peak"]).tolist()}

  args.out.mkdir(parents=True, exist_ok=True)
  result = {"steps": budget.steps, "seed": args.seed, "runs": runs}
  (args.out / "mnist1d.json").write_text(json.dumps(result))
  plot(runs, args.out / "mnist1d.png")
  print(f"MNIST-1D, {budget.steps} update calls, seed {args.seed}:")
  for name, run in runs.items():
    print(f"  {name:<36} final validation loss {run['final_val_loss']:.4f}, "
          f"test accuracy {run['test_accuracy']:.4f}")
  print(f"AutoLRS probed {runs['AutoLRS (total_steps)']['probe_steps']} calls and held "
        f"lr {search.get('exploited_lr', float('nan')):.3g}")
  if tuned is None:
    print("(no best-of-grid cosine at this budget in results/bench)")
  print(f"wrote {args.out / 'mnist1d.json'} and {args.out / 'mnist1d.png'}")


if __name__ == "__main__":
  main()
