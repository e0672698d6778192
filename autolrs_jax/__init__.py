"""autolrs_jax: AutoLRS, a learning-rate schedule tuned on the fly, for optax.

Also an ExpTest-style controller (:func:`exptest`), the LRBench policies
(:mod:`autolrs_jax.schedules`) and LREnsemble-style selection
(:mod:`autolrs_jax.ensemble`).
"""

from autolrs_jax.autolrs import AutoLRSState
from autolrs_jax.autolrs import autolrs
from autolrs_jax.autolrs import bo_observations
from autolrs_jax.autolrs import describe
from autolrs_jax.autolrs import EXPLOIT
from autolrs_jax.autolrs import find_state
from autolrs_jax.autolrs import PHASE_NAMES
from autolrs_jax.autolrs import PROBE
from autolrs_jax.autolrs import WARMUP
from autolrs_jax.exptest import exptest
from autolrs_jax.exptest import ExpTestState

__all__ = (
    "AutoLRSState",
    "EXPLOIT",
    "ExpTestState",
    "PHASE_NAMES",
    "PROBE",
    "WARMUP",
    "autolrs",
    "bo_observations",
    "describe",
    "exptest",
    "find_state",
)

__version__ = "0.1.0"
