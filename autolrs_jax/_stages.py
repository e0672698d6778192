"""The stage arithmetic of AutoLRS: how long each stage probes and exploits."""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class StageSchedule(NamedTuple):
  """Static lengths of the stages, derived from the hyper-parameters.

  Stage ``i`` runs probes of ``tau_probe * 2**min(i, num_doublings)`` steps
  and exploits for ``tau * 2**min(i, num_doublings)`` steps.
  """

  tau: int  # Exploitation steps of the first stage.
  tau_probe: int  # Steps of each probe of the first stage.
  num_doublings: int  # Stages >= this index have tau at its maximum.
  validation_points: int  # Validation losses per probe in validation stages.
  validation_from_stage: int  # Probes of this stage on score the validation loss.

  @property
  def max_tau_probe(self) -> int:
    """The longest probe: fixes the size of the probe-loss buffer."""
    return self.tau_probe * 2**self.num_doublings

  def lengths(self, stage: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(tau_probe, tau)`` of a (traced) stage index."""
    factor = 2 ** jnp.minimum(stage, self.num_doublings)
    return self.tau_probe * factor, self.tau * factor

  def uses_validation(self, stage: jax.Array) -> jax.Array:
    """Whether probes of this stage score the validation loss."""
    return stage >= self.validation_from_stage

  def validation_interval(self, tau_probe: jax.Array) -> jax.Array:
    """Probe steps between two validation losses."""
    return jnp.maximum(tau_probe // self.validation_points, 1)

  def is_validation_step(self, stage: jax.Array, in_probe: jax.Array,
                         phase_step: jax.Array) -> jax.Array:
    """Whether the probe step ``phase_step`` of ``stage`` scores a validation loss."""
    tau_probe, _ = self.lengths(stage)
    interval = self.validation_interval(tau_probe)
    return in_probe & self.uses_validation(stage) & (phase_step % interval == interval - 1)


def doubling_schedule(tau: int, tau_probe: int, tau_max: int, validation_points: int,
                      validation_from_stage: int | None) -> StageSchedule:
  """The paper's schedule: ``tau`` and ``tau_probe`` double while ``tau <= tau_max``.

  ``validation_from_stage`` defaults, as in the reference implementation, to
  the stage after the first one at ``tau_max``.
  """
  num_doublings = 0
  while tau * 2 ** (num_doublings + 1) <= tau_max:
    num_doublings += 1
  if validation_from_stage is None:
    validation_from_stage = num_doublings + 1
  return StageSchedule(tau=tau, tau_probe=tau_probe, num_doublings=num_doublings,
                       validation_points=validation_points,
                       validation_from_stage=validation_from_stage)
