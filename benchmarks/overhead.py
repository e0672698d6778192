"""What AutoLRS costs per step: time, compilation, memory, and one BO proposal.

    python -m benchmarks overhead [--out results/bench/overhead.json]

For MLPs of about 1e4, 1e6 and 1e7 parameters, the same jitted step (forward,
backward, update; params and optimizer state donated) with ``autolrs(base)``
and with the bare ``base``, for SGD with momentum and Adam, in one process:
first-call time (compilation), then the median and mean of many warmed-up
steps, each controller timed against its own bare optimizer in alternating
blocks of ten steps, one pair at a time (with all four interleaved, each
controller's ratio also depended on the other controllers' working sets).
The smallest model's step is timed in ``SMALL_MODEL_PAIRS`` fresh pairs, the
median pair kept and every pair's ratio recorded (``ratio_median_of_pairs``).
AutoLRS is handed the training loss only: a validation loss, when a loop passes one,
costs the forward passes that compute it, not the optimizer. In the paper's
mode AutoLRS runs short stages (``tau=100``, ten probes of 10 steps), so a BO
proposal ends every tenth step of its probes and the mean includes them; the
median is the typical step. The budget mode runs its default plan over 2,000
calls (its ladder's probes come first). ExpTest is measured the same way
(mode ``exptest``). Memory is the bytes of the optimizer state. On a GPU or
TPU the results go to ``overhead_<platform>.json`` (``--name`` names another)
and a model of about 1e8 parameters is added; ``XLA_FLAGS`` are recorded.
For the smallest model, each compiled step's buffer allocations are counted
(:func:`buffer_allocations`): on XLA:CPU they are a cost of every call.
"""

import collections
import functools
import json
import os
import pathlib
import re
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import autolrs_jax
from autolrs_jax import bo
from benchmarks import training
from benchmarks.tasks import loss_on_logits
from benchmarks.tasks import Splits

# Hidden width of a 256 -> w -> w -> 10 MLP, for about 1e4, 1e6 and 1e7 parameters.
WIDTHS = {"1e4": 36, "1e6": 870, "1e7": 3030}
# On an accelerator, also about 1e8 (400 MB of float32 parameters).
ACCELERATOR_WIDTHS = WIDTHS | {"1e8": 10000}
BATCH = 64


def mlp_params(width: int, key) -> dict:
  sizes = [(256, width), (width, width), (width, 10)]
  keys = jax.random.split(key, len(sizes))
  return {f"w{i}": jax.random.normal(k, s, jnp.float32) / np.sqrt(s[0])
          for i, (k, s) in enumerate(zip(keys, sizes))}


def mlp_loss(params, x, y):
  h = x
  for i in range(2):
    h = jax.nn.relu(h @ params[f"w{i}"])
  return loss_on_logits(h @ params["w2"], y)


def nbytes(tree) -> int:
  return sum(x.nbytes for x in jax.tree.leaves(tree))


def donated_step(tx, params, pass_value: bool, quiet: bool = False) -> tuple:
  """``(step, params, opt_state)``: the one training step on a fixed synthetic
  batch, donating its params and optimizer state as a production loop does
  (``quiet``: the controller's quiet step)."""
  x = np.asarray(jax.random.normal(jax.random.key(1), (BATCH, 256)))
  y = np.asarray(jax.random.randint(jax.random.key(2), (BATCH,), 0, 10))
  data = Splits(x, y, x, y, x, y)
  params = jax.tree.map(jnp.copy, params)  # Donated: each step gets its own.
  opt_state = tx.init(params)
  step = training.make_step(mlp_loss, tx, data, BATCH, pass_value=pass_value,
                            opt_state=opt_state, donate=True, validate=False, quiet=quiet)
  return step, params, opt_state


def first_call_s(step, params, opt_state) -> float:
  """Seconds of ``step``'s first call (its compilation), on copies of its
  arguments (it donates them)."""
  copies = jax.tree.map(jnp.copy, (params, opt_state))
  start = time.perf_counter()
  jax.block_until_ready(step(*copies, jax.random.key(0)))
  return time.perf_counter() - start


def fusions(compiled) -> int:
  """Fused kernels in a compiled program (XLA:CPU compiles each one, so that
  their number drives the compile's seconds)."""
  return compiled.as_text().count(" fusion(")


def compiled_fusions(step, params, opt_state) -> int:
  """:func:`fusions` of ``step`` compiled for its arguments."""
  return fusions(step.lower(params, opt_state, jax.random.key(0)).compile())


