#!/usr/bin/env bash
# Build SynthPeople at 64x44 and train the `synthetic-64` preset on the CPU (about 35 minutes on 2
# cores), then export the pose-transfer model to weights/default (config.json + safetensors, < 20 MB).
#
# The perceptual and sampling-correctness losses use a RANDOMLY initialised VGG-19 here
# (loss.allow_random_vgg): the demo must build without downloads. Everything runs under `nice`.
# Re-running continues an interrupted run (--resume auto) and re-exports the weights.
#
# Environment: PYTHON (default .venv/bin/python), DATA (data/synthpeople-64), RUNS (runs),
# NAME (demo-synthetic-64), OUT (weights/default), OMP_NUM_THREADS (1: on 2 shared cores one thread
# per process is much faster than two), IDENTITIES (160), POSES (8).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
DATA=${DATA:-data/synthpeople-64}
RUNS=${RUNS:-runs}
NAME=${NAME:-demo-synthetic-64}
OUT=${OUT:-weights/default}
IDENTITIES=${IDENTITIES:-160}
POSES=${POSES:-8}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

nice -n 10 "$PYTHON" - "$DATA" "$RUNS" "$NAME" "$OUT" "$IDENTITIES" "$POSES" <<'PY'
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml

from glocal_cli.config import resolve_config, to_dict
from glocal_cli.data.synthetic import prepare_synthetic
from glocal_cli.train.trainer import train

data, runs, name, out = (Path(a) for a in sys.argv[1:5])
identities, poses = int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
t0 = time.perf_counter()
if not (data / "manifest.json").is_file():
    prepare_synthetic(data, identities=identities, poses_per_identity=poses, size=(64, 44), seed=0,
                      workers=1, show_progress=False, test_fraction=0.1)
print(f"SynthPeople 64x44 in {data} ({time.perf_counter() - t0:.0f} s)", flush=True)

# synthetic-64 + the demo's CPU budget: a random VGG-19 (no download), 3 cheap perceptual layers.
# (The layer list and its weights change together, so they go through a config file, not --set.)
cfg = to_dict(resolve_config("synthetic-64"))
cfg["loss"].update(allow_random_vgg=True, vgg_download=False,
                   perceptual_layers=["relu1_1", "relu2_1", "relu3_1"], perceptual_layer_weights=[1.0, 1.0, 1.0])
cfg["data"]["workers"] = 1
config = runs / f"{name}.yaml"
config.parent.mkdir(parents=True, exist_ok=True)
config.write_text("# synthetic-64 with the demo's CPU settings (scripts/train_demo_weights.sh)\n"
                  + yaml.safe_dump(cfg, sort_keys=False))

result = train(data, config, stage="all", runs_dir=runs, name=name, resume="auto", device="cpu")
if result.interrupted or result.weights_dir is None:
    sys.exit("training interrupted: run this script again to continue")
tmp = out.with_name(out.name + ".tmp")
shutil.rmtree(tmp, ignore_errors=True)
shutil.copytree(result.weights_dir, tmp)
shutil.rmtree(out, ignore_errors=True)
tmp.rename(out)
size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
print(f"exported {out} ({size / 2**20:.1f} MB) in {(time.perf_counter() - t0) / 60:.1f} min; "
      f"validation: {result.stages[-1].metrics}")
PY
