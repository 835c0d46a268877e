#!/usr/bin/env bash
# Build SynthPeople at 64x44 and train the `synthetic-64` preset on the CPU (about 35 minutes on 2
# cores), then export the pose-transfer model to weights/demo-64 (config.json + safetensors, < 20 MB; the
# older 64x44 recipe: the shipped weights/default come from scripts/train_default_weights.sh).
#
# The perceptual and sampling-correctness losses use a RANDOMLY initialised VGG-19 here
# (loss.allow_random_vgg): the demo must build without downloads. Everything runs under `nice`.
# Re-running continues an interrupted run (--resume auto) and re-exports the weights.
#
# Environment: PYTHON (default .venv/bin/python), DATA (data/synthpeople-64), RUNS (runs),
# NAME (demo-synthetic-64), OUT (weights/demo-64), OMP_NUM_THREADS (1: on 2 shared cores one thread
# per process is much faster than two), IDENTITIES (160), POSES (8).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
DATA=${DATA:-data/synthpeople-64}
RUNS=${RUNS:-runs}
NAME=${NAME:-demo-synthetic-64}
OUT=${OUT:-weights/demo-64}
IDENTITIES=${IDENTITIES:-160}
POSES=${POSES:-8}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nice -n 10 "$PYTHON" - "$DATA" "$RUNS" "$NAME" "$OUT" "$IDENTITIES" "$POSES" <<'PY'
import os
import sys
import time
from pathlib import Path

import torch

from glocal_cli.synth.dataset import prepare_synthetic

sys.path.insert(0, "scripts")
from cpu_recipe import cpu_config, train_and_export  # noqa: E402

data, runs, name, out = (Path(a) for a in sys.argv[1:5])
identities, poses = int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
t0 = time.perf_counter()
if not (data / "manifest.json").is_file():
    prepare_synthetic(data, identities=identities, poses_per_identity=poses, size=(64, 44), seed=0,
                      workers=1, show_progress=False, test_fraction=0.1)
print(f"SynthPeople 64x44 in {data} ({time.perf_counter() - t0:.0f} s)", flush=True)
config = cpu_config("synthetic-64", "synthetic-64 with the demo's CPU settings (scripts/train_demo_weights.sh)",
                    runs, name)
train_and_export(data, config, runs, name, out, t0)
PY
