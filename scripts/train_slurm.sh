#!/usr/bin/env bash
# Several nodes under SLURM: one torchrun per node, c10d rendezvous on the first node of the job.
# Submit with `sbatch scripts/train_slurm.sh /path/to/deepfashion-prepared`; resubmitting the same
# job (same NAME) continues it from its latest checkpoint (--resume auto).
#
#SBATCH --job-name=glocal-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out
#SBATCH --signal=TERM@120
set -euo pipefail
DATA=${1:?usage: sbatch $0 DATA_DIR [glocal train options...]}
shift || true
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=${PORT:-29500}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}

# SIGTERM (sent 120 s before the time limit, see --signal) makes every rank save and stop at the next log
# interval; the next submission resumes exactly.
srun --kill-on-bad-exit=1 torchrun \
    --nnodes="$SLURM_JOB_NUM_NODES" --nproc_per_node="$GPUS_PER_NODE" \
    --rdzv_id="$SLURM_JOB_ID" --rdzv_backend=c10d --rdzv_endpoint="$HEAD:$PORT" \
    -m glocal_cli train \
    --data "$DATA" --config "${CONFIG:-deepfashion-256}" --stage all \
    --out "${RUNS:-runs}" --name "${NAME:-deepfashion-256-$((SLURM_JOB_NUM_NODES * GPUS_PER_NODE))xb8}" \
    --device cuda --workers "${WORKERS:-6}" --resume auto "$@"
