"""autolrs_jax: AutoLRS, a learning-rate schedule tuned on the fly, for optax.

Also an ExpTest-style controller (:func:`exptest`), the LRBench policies
(:mod:`autolrs_jax.schedules`) and their switching on a plateau
(:func:`switch_on_plateau`), and LREnsemble-style selection
(:mod:`autolrs_jax.ensemble`).
"""

from autolrs_jax._autolrs import ANNEAL
from autolrs_jax._autolrs import AutoLRSState
from autolrs_jax._autolrs import autolrs
from autolrs_jax._autolrs import EXPLOIT
from autolrs_jax._autolrs import PHASE_NAMES
from autolrs_jax._autolrs import PROBE
from autolrs_jax._autolrs import WARMUP
from autolrs_jax._exptest import exptest
from autolrs_jax._exptest import ExpTestState
from autolrs_jax._exptest import SEARCH
from autolrs_jax._exptest import TUNE
from autolrs_jax._export import export_schedule
from autolrs_jax._export import FoundSchedule
from autolrs_jax._export import ScheduleRecorder
from autolrs_jax._export import Segment
from autolrs_jax._multi_steps import multi_steps
from autolrs_jax._multi_steps import MultiStepsMeanState
from autolrs_jax._readers import bo_observations
from autolrs_jax._readers import describe
from autolrs_jax._readers import find_state
from autolrs_jax._readers import quiet_calls
from autolrs_jax._stages import BudgetPlan
from autolrs_jax._switching import switch_on_plateau
from autolrs_jax._switching import SwitchOnPlateauState
from autolrs_jax._windows import null_statistics
from autolrs_jax._windows import window_test
from autolrs_jax._windows import WindowTest

__all__ = (
    "ANNEAL",
    "AutoLRSState",
    "BudgetPlan",
    "EXPLOIT",
    "ExpTestState",
    "FoundSchedule",
    "MultiStepsMeanState",
    "PHASE_NAMES",
    "PROBE",
    "ScheduleRecorder",
    "Segment",
    "SwitchOnPlateauState",
    "SEARCH",
    "TUNE",
    "WARMUP",
    "WindowTest",
    "autolrs",
    "bo_observations",
    "describe",
    "export_schedule",
    "exptest",
    "find_state",
    "multi_steps",
    "null_statistics",
    "quiet_calls",
    "switch_on_plateau",
    "window_test",
)

__version__ = "0.1.0"
