"""The benchmarks of autolrs_jax: run from a clone as ``python -m benchmarks ...``.

Not installed with the library. Holds the demo tasks (data and models,
:mod:`benchmarks.tasks`), the one training step (:mod:`benchmarks.training`),
the benchmark of AutoLRS against tuned schedules and LR-free optimizers
(methods, runner, report, ensembles), the overhead and step-time
measurements, and the renderer of the README's generated sections.
"""
