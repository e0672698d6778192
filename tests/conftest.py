"""Test session set-up, before JAX initialises its backend (hence here).

- Eight emulated CPU devices for the multi-device tests.
- A compilation cache shared by the test workers and the example scripts the
  tests run in subprocesses (they inherit the environment): many tests compile
  the same step, and a compilation is most of a short run's time.
"""

import os
import pathlib
import tempfile

_CACHE = pathlib.Path(tempfile.gettempdir()) / "autolrs_jax_test_compilation_cache"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update("jax_num_cpu_devices", 8)
# In case a plugin imported JAX before this file set the environment.
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs",
                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