def loop(step, params, opt_state, calls: int):
  """One call of a training loop per call of the returned function, up to
  ``calls``: ``step(params, opt_state, key)``, a step or
  :func:`training.quiet_calls_loop`'s."""
  # Split ahead: iterating a key array splits it all at the first key.
  keys = iter(list(jax.random.split(jax.random.key(1), calls)))
  carry = {"params": params, "state": opt_state}

  def call():
    carry["params"], carry["state"], _ = step(carry["params"], carry["state"], next(keys))
    return carry["params"]
  return call


# Whole runs (issue 28): update calls per run, the budget mode's total_steps.
WHOLE_RUN_CALLS = {"1e4": 2000, "1e6": 1000, "1e7": 200, "1e8": 500}
WHOLE_RUN_MODES = {
    "budget": lambda base, calls: autolrs_jax.autolrs(base, min_lr=1e-3, max_lr=1.0,
                                                      total_steps=calls),
    "exptest": lambda base, calls: autolrs_jax.exptest(base),
}


def whole_runs(quick: bool) -> list[dict]:
  """Whole runs of the quiet-calls loop against the bare optimizer.

  For each model and base optimizer: a budget mode's run of its whole
  ``total_steps`` (its probes and events included) and as many ExpTest calls,
  each through the loop of ``autolrs_jax.quiet_calls``; beside it the bare
  optimizer and the bare optimizer in ``optax.apply_if_finite`` (the same
  guarantee that a non-finite update is never applied), the three timed in
  turns of ten calls in one process (:func:`training.time_loops`). Also each
  step's first call (the bare, the guarded, the one-program and the quiet
  step) and the fused kernels compiled into the bare, guarded and quiet steps:
  the quiet step keeps the guard's promise, and its compile is measured
  against it as well as against the bare step's. ``quick``:
  the smallest model only, a fifth of its calls.
  """
  rows = []
  on_cpu = jax.devices()[0].platform == "cpu"
  widths = WIDTHS if on_cpu else ACCELERATOR_WIDTHS
  if quick:  # The smallest model only, a fifth of its calls.
    widths = dict(list(widths.items())[:1])
  for name, width in widths.items():
    params = mlp_params(width, jax.random.key(0))
    n = sum(p.size for p in jax.tree.leaves(params))
    calls = WHOLE_RUN_CALLS[name] // (5 if quick else 1)
    for base_name, base in BASES.items():
      for mode, control in WHOLE_RUN_MODES.items():
        bare = donated_step(base(0.01), params, pass_value=False)
        guarded = donated_step(optax.apply_if_finite(base(0.01), 10), params, pass_value=False)
        tx = control(base(1.0), calls)
        full = donated_step(tx, params, pass_value=True)
        quiet = donated_step(tx, params, pass_value=True, quiet=True)
        first = {"bare": first_call_s(*bare), "if_finite": first_call_s(*guarded),
                 "one_program": first_call_s(*full), "quiet": first_call_s(*quiet)}
        kernels = {k: compiled_fusions(*v) for k, v in
                   (("bare", bare), ("if_finite", guarded), ("quiet", quiet))}
        autolrs_jax.quiet_calls(full[2])  # Its first read, as the steps' first calls, untimed.
        timing = training.time_loops({
            "bare": loop(*bare, calls=calls),
            "if_finite": loop(*guarded, calls=calls),
            "fast": loop(training.quiet_calls_loop(full[0], quiet[0]), *full[1:], calls=calls),
        }, calls)
        rows.append({
            "model": name, "parameters": int(n), "base": base_name, "mode": mode,
            "calls": calls, "timing": timing, "first_call_s": first, "fusions": kernels,
            "ratio_mean": timing["fast"]["total_s"] / timing["bare"]["total_s"],
            "ratio_mean_if_finite": timing["fast"]["total_s"] / timing["if_finite"]["total_s"],
            "quiet_compile_over_bare": first["quiet"] / first["bare"],
            "added_compile_s": first["one_program"] - first["bare"],
        })
        print(f"{name} {base_name} {mode} whole run of {calls}: x{rows[-1]['ratio_mean']:.3f} "
              f"bare, x{rows[-1]['ratio_mean_if_finite']:.3f} apply_if_finite; first call "
              f"quiet {first['quiet']:.2f} s, bare {first['bare']:.2f} s", flush=True)
  return rows


