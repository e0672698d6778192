#!/usr/bin/env bash
# The overhead table on a GPU, twice: with XLA's default command buffers, and
# with conditionals and loops captured in them too (CUDA graph conditional
# nodes), which lets a lax.cond's predicate stay on the device.
#   bash benchmarks/gpu_overhead.sh [OUT_DIR]   (default results/bench)
set -euo pipefail
out=${1:-results/bench}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -m benchmarks overhead --out "$out"
XLA_FLAGS=--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,CONDITIONAL,WHILE \
  python3 -m benchmarks overhead --out "$out" --name overhead_gpu_graph_conditionals
