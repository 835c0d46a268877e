#!/usr/bin/env bash
# Default weights v3 (issue 22): the default weights' architecture fine-tuned on a mix of real and synthetic
# people at the default frame 128x88, on the CPU, resumable (re-run to continue), then exported to $OUT.
#
# 1. Data (each folder prepared once, skipped when its manifest exists):
#    - SynthPeople on Anny bodies (exact parsing and 3D correspondence; unseen sides, faces, hair):
#      data/synthpeople-anny-128, as scripts/train_default_weights.sh makes it;
#    - Market-1501 real pose pairs at 128x88 (the 128x64 crops padded into the default frame), parsing and
#      per-pair correspondence from the Anny body fitted to each photo (--parsing body3d --correspondence
#      body3d, as scripts/train_market_weights.sh): data/market-128x88;
#    - Clothing Co-Parsing street photos with pixel-labelled parsings (self-pairs): data/ccp-128.
# 2. Training (`glocal train --data A --data B --data C`, docs/training.md "Training on several datasets"):
#    from weights/default (v2), the semantic stage on all three (CCP's real parsings, the bodies' parsings,
#    SynthPeople's exact ones) and the generator stage on the datasets with ground-truth flow (SynthPeople,
#    Market: the trainer leaves CCP's self-pairs out of it with a warning), mix weights MIX (1,1,1), batch 8,
#    Adam 2e-4; validation of every dataset every VAL_EVERY steps, checkpoints every CKPT_EVERY steps.
# 3. Export: the generator checkpoint CHECKPOINT (last: step 4,000, the best validation PSNR on both datasets;
#    best: the trainer's best.pt, by the first dataset's L1) -> $OUT, keeping its MODEL_CARD.md, with the semantic
#    network of SEMANTIC_FROM put back (scripts/combine_weights.py; the one trained on the mix learned Market's
#    body-shaped parsings and cost 0.9 dB on Market: docs/results.md, "Default weights v3"; empty: keep).
#
# Environment: PYTHON, RAW_MARKET (../shared/data/market1501), RAW_CCP (../shared/data/ccp), SYNTH, MARKET, CCP
# (the data folders above), RUNS (runs), NAME (v3-mix-128), OUT (runs/v3-weights: not promoted, docs/results.md "Default weights v3"; promote to weights/default by
# hand after the benchmarks), INIT (weights/default), STEPS ("SEMANTIC,GENERATOR", 1000,4000), MIX (1,1,1),
# VAL_EVERY (250), CKPT_EVERY (100), CHECKPOINT (last), SEMANTIC_FROM (weights/default), OMP_NUM_THREADS (1),
# PREPARE_ONLY (1: stop after the data).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
RAW_MARKET=${RAW_MARKET:-../shared/data/market1501}
RAW_CCP=${RAW_CCP:-../shared/data/ccp}
SYNTH=${SYNTH:-data/synthpeople-anny-128}
MARKET=${MARKET:-data/market-128x88}
CCP=${CCP:-data/ccp-128}
RUNS=${RUNS:-runs}
NAME=${NAME:-v3-mix-128}
OUT=${OUT:-runs/v3-weights}
INIT=${INIT:-weights/default}
STEPS=${STEPS:-1000,4000}
MIX=${MIX:-1,1,1}
VAL_EVERY=${VAL_EVERY:-250}
CKPT_EVERY=${CKPT_EVERY:-100}
PREPARE_ONLY=${PREPARE_ONLY:-}
CHECKPOINT=${CHECKPOINT:-last}
SEMANTIC_FROM=${SEMANTIC_FROM-weights/default}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ ! -f "$SYNTH/manifest.json" ]; then
  nice -n 5 "$PYTHON" -m glocal_cli prepare-data synthetic --body anny --out "$SYNTH" -n 400 -k 8 --size 128x88 \
    --pairs-per-image 1 --workers 2
fi
if [ ! -f "$MARKET/manifest.json" ]; then
  nice -n 5 "$PYTHON" -m glocal_cli prepare-data market --raw "$RAW_MARKET" --out "$MARKET" --size 128x88 \
    --min-keypoints 8 --max-pairs-per-identity 40 --parsing body3d --correspondence body3d --workers 2
fi
if [ ! -f "$CCP/manifest.json" ]; then
  nice -n 5 "$PYTHON" -m glocal_cli prepare-data ccp --raw "$RAW_CCP" --out "$CCP"
fi
[ -n "$PREPARE_ONLY" ] && exit 0

nice -n 5 "$PYTHON" - "$SYNTH" "$MARKET" "$CCP" "$RUNS" "$NAME" "$OUT" "$INIT" "$STEPS" "$MIX" "$VAL_EVERY" \
  "$CKPT_EVERY" "$CHECKPOINT" <<'PY'
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, "scripts")
from cpu_recipe import cpu_config, export_weights  # noqa: E402

from glocal_cli.train.trainer import train  # noqa: E402

synth, market, ccp, runs, name, out, init = (Path(a) for a in sys.argv[1:8])
semantic_steps, generator_steps = (int(x) for x in sys.argv[8].split(","))
mix = [float(x) for x in sys.argv[9].split(",")]
val_every, ckpt_every = int(sys.argv[10]), int(sys.argv[11])
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
t0 = time.perf_counter()
arch = json.loads((init / "config.json").read_text())["model"]
config = cpu_config("synthpeople-anny-128", "default weights v3 (scripts/train_v3_weights.sh)", runs, name,
                    model=arch,
                    train={"stages": ["semantic", "generator"], "steps_semantic": semantic_steps,
                           "steps_generator": generator_steps, "batch_size": 8, "val_every": val_every,
                           "ckpt_every": ckpt_every, "keep_last": 2, "log_every": 25, "val_pairs": 48},
                    data={"mix_weights": mix})
result = train([synth, market, ccp], config, stage="all", runs_dir=runs, name=name, resume="auto", device="cpu",
               weights=init)
if result.interrupted or result.weights_dir is None:
    sys.exit("training interrupted: run this script again to continue")
if sys.argv[12] == "last":  # the final step (its validation PSNR was the best on both datasets)
    from glocal_cli.train.export import export_checkpoint

    last = runs / name / "weights-last"
    export_checkpoint(runs / name / "checkpoints" / "generator" / "last.pt", last, overwrite=True)
    size = export_weights(last, out)
else:
    size = export_weights(result.weights_dir, out)
print(f"exported {out} ({size / 2**20:.1f} MB) in {(time.perf_counter() - t0) / 60:.1f} min; "
      f"validation: {result.stages[-1].metrics}")
PY
if [ -n "$SEMANTIC_FROM" ]; then
  "$PYTHON" scripts/combine_weights.py --base "$OUT" --semantic-from "$SEMANTIC_FROM" --out "$OUT"
fi