def buffer_allocations(step, *args) -> dict[str, int]:
  """The buffers XLA's buffer assignment gives ``step`` compiled for ``args``, by kind.

  XLA:CPU's runtime makes a handle for each of them at every call: for every
  constant, and for every value of a reduction's or a sort's computation
  ("thread-local"), in the branches not taken too. So a step pays for the
  code compiled into it, not only for the code it runs.
  """
  with tempfile.TemporaryDirectory() as dump:
    step.lower(*args).compile({"xla_dump_to": dump, "xla_dump_hlo_as_text": True})
    dumped = list(pathlib.Path(dump).glob("*buffer-assignment.txt"))
    if not dumped:  # The cache's key leaves the dump options out.
      raise RuntimeError("XLA dumped no buffer assignment: the step came from the persistent "
                         "compilation cache; measure without JAX_COMPILATION_CACHE_DIR.")
    text = dumped[0].read_text()
  kinds = collections.Counter()
  for header in re.findall(r"^allocation \d+: size \d+, (.*):$", text, re.M):
    kind = next((k for k in ("thread-local", "constant", "parameter", "preallocated-temp")
                 if k in header), "output or temporary")
    kinds[kind] += 1
  return {"total": sum(kinds.values())} | dict(kinds)


def untaken_branch_step(terms: int):
  """A jitted ``(x, taken) -> lax.cond(taken, branch, x + 1, x)`` whose
  ``branch`` adds ``terms`` reductions of ``x`` (none: the identity), each
  with an initial value of its own, so that XLA cannot merge them."""
  branch = lambda x: x + sum(jax.lax.reduce(x, float(i), jax.lax.add, (0,))
                             for i in range(terms))
  return jax.jit(lambda x, taken: jax.lax.cond(taken, branch, lambda x: x + 1.0, x))


def untaken_branch_cost(terms: int = 64, repeats: int = 2000) -> dict:
  """What code compiled into a step but never run costs at every call.

  :func:`untaken_branch_step` on 64 floats, never taking its branch, with
  ``terms`` reductions or none there. Returns each variant's
  :func:`training.time_calls` and :func:`buffer_allocations`, the two timed
  in alternating blocks.
  """
  x0, never = jnp.zeros(64, jnp.float32), jnp.asarray(False)
  calls, allocations = {}, {}
  for name, n in {"empty": 0, "reductions": terms}.items():
    step = untaken_branch_step(n)
    allocations[name] = buffer_allocations(step, x0, never)
    calls[name] = functools.partial(step, x0, never)
  timing = training.time_side_by_side(calls, repeats)
  return {"terms": terms, "variants": {
      name: timing[name] | {"allocations": allocations[name]} for name in calls}}


def _carrying(tx: optax.GradientTransformation, extra) -> optax.GradientTransformation:
  """``tx`` whose state also carries ``extra``, each leaf changed at every call
  (incremented, or negated for booleans), as a controller's scalars are."""
  bump = lambda e: ~e if e.dtype == bool else e + jnp.ones_like(e)

  def update(updates, state, params=None):
    updates, inner = tx.update(updates, state[0], params)
    return updates, (inner, jax.tree.map(bump, state[1]))
  return optax.GradientTransformation(lambda params: (tx.init(params), extra), update)


def state_leaves_cost(steps: int = 500) -> dict:
  """What AutoLRS's controller scalars cost at every call as leaves of the
  state: the smallest model's SGD step carrying them packed (one array per
  dtype, as ``AutoLRSState`` stores them) or one leaf each, against none,
  timed side by side (:func:`training.time_steps`). XLA:CPU's runtime handles
  each leaf at every call."""
  params = mlp_params(WIDTHS["1e4"], jax.random.key(0))
  state = autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0).init(params)
  packed = tuple(getattr(state, field) for field in type(state).packed_scalars)
  one_each = tuple(a[i] for a in packed for i in range(a.shape[0]))
  sgd = optax.sgd(0.01, momentum=0.9)
  timing = training.time_steps({
      "bare": donated_step(sgd, params, pass_value=False),
      "packed": donated_step(_carrying(sgd, packed), params, pass_value=False),
      "one_leaf_each": donated_step(_carrying(sgd, one_each), params, pass_value=False),
  }, steps)
  return {"scalars": len(one_each), "packed_arrays": len(packed), "timing": timing}


def bo_proposal_latency(repeats: int = 20) -> dict:
  """One GP fit + acquisition on 9 observations over the 512-point grid."""
  grid = bo.search_grid(512)
  x = jnp.linspace(0.05, 0.95, 10)
  y = (x - 0.4) ** 2 + 0.01 * jnp.sin(30 * x)
  mask = jnp.arange(10) < 9
  propose = jax.jit(lambda x, y, m: bo.propose(x, y, m, grid, acquisition="lcb", kappa=1000.0)[0])
  return training.time_calls(lambda: propose(x, y, mask), repeats, warmup=0)


