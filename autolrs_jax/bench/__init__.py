"""The benchmark: AutoLRS against tuned schedules and LR-free optimizers, on real data.

    python -m autolrs_jax.bench --task mnist1d --quick     # methods x seeds on one task
    python -m autolrs_jax.bench overhead                    # step-time micro-benchmark
    python -m autolrs_jax.bench report                      # table and plots from results

See ``python -m autolrs_jax.bench --help``.
"""
