"""Measures the LCB exploration weight kappa of AutoLRS on MNIST-1D.

    python -m benchmarks kappa [--steps 3000] [--seeds 3] [--out out/kappa.json]

For each kappa (and EI), trains the example's CNN with AutoLRS for the same
number of update calls (probe steps included) over several seeds and reports
the median, min and max of the validation loss and test accuracy at the end.
"""

import argparse
import json
import pathlib

import numpy as np
import optax
from flax import nnx

import autolrs_jax
from benchmarks import training
from benchmarks.tasks import accuracy
from benchmarks.tasks import mnist1d
from benchmarks.tasks import model_loss

SETTINGS = [("lcb", 0.5), ("lcb", 2.0), ("lcb", 10.0), ("lcb", 1000.0), ("ei", 0.0)]


def run(data, acquisition, kappa, seed, steps):
  graphdef, params = nnx.split(mnist1d.CNN(rngs=nnx.Rngs(seed)), nnx.Param)
  loss = model_loss(graphdef)
  tx = autolrs_jax.autolrs(optax.sgd(1.0, momentum=0.9), min_lr=1e-3, max_lr=1.0,
                           tau=200, num_trials=6, tau_max=800,
                           acquisition=acquisition, kappa=kappa, seed=seed)
  params, _, _ = training.train(params, tx, loss, data, steps=steps, seed=seed)
  val_loss = float(loss(params, data.x_val, data.y_val))
  return val_loss, accuracy(graphdef, params, data.x_test, data.y_test)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m benchmarks kappa")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/kappa.json"))
  args = parser.parse_args(argv)
  data = mnist1d.load()
  rows = []
  for acquisition, kappa in SETTINGS:
    runs = [run(data, acquisition, kappa, seed, args.steps) for seed in range(args.seeds)]
    val, acc = np.asarray(runs).T
    row = {"acquisition": acquisition, "kappa": kappa, "val_loss": val.tolist(),
           "test_accuracy": acc.tolist()}
    rows.append(row)
    print(f"{acquisition} kappa={kappa:g}: val loss median {np.median(val):.4f} "
          f"[{val.min():.4f}, {val.max():.4f}], test acc median {np.median(acc):.4f} "
          f"[{acc.min():.4f}, {acc.max():.4f}]", flush=True)
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=2))