# Fresh (bare, controlled) pairs timed for the smallest model: there the
# median ratio varies more between compilations of the same step than between
# its timed blocks (each row records its pairs' ratios).
SMALL_MODEL_PAIRS = 3
# The base optimizers, built with a learning rate.
BASES = {"sgd": lambda lr: optax.sgd(lr, momentum=0.9), "adam": optax.adam}
# The controllers as measured, each wrapping a base optimizer built with LR 1:
# AutoLRS in the paper's short stages (a BO proposal every tenth probe step,
# half the steps probes) and in the budget mode's default plan, and ExpTest.
MODES = {
    "paper": lambda base: autolrs_jax.autolrs(base, min_lr=1e-3, max_lr=1.0, tau=100),
    "budget": lambda base: autolrs_jax.autolrs(base, min_lr=1e-3, max_lr=1.0, total_steps=2000),
    "exptest": autolrs_jax.exptest,
}


def measure(steps: int) -> dict:
  rows = []
  device = jax.devices()[0]
  on_cpu = device.platform == "cpu"
  for name, width in (WIDTHS if on_cpu else ACCELERATOR_WIDTHS).items():
    params = mlp_params(width, jax.random.key(0))
    n = sum(p.size for p in jax.tree.leaves(params))
    # Fewer steps for the CPU's largest model: a step there is ~1000x the smallest's.
    n_steps = max(steps // (10 if on_cpu and width > 1000 else 1), 50)
    pairs = SMALL_MODEL_PAIRS if name == "1e4" else 1
    for base_name, base in BASES.items():
      for mode, control in MODES.items():
        # The controller and the bare optimizer, timed in alternating blocks;
        # the smallest model in several fresh pairs, the median one kept.
        timings, allocations = [], {}
        for _ in range(pairs):
          steps_to_time = {"bare": donated_step(base(0.01), params, pass_value=False),
                           mode: donated_step(control(base(1.0)), params, pass_value=True)}
          if name == "1e4" and not allocations:
            allocations = {m: buffer_allocations(step, p, s, jax.random.key(0))
                           for m, (step, p, s) in steps_to_time.items()}
          timings.append(training.time_steps(steps_to_time, n_steps))
        ratios = [t[mode]["median_ms"] / t["bare"]["median_ms"] for t in timings]
        timing = timings[int(np.argsort(ratios)[len(ratios) // 2])]
        bare, auto = timing["bare"], timing[mode]
        rows.append({
            "model": name, "parameters": int(n), "steps": n_steps, "base": base_name,
            "mode": mode, "bare": bare, "controlled": auto,
            "ratio_median": auto["median_ms"] / bare["median_ms"],
            "ratio_median_of_pairs": ratios,
            "ratio_mean": auto["mean_ms"] / bare["mean_ms"],
            "ratio_first_call": auto["first_call_s"] / bare["first_call_s"],
            "state_over_base_state": auto["state_bytes"] / bare["state_bytes"],
            "state_over_params": auto["state_bytes"] / nbytes(params),
        } | ({"allocations": allocations[mode], "bare_allocations": allocations["bare"]}
             if allocations else {}))
        print(f"{name} {base_name} {mode}: {n} params, step {bare['median_ms']:.3f} -> "
              f"{auto['median_ms']:.3f} ms (x{rows[-1]['ratio_median']:.2f} median, "
              f"x{rows[-1]['ratio_mean']:.2f} mean)", flush=True)
  return {"device": str(device), "device_kind": device.device_kind,
          "platform": device.platform, "xla_flags": os.environ.get("XLA_FLAGS", ""),
          "batch": BATCH, "rows": rows,
          "bo_proposal": bo_proposal_latency(), "untaken_branch": untaken_branch_cost(),
          "state_leaves": state_leaves_cost(steps)}


def main(out_dir: pathlib.Path, quick: bool, machine: str, name: str | None = None) -> None:
  result = measure(100 if quick else 500) | {"whole_runs": whole_runs(quick), "machine": machine}
  if name is None:
    name = "overhead" if result["platform"] == "cpu" else f"overhead_{result['platform']}"
  out = out_dir / f"{name}.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))
  print(json.dumps(result["bo_proposal"]), f"-> {out}")
