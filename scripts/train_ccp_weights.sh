#!/usr/bin/env bash
# Real-photo parsing and inpainting from Clothing Co-Parsing (CCP), on the CPU, starting from weights/default.
#
# 1. Data: `glocal prepare-data ccp` (the 1,004 labelled street photos at the default weights' frame 128x88; the
#    59 labels mapped to the 8 classes, skin split into face/arms/legs by the keypoints; ~100 held out as test).
# 2. Parsing: the semantic stage (focal loss, Eq. 1) fine-tuned on CCP from weights/default -> runs/ccp-parsing
#    (its weights replace the semantic network of the default weights when they win on the held-out maps:
#    `python benchmarks/eval_parsing.py`).
# 3. Inpainting: the inpaint stage with model.inpaint_prefill (the network refines OpenCV's Telea fill, docs/
#    design.md), irregular strokes of 1-60% and semantic holes, from weights/default -> $INPAINT_OUT.
# Validation every VAL_EVERY steps into runs/<name>/validation.jsonl; re-running resumes exactly.
#
# Environment: PYTHON, RAW (../shared/data/ccp), DATA (data/ccp-128), RUNS (runs), INIT (weights/default),
# PARSING_STEPS (1500), INPAINT_STEPS (3000), INPAINT_OUT (weights/inpaint), OMP_NUM_THREADS (1),
# WHAT (both|parsing|inpaint|parser), PARSER_STEPS (8000), PARSER_WIDTH (32: the semantic U-Net's first width, x4 at
# most), PARSER_OUT (weights/parser), PARSER_INIT (none: from scratch; a weights folder to fine-tune from, e.g.
# weights/parser to refine it at a larger frame: DATA=data/ccp-256 prepared with --size 256x176), PARSER_HOLES (0:
# the fraction of each batch shown with a Telea-filled irregular hole, train.semantic_holes, for inpainting).
# 4. Parser (WHAT=parser): a wider semantic network trained from scratch on CCP alone -> runs/ccp-parser, exported
#    to $PARSER_OUT: the source-parsing estimate `infer.source_parser` reads (it predicts parsings only).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
RAW=${RAW:-../shared/data/ccp}
DATA=${DATA:-data/ccp-128}
RUNS=${RUNS:-runs}
INIT=${INIT:-weights/default}
PARSING_STEPS=${PARSING_STEPS:-1500}
INPAINT_STEPS=${INPAINT_STEPS:-3000}
INPAINT_OUT=${INPAINT_OUT:-weights/inpaint}
VAL_EVERY=${VAL_EVERY:-250}
WHAT=${WHAT:-both}
PARSER_STEPS=${PARSER_STEPS:-8000}
PARSER_WIDTH=${PARSER_WIDTH:-32}
PARSER_OUT=${PARSER_OUT:-weights/parser}
PARSER_INIT=${PARSER_INIT:-}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ ! -f "$DATA/manifest.json" ]; then
  nice -n 5 "$PYTHON" -m glocal_cli prepare-data ccp --raw "$RAW" --out "$DATA"
fi

nice -n 5 "$PYTHON" - "$DATA" "$RUNS" "$INIT" "$PARSING_STEPS" "$INPAINT_STEPS" "$INPAINT_OUT" "$VAL_EVERY" "$WHAT" \
  "$PARSER_STEPS" "$PARSER_WIDTH" "$PARSER_OUT" "$PARSER_INIT" "${PARSER_LR:-2e-4}" "${PARSER_RUN:-ccp-parser}" "${PARSER_HOLES:-0}" <<'PY'
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, "scripts")
from cpu_recipe import cpu_config, export_weights  # noqa: E402

from glocal_cli.train.trainer import train  # noqa: E402

data, runs, init = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
parsing_steps, inpaint_steps, inpaint_out, val_every, what = (int(sys.argv[4]), int(sys.argv[5]), Path(sys.argv[6]),
                                                              int(sys.argv[7]), sys.argv[8])
parser_steps, parser_width, parser_out = int(sys.argv[9]), int(sys.argv[10]), Path(sys.argv[11])
parser_init, parser_lr, parser_run = (Path(sys.argv[12]) if sys.argv[12] else None), float(sys.argv[13]), sys.argv[14]
parser_holes = float(sys.argv[15])
manifest = json.loads((data / "manifest.json").read_text())
frame = {"height": manifest["height"], "width": manifest["width"]}  # the data's frame is the model's
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
arch = json.loads((init / "config.json").read_text())["model"]
common = {"batch_size": 8, "lr": 1e-4, "val_every": val_every, "ckpt_every": 100, "image_every": 1000,
          "val_pairs": 48, "keep_last": 2, "log_every": 25, "val_fraction": 0.05}
