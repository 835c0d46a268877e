#!/usr/bin/env bash
# The paper's recipe on one node with 8 GPUs: torchrun (no launcher of our own), one process per GPU,
# NCCL, bf16 autocast, batch 8 per GPU (global 64). Rank 0 alone logs and saves; re-running the same
# command continues the run exactly (--resume auto). Expected wall time: docs/training.md.
#
#   scripts/train_8gpu.sh /path/to/deepfashion-prepared [extra glocal train options...]
#
# Environment: NPROC (8), NAME (deepfashion-256-8xb8), RUNS (runs), CONFIG (deepfashion-256),
# WORKERS (6 data workers per GPU), OMP_NUM_THREADS (4).
set -euo pipefail
DATA=${1:?usage: $0 DATA_DIR [glocal train options...]}
shift || true
NPROC=${NPROC:-8}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

exec torchrun --standalone --nproc_per_node="$NPROC" -m glocal_cli train \
    --data "$DATA" --config "${CONFIG:-deepfashion-256}" --stage all \
    --out "${RUNS:-runs}" --name "${NAME:-deepfashion-256-${NPROC}xb8}" \
    --device cuda --workers "${WORKERS:-6}" --resume auto "$@"
