"""A weights folder whose semantic network comes from another weights folder of the same frame.

    python scripts/combine_weights.py --base weights/inpaint --semantic-from weights/parser --out weights/inpaint

How ``weights/inpaint`` gets the real-photo parser (``weights/parser``, trained on CCP) as its semantic network:
the semantic network is independent of the others (it reads the photo and the poses only), so its width may
differ; ``config.json`` records the new widths. Every network is loaded strictly from its folder and the result
is reloaded strictly before it replaces ``--out`` (through ``<out>.tmp``; ``MODEL_CARD.md`` and
``training-config.yaml`` of an existing ``--out``, else of ``--base``, are kept). The base's saved discriminator,
when it has one, is carried over.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.pretrained import from_pretrained


def combine(base: Path, semantic_from: Path, out: Path) -> Path:
    """Write ``out`` = ``base`` with the semantic network of ``semantic_from``; returns ``out``."""
    model, donor = from_pretrained(base), from_pretrained(semantic_from)
    if (model.height, model.width) != (donor.height, donor.width):
        raise SystemExit(f"{semantic_from}: frame {donor.height}x{donor.width}, {base}'s is "
                         f"{model.height}x{model.width}")
    cfg = replace(model.cfg, semantic_channels=donor.cfg.semantic_channels,
                  semantic_max_channels=donor.cfg.semantic_max_channels, semantic_depth=donor.cfg.semantic_depth)
    combined = GLocalModel(cfg, model.height, model.width, model.num_classes)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("semantic.")}
    state.update({k: v for k, v in donor.state_dict().items() if k.startswith("semantic.")})
    combined.load_state_dict(state, strict=True)
    meta = json.loads((base / "config.json").read_text())
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    combined.save_pretrained(tmp, pose_sigma=meta.get("frame", {}).get("pose_sigma"))
    if (base / "discriminator").is_dir():
        shutil.copytree(base / "discriminator", tmp / "discriminator")
        root = json.loads((tmp / "config.json").read_text())
        root["components"] = sorted({*root["components"], "discriminator"})
        (tmp / "config.json").write_text(json.dumps(root, indent=2) + "\n")
    for name in ("MODEL_CARD.md", "training-config.yaml"):
        src = out / name if (out / name).is_file() else base / name
        if src.is_file():
            shutil.copy2(src, tmp / name)
    check = from_pretrained(tmp)  # strict
    for key, value in donor.state_dict().items():
        if key.startswith("semantic.") and not torch.equal(check.state_dict()[key], value):
            raise SystemExit(f"{key}: not carried over")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--semantic-from", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    print(combine(args.base, args.semantic_from, args.out))


if __name__ == "__main__":
    main()
