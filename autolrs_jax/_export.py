"""The schedule an AutoLRS run applied, as a plain optax schedule: record, export, replay.

A run's state holds only its current stage, so the record is kept on the
host: :class:`ScheduleRecorder` reads, after each update, the LR that update
applied, its phase and whether it returned to the stage's snapshot. The
export keeps the calls whose updates the final parameters still carry (a
restore undoes every call of its stage before it, probes and rolled-back
exploitations) and writes them as segments: constant where AutoLRS held an
LR, linear over its warm-ups (the run's, an exploitation's from the snapshot),
and over its anneal in the anneal's shape. The JSON format is versioned.
"""

import json
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from autolrs_jax import _autolrs
from autolrs_jax import _readers
from autolrs_jax import _stages

FORMAT = "autolrs_jax.schedule"
VERSION = 2  # 2: segments name their shape; version 1 files (all linear) are read.
# Phases over which the LR moves (one segment each); the others hold it.
_RAMPS = (_autolrs.WARMUP, _autolrs.ANNEAL)
# How a segment's LR goes from its first call's to its last's, at the fraction
# ``u`` of its calls: ``start + (end - start) * SHAPES[shape](u)``. A budget's
# anneal is 'linear' or '1-sqrt' (``BudgetPlan.anneal_shape``).
SHAPES = {"linear": lambda u: u, "1-sqrt": lambda u: u**0.5}
assert tuple(SHAPES) == _stages.ANNEAL_SHAPES


class Segment(NamedTuple):
  """Consecutive update calls whose LR goes from ``start_lr`` to ``end_lr``."""

  steps: int  # Update calls, >= 1.
  start_lr: float  # LR of the first call.
  end_lr: float  # LR of the last call (== start_lr when held).
  shape: str = "linear"  # A key of SHAPES: how the LR moves between them.


class FoundSchedule(NamedTuple):
  """What AutoLRS applied on the calls that the final parameters carry."""

  segments: tuple[Segment, ...]

  @property
  def total_steps(self) -> int:
    return sum(s.steps for s in self.segments)

  def schedule(self, total_steps: int | None = None) -> optax.Schedule:
    """The segments as an ``optax.Schedule`` of the replay's step count.

    Args:
      total_steps: stretch or compress the segments to this many calls,
        keeping their proportions; default :attr:`total_steps` (the run's
        own calls, probes removed). Past the end, the last LR.
    """
    total = self.total_steps if total_steps is None else total_steps
    if total < 1:
      raise ValueError(f"total_steps must be >= 1, got {total}.")
    cumulative = np.cumsum([s.steps for s in self.segments])
    ends = np.rint(cumulative * (total / self.total_steps)).astype(np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    keep = ends > starts  # A compressed segment may vanish.
    starts, ends = jnp.asarray(starts[keep]), jnp.asarray(ends[keep])
    first = jnp.asarray([s.start_lr for s, k in zip(self.segments, keep) if k], jnp.float32)
    last = jnp.asarray([s.end_lr for s, k in zip(self.segments, keep) if k], jnp.float32)
    shape = jnp.asarray([list(SHAPES).index(s.shape) for s, k in zip(self.segments, keep) if k])

    def schedule_fn(count):
      count = jnp.minimum(count, ends[-1] - 1)
      i = jnp.searchsorted(ends, count, side="right")
      span = jnp.maximum(ends[i] - starts[i] - 1, 1).astype(jnp.float32)
      fraction = (count - starts[i]).astype(jnp.float32) / span
      fraction = jnp.stack([f(fraction) for f in SHAPES.values()])[shape[i]]
      return first[i] + (last[i] - first[i]) * fraction

    return schedule_fn

  def to_json(self) -> str:
    return json.dumps({
        "format": FORMAT, "version": VERSION, "total_steps": self.total_steps,
        "segments": [s._asdict() for s in self.segments]}, indent=1)

  @classmethod
  def from_json(cls, text: str) -> "FoundSchedule":
    """Reads :meth:`to_json`'s output; ``ValueError`` on anything else."""
    try:
      data = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"not a schedule file: {e}") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
      raise ValueError(f"not a schedule file: its 'format' is not {FORMAT!r}.")
    version = data.get("version")
    if version not in (1, VERSION):
      raise ValueError(f"schedule file version {version!r}; this autolrs_jax "
                       f"reads versions 1 and {VERSION}.")
    segments = tuple(_segment(s, version) for s in data.get("segments") or ())
    if not segments:
      raise ValueError("a schedule file needs at least one segment.")
    found = cls(segments)
    if data.get("total_steps") != found.total_steps:
      raise ValueError(f"total_steps = {data.get('total_steps')!r} is not the sum of the "
                       f"segments' steps ({found.total_steps}).")
    return found

  def save(self, path) -> None:
    with open(path, "w") as f:
      f.write(self.to_json())

  @classmethod
  def load(cls, path) -> "FoundSchedule":
    with open(path) as f:
      return cls.from_json(f.read())


def _segment(item: Any, version: int) -> Segment:
  """A segment of a schedule file, checked (version 1 segments are linear)."""
  fields = Segment._fields if version > 1 else Segment._fields[:-1]
  if not isinstance(item, dict) or set(item) != set(fields):
    raise ValueError(f"a segment has exactly the keys {fields}, got {item!r}.")
  steps, start, end = item["steps"], item["start_lr"], item["end_lr"]
  shape = item.get("shape", "linear")
  if shape not in SHAPES:
    raise ValueError(f"a segment's shape is one of {tuple(SHAPES)}, got {shape!r}.")
  if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
    raise ValueError(f"a segment's steps must be an int >= 1, got {steps!r}.")
  for lr in (start, end):
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
      raise ValueError(f"a segment's LRs must be finite and >= 0, got {lr!r}.")
  return Segment(steps, float(start), float(end), shape)


