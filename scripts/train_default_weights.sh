#!/usr/bin/env bash
# The shipped default weights (v2): SynthPeople on Anny bodies at 128x88, the `synthpeople-anny-128`
# preset, trained on the CPU, then exported to weights/default (config.json + safetensors).
#
# The perceptual loss uses a RANDOMLY initialised VGG-19 (loss.allow_random_vgg): the weights must build
# without downloads. Everything runs under `nice`. Re-running continues an interrupted run
# (--resume auto) and re-exports the weights.
#
# Environment: PYTHON (default .venv/bin/python), DATA (data/synthpeople-anny-128), RUNS (runs),
# NAME (default-anny-128), OUT (weights/default), OMP_NUM_THREADS (1), IDENTITIES (400), POSES (8),
# STEPS (optional "SEMANTIC,FLOW,GENERATOR" steps overriding the preset's).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
DATA=${DATA:-data/synthpeople-anny-128}
RUNS=${RUNS:-runs}
NAME=${NAME:-default-anny-128}
OUT=${OUT:-weights/default}
IDENTITIES=${IDENTITIES:-400}
POSES=${POSES:-8}
STEPS=${STEPS:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ ! -f "$DATA/manifest.json" ]; then
  nice -n 5 "$PYTHON" -m glocal_cli prepare-data synthetic --body anny --out "$DATA" -n "$IDENTITIES" -k "$POSES" \
    --size 128x88 --pairs-per-image 1 --workers 2
fi

nice -n 5 "$PYTHON" - "$DATA" "$RUNS" "$NAME" "$OUT" "$STEPS" <<'PY'
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, "scripts")
from cpu_recipe import cpu_config, train_and_export  # noqa: E402

data, runs, name, out = (Path(a) for a in sys.argv[1:5])
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
t0 = time.perf_counter()
config = cpu_config("synthpeople-anny-128", "synthpeople-anny-128 with the CPU settings of scripts/train_default_weights.sh",
                    runs, name, sys.argv[5])
train_and_export(data, config, runs, name, out, t0)
PY