t0 = time.perf_counter()
if what in ("both", "parsing"):
    cfg = cpu_config("synthpeople-anny-128", "CCP parsing (scripts/train_ccp_weights.sh)", runs, "ccp-parsing",
                     model=arch, train={**common, "stages": ["semantic"], "steps_semantic": parsing_steps,
                                        "semantic_self_fraction": 1.0})
    res = train(data, cfg, stage="semantic", runs_dir=runs, name="ccp-parsing", resume="auto", device="cpu",
                weights=init, reschedule=True)  # constant LR: more PARSING_STEPS continue a finished run
    if res.interrupted:
        sys.exit("interrupted: run this script again to continue")
    print(f"parsing: {res.weights_dir} in {(time.perf_counter() - t0) / 60:.1f} min; {res.stages[-1].metrics}")
if what == "parser":
    if parser_init is not None:
        arch = json.loads((parser_init / "config.json").read_text())["model"]
    cfg = cpu_config("synthpeople-anny-128", "CCP source parser (scripts/train_ccp_weights.sh)", runs, parser_run,
                     model={**arch, "semantic_channels": parser_width, "semantic_max_channels": 4 * parser_width},
                     train={**common, "lr": parser_lr, "val_every": 500, "stages": ["semantic"],
                            "steps_semantic": parser_steps, "semantic_self_fraction": 1.0,
                            "semantic_holes": parser_holes}, data=frame)
    res = train(data, cfg, stage="semantic", runs_dir=runs, name=parser_run, resume="auto", device="cpu",
                weights=parser_init, reschedule=parser_init is not None)
    if res.interrupted:
        sys.exit("interrupted: run this script again to continue")
    size = export_weights(res.weights_dir, parser_out)
    print(f"parser: {parser_out} ({size / 2**20:.1f} MB) in {(time.perf_counter() - t0) / 60:.1f} min; "
          f"{res.stages[-1].metrics}")
if what in ("both", "inpaint"):
    # start exactly at the classical fill: the pixel blend's head (trained for pose transfer's copy prior) is
    # zeroed, so that at step 0 the output is the prefill (m = 0.999, no residual) and training learns the correction
    start = runs / "ccp-inpaint-init"
    if not (start / "config.json").is_file():
        import shutil

        from safetensors.torch import load_file, save_file

        shutil.copytree(init, start, dirs_exist_ok=True)
        state = load_file(start / "generator" / "model.safetensors")
        for key in [k for k in state if k.startswith("blend.head.")]:
            state[key] = torch.zeros_like(state[key])
        save_file(state, start / "generator" / "model.safetensors")
        import hashlib

        meta = json.loads((start / "generator" / "config.json").read_text())
        meta["sha256"] = hashlib.sha256((start / "generator" / "model.safetensors").read_bytes()).hexdigest()
        (start / "generator" / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    cfg = cpu_config("synthpeople-anny-128", "CCP inpainting (scripts/train_ccp_weights.sh)", runs, "ccp-inpaint",
                     model={**arch, "inpaint_prefill": True},
                     train={**common, "stages": ["inpaint"], "steps_inpaint": inpaint_steps, "inpaint_mask": "mixed",
                            "export_discriminator": True},
                     # L1 alone: with the adversarial term (and a random VGG) the L1 to the photo rose from 0.049 to
                     # 0.061 in 250 steps, away from the fill it should refine (docs/design.md)
                     loss={"w_adv": 0.0, "w_perceptual": 0.0})
    res = train(data, cfg, stage="inpaint", runs_dir=runs, name="ccp-inpaint", resume="auto", device="cpu",
                weights=start, reschedule=True)
    if res.interrupted or res.inpaint_weights_dir is None:
        sys.exit("interrupted: run this script again to continue")
    size = export_weights(res.inpaint_weights_dir, inpaint_out)
    print(f"inpainting: {inpaint_out} ({size / 2**20:.1f} MB) in {(time.perf_counter() - t0) / 60:.1f} min; "
          f"{res.stages[-1].metrics}")
PY
