"""Test session set-up: eight emulated CPU devices for the multi-device tests.

Must run before JAX initialises its backend, hence here and not in a test.
"""

import jax

jax.config.update("jax_num_cpu_devices", 8)
