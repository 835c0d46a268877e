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
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml

from glocal_cli.config import resolve_config, to_dict
from glocal_cli.train.trainer import train

data, runs, name, out = (Path(a) for a in sys.argv[1:5])
steps = sys.argv[5]
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
t0 = time.perf_counter()
cfg = to_dict(resolve_config("synthpeople-anny-128"))
cfg["loss"].update(allow_random_vgg=True, vgg_download=False,
                   perceptual_layers=["relu1_1", "relu2_1", "relu3_1"], perceptual_layer_weights=[1.0, 1.0, 1.0])
cfg["data"]["workers"] = 1
if steps:
    s, f, g = (int(x) for x in steps.split(","))
    cfg["train"].update(steps_semantic=s, steps_flow=f, steps_generator=g)
config = runs / f"{name}.yaml"
config.parent.mkdir(parents=True, exist_ok=True)
config.write_text("# synthpeople-anny-128 with the CPU settings of scripts/train_default_weights.sh\n"
                  + yaml.safe_dump(cfg, sort_keys=False))
result = train(data, config, stage="all", runs_dir=runs, name=name, resume="auto", device="cpu")
if result.interrupted or result.weights_dir is None:
    sys.exit("training interrupted: run this script again to continue")
tmp = out.with_name(out.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
shutil.copytree(result.weights_dir, tmp)
keep = out / "MODEL_CARD.md"
card = keep.read_text() if keep.is_file() else None
shutil.rmtree(out, ignore_errors=True)
tmp.rename(out)
if card is not None:
    (out / "MODEL_CARD.md").write_text(card)
size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
print(f"exported {out} ({size / 2**20:.1f} MB) in {(time.perf_counter() - t0) / 60:.1f} min; "
      f"validation: {result.stages[-1].metrics}")
PY