def kept_calls(phases: np.ndarray, stages: np.ndarray, restored: np.ndarray) -> np.ndarray:
  """Which update calls the final parameters carry.

  A call that restored the snapshot, and every call of its stage since the
  snapshot (the stage's first probe call), is undone.
  """
  n = len(phases)
  kept = np.ones(n, bool)
  undo_from = {}  # Stage -> its first probe call: where the snapshot was taken.
  for i in range(n):
    if phases[i] == _autolrs.PROBE:
      undo_from.setdefault(int(stages[i]), i)
    if restored[i]:
      kept[undo_from.get(int(stages[i]), i):i + 1] = False
  return kept


def export_schedule(learning_rates: Sequence[float], phases: Sequence[int],
                    stages: Sequence[int], restored: Sequence[bool]) -> FoundSchedule:
  """The schedule of a run from its per-call records (see :class:`ScheduleRecorder`).

  Args:
    learning_rates: the LR each update call applied.
    phases: each call's phase (``WARMUP``, ``PROBE``, ``EXPLOIT``, ``ANNEAL``).
    stages: each call's stage.
    restored: whether each call returned to its stage's snapshot.

  Returns:
    The :class:`FoundSchedule` of the calls the final parameters carry.
  """
  lrs, phases = np.asarray(learning_rates, np.float32), np.asarray(phases)
  kept = kept_calls(phases, np.asarray(stages), np.asarray(restored, bool))
  segments, anneal = [], []  # The anneal's LRs, whose shape its segment names.
  previous, last_call = None, None  # The last segment's key; the last call's (lr, phase).
  for lr, phase in zip(lrs[kept].tolist(), phases[kept].tolist()):
    # The anneal ends at its first LR of 0; calls past the budget hold 0.
    annealed = phase == _autolrs.ANNEAL and bool(anneal) and anneal[-1] == 0.0
    if phase in _RAMPS and not annealed:
      key = ("ramp", phase)
    elif (last_call is not None and last_call[1] == phase and lr > last_call[0]
          and (previous[0] == "rise" or segments[-1].steps == 1)):
      # An exploitation warming up from the snapshot: its LR rises linearly.
      key = ("rise", phase)
    else:
      key = ("hold", lr)
    if key == previous or key[0] == "rise":
      last = segments[-1]
      segments[-1] = last._replace(steps=last.steps + 1, end_lr=lr)
    else:
      segments.append(Segment(1, lr, lr))
    previous, last_call = key, (lr, phase)
    if phase == _autolrs.ANNEAL and not annealed:
      anneal.append(lr)
      anneal_segment = len(segments) - 1
  if not segments:
    raise ValueError("the run kept no update call: nothing to export.")
  if anneal:
    segments[anneal_segment] = segments[anneal_segment]._replace(shape=closest_shape(anneal))
  return FoundSchedule(tuple(segments))


def closest_shape(lrs: Sequence[float]) -> str:
  """The key of :data:`SHAPES` that best fits a ramp's recorded LRs (AutoLRS
  applies one of them, to float32 rounding)."""
  lrs = np.asarray(lrs, np.float64)
  fraction = np.arange(len(lrs)) / max(len(lrs) - 1, 1)
  error = {name: np.max(np.abs(lrs[0] + (lrs[-1] - lrs[0]) * shape(fraction) - lrs))
           for name, shape in SHAPES.items()}
  return min(error, key=error.get)


class ScheduleRecorder:
  """Collects, on the host, what :func:`export_schedule` needs; one call a step.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, autolrs_jax
    >>> tx = autolrs_jax.autolrs(optax.sgd(1.0), min_lr=1e-3, max_lr=1.0,
    ...                          total_steps=200)
    >>> @jax.jit
    ... def step(params, state):
    ...   loss, grads = jax.value_and_grad(lambda p: jnp.sum(p ** 2))(params)
    ...   updates, state = tx.update(grads, state, params, value=loss)
    ...   return optax.apply_updates(params, updates), state
    >>> params = jnp.ones(3)
    >>> state = tx.init(params)
    >>> recorder = autolrs_jax.ScheduleRecorder()
    >>> for _ in range(200):
    ...   params, new_state = step(params, state)
    ...   recorder.record(state, new_state)
    ...   state = new_state
    >>> found = recorder.export()
    >>> found.total_steps < 200  # The probes that were restored are not replayed.
    True
    >>> replay = optax.sgd(found.schedule())
  """

  def __init__(self):
    self._lrs, self._phases, self._stages, self._restored = [], [], [], []

  def record(self, state_before: Any, state_after: Any) -> None:
    """Records one update call from the optimizer states around it."""
    before = _readers.find_state(state_before)
    after = _readers.find_state(state_after)
    lr, phase, stage, restored = jax.device_get(
        (before.learning_rate, before.phase, before.stage, after.restored))
    self._lrs.append(float(lr))
    self._phases.append(int(phase))
    self._stages.append(int(stage))
    self._restored.append(bool(restored))

  def export(self) -> FoundSchedule:
    return export_schedule(self._lrs, self._phases, self._stages, self._restored)
