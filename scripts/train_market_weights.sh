#!/usr/bin/env bash
# weights/market: the full GLocal model trained on real Market-1501 pose pairs at 128x64, on the CPU.
#
# 1. Data: `glocal prepare-data market` on the benchmark layout (../shared/data/market1501: train/, test/
#    and the community CSVs), pairs of one identity whose photos both show >= 8 keypoints, at most 40 per
#    identity; parsing and per-pair correspondence from the Anny body fitted to each photo's keypoints
#    (--parsing body3d --correspondence body3d; Market ships no parsing, docs/design.md).
# 2. Training: the `market-128` preset with the default weights' architecture (base 16, max 64, two
#    downsamplings: the widths that learn most per CPU hour here, docs/results.md), initialised from
#    weights/default (SynthPeople on Anny), a randomly initialised VGG-19 for the perceptual loss (nothing
#    to download), batch 8, Adam 2e-4; semantic -> flow -> generator (given 3D flow for half of the batches).
#    Validation (SSIM, PSNR on 64 pairs of held-out training identities) every VAL_EVERY steps into
#    runs/<NAME>/validation.jsonl; checkpoints every CKPT_EVERY steps. Re-running resumes exactly.
# 3. Export: the stage's best checkpoint (or, with EXPORT_ONLY=1, the latest checkpoint of the run so far)
#    becomes $OUT (config.json + safetensors), keeping $OUT/MODEL_CARD.md.
#
# Environment: PYTHON (.venv/bin/python), RAW (../shared/data/market1501), DATA (data/market-128), RUNS (runs),
# NAME (market-128), OUT (weights/market), INIT (weights/default; empty: from scratch), OMP_NUM_THREADS (2),
# STEPS ("SEMANTIC,FLOW,GENERATOR", default 600,300,12000), VAL_EVERY (250), CKPT_EVERY (100), EXPORT_ONLY.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
RAW=${RAW:-../shared/data/market1501}
DATA=${DATA:-data/market-128}
RUNS=${RUNS:-runs}
NAME=${NAME:-market-128}
OUT=${OUT:-weights/market}
INIT=${INIT-weights/default}
STEPS=${STEPS:-600,300,12000}
VAL_EVERY=${VAL_EVERY:-250}
CKPT_EVERY=${CKPT_EVERY:-100}
EXPORT_ONLY=${EXPORT_ONLY:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ ! -f "$DATA/manifest.json" ]; then
  nice -n 5 "$PYTHON" -m glocal_cli prepare-data market --raw "$RAW" --out "$DATA" --min-keypoints 8 \
    --max-pairs-per-identity 40 --parsing body3d --correspondence body3d --workers 2
fi

nice -n 5 "$PYTHON" - "$DATA" "$RUNS" "$NAME" "$OUT" "$STEPS" "$INIT" "$VAL_EVERY" "$CKPT_EVERY" "$EXPORT_ONLY" <<'PY'
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, "scripts")
from cpu_recipe import cpu_config, export_latest, train_and_export  # noqa: E402

data, runs, name, out = (Path(a) for a in sys.argv[1:5])
steps, init, val_every, ckpt_every, export_only = sys.argv[5:10]
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
t0 = time.perf_counter()
if export_only:
    export_latest(runs / name, out)
    sys.exit(0)
arch = json.loads(Path(init, "config.json").read_text())["model"] if init else None
config = cpu_config("market-128", "market-128 with the CPU settings of scripts/train_market_weights.sh", runs, name,
                    steps, model=arch, train={"batch_size": 8, "lr": 2e-4, "generator_flow": "mixed",
                                              "val_every": int(val_every), "ckpt_every": int(ckpt_every),
                                              "image_every": 1000, "val_pairs": 64, "keep_last": 2,
                                              "log_every": 25, "export_discriminator": True})
train_and_export(data, config, runs, name, out, t0, weights=Path(init) if init else None)
PY
