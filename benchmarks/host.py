"""The host a benchmark ran on, as its results record it: what a timing and a
run's floating-point results depend on besides the code and the seed."""

import functools
import os
import pathlib
import platform


def machine() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  return (f"{jax.devices()[0].platform.upper()}, {os.cpu_count()} CPU cores, "
          f"{platform.machine()}, jax {jax.__version__}")


# CPU flags of the vector units XLA:CPU compiles for (it targets the host).
_VECTOR_UNITS = ("avx512f", "avx2", "fma", "amx_tile", "sve", "asimd")


def _cpu() -> str:
  """The host CPU as XLA:CPU sees it: vendor, family and model, vector units."""
  try:
    first = pathlib.Path("/proc/cpuinfo").read_text().split("\n\n")[0]
  except OSError:
    return platform.processor() or platform.machine()
  info = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
  info = {k.strip(): v.strip() for k, v in info.items()}
  units = [u for u in _VECTOR_UNITS if u in info.get("flags", info.get("Features", "")).split()]
  return (f"{info.get('vendor_id', platform.machine())} family {info.get('cpu family', '?')} "
          f"model {info.get('model', '?')} ({', '.join(units) or 'no vector flags'})")


@functools.cache
def numerics() -> str:
  """What a run's floating-point results depend on besides its code and seed:
  the device XLA compiles for (a CPU's model and vector units: XLA:CPU targets
  the host) and the jax and jaxlib versions. The same run agrees bit for bit
  only where this agrees; elsewhere its rounding differs, and a chaotic
  training run (MNIST-1D's) ends up to tens of percent away."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  kind = _cpu() if device.platform == "cpu" else device.device_kind
  return f"{device.platform}: {kind}; jax {jax.__version__}, jaxlib {jaxlib.__version__}"
