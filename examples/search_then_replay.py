"""Search once with AutoLRS, then replay the schedule it found on a fresh model.

    python -m examples.search_then_replay            # about 3 minutes on 2 CPU cores
    python -m examples.search_then_replay --quick    # a smoke run

(from the repository's root, where ``benchmarks`` holds the data and model).

1. AutoLRS with a budget (``total_steps``) trains the MNIST-1D CNN (seed 0).
2. The schedule it applied, probes removed, is exported
   (:func:`autolrs_jax.export_schedule`) and saved as JSON.
3. A fresh model (seed 1) trains with plain SGD-momentum on that schedule:
   no search, fewer update calls.
4. For comparison, the best-of-grid cosine schedule trains the same fresh
   model for the same number of update calls as the replay.

Writes ``<out>/search_then_replay.json`` (the three runs' final validation
losses and update calls), ``<out>/search_then_replay_schedule.json`` (the
schedule) and ``<out>/search_then_replay.png``.
"""

import argparse
import json
import pathlib

import numpy as np

import autolrs_jax
from benchmarks import report
from benchmarks import runner
from benchmarks.methods import GRID, METHODS, Method
from benchmarks.tasks import TASKS, base_optimizer, task_grid


def replay_method(found: autolrs_jax.FoundSchedule) -> Method:
  return Method("replay", GRID, "SGD-momentum on the exported schedule",
                lambda task, steps, seed, lr: base_optimizer(task.optimizer, found.schedule()))


def summary(run: runner.Run, steps: int, **extra) -> dict:
  return {"steps": steps, "final_val_loss": run.final_val_loss,
          "test_accuracy": run.test_accuracy, "eval_steps": run.eval_steps.tolist(),
          "val_loss": run.val_loss.tolist(), **extra}


def plot(found: autolrs_jax.FoundSchedule, search: runner.Run, path: pathlib.Path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, ax = plt.subplots(figsize=(9, 3.5))
  calls = np.arange(len(search.learning_rate))
  probing = search.phase == autolrs_jax.PROBE
  ax.scatter(calls[probing], search.learning_rate[probing], s=2, color="tab:orange",
             label="search run: probes")
  ax.plot(calls[~probing], search.learning_rate[~probing], ".", ms=1, color="tab:blue",
          label="search run: other calls")
  replay = np.asarray([float(found.schedule()(i)) for i in range(found.total_steps)])
  ax.plot(np.arange(found.total_steps), replay, color="k", lw=1.2, label="exported schedule")
  ax.set_yscale("symlog", linthresh=1e-3)
  ax.set_xlabel("update calls")
  ax.set_ylabel("learning rate")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, help="the search's budget (default: the benchmark's)")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"))
  parser.add_argument("--quick", action="store_true", help="300 steps, a 3-point grid")
  args = parser.parse_args(argv)
  task = TASKS["mnist1d"]
  budget = task.quick if args.quick else task.full
  steps = args.steps or budget.steps

  search = runner.train(task, METHODS["autolrs-budget"], 0, steps, budget.eval_every)
  found = autolrs_jax.export_schedule(search.learning_rate, search.phase, search.stage,
                                      search.restored)
  args.out.mkdir(parents=True, exist_ok=True)
  found.save(args.out / "search_then_replay_schedule.json")
  replay = runner.train(task, replay_method(found), 1, found.total_steps, budget.eval_every)
  cosines = {lr: runner.train(task, METHODS["cosine"], 1, found.total_steps, budget.eval_every,
                              lr=lr) for lr in task_grid(task, args.quick)}
  best_lr = min(cosines, key=lambda lr: np.nan_to_num(cosines[lr].final_val_loss, nan=np.inf))
  target = search.final_val_loss
  replay_reach = report.steps_to_target(
      {"eval_steps": replay.eval_steps.tolist(), "val_loss": replay.val_loss.tolist()}, target)
  result = {
      "task": task.description, "search_seed": 0, "replay_seed": 1,
      "segments": [s._asdict() for s in found.segments],
      "search": summary(search, steps, probe_steps=int(np.sum(search.phase == autolrs_jax.PROBE))),
      "replay": summary(replay, found.total_steps, steps_to_search_loss=replay_reach),
      "cosine": summary(cosines[best_lr], found.total_steps, lr=best_lr,
                        grid=sorted(cosines), grid_runs=len(cosines)),
  }
  (args.out / "search_then_replay.json").write_text(json.dumps(result, indent=1))
  plot(found, search, args.out / "search_then_replay.png")
  print(f"{'run':34s} {'update calls':>12s} {'final val loss':>15s}")
  print(f"{'AutoLRS search (seed 0)':34s} {steps:12d} {search.final_val_loss:15.4f}")
  print(f"{'replay, plain SGD (seed 1)':34s} {found.total_steps:12d} {replay.final_val_loss:15.4f}")
  print(f"{f'best-of-grid cosine (lr {best_lr:.3g}, seed 1)':34s} {found.total_steps:12d} "
        f"{cosines[best_lr].final_val_loss:15.4f}")
  reach = "never" if replay_reach is None else f"after {replay_reach} calls"
  print(f"The replay reaches the search run's final validation loss {reach}.")


if __name__ == "__main__":
  main()
