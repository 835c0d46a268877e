"""A weights folder whose semantic network comes from another weights folder of the same frame.

    python scripts/combine_weights.py --base weights/inpaint --semantic-from weights/parser --out weights/inpaint \
        [--infer source_parser=../parser-256 --infer parsing_ensemble=true ...]

How ``weights/inpaint`` gets the real-photo parser (``weights/parser``, trained on CCP) as its semantic network:
the semantic network is independent of the others (it reads the photo and the poses only), so its width may
differ; ``config.json`` records the new widths. Every network is loaded strictly from its folder and the result
is reloaded strictly before it replaces ``--out`` (through ``<out>.tmp``; ``MODEL_CARD.md`` and
``training-config.yaml`` of an existing ``--out``, else of ``--base``, are kept). The base's saved discriminator,
when it has one, is carried over. ``--infer KEY=VALUE`` records an ``infer.*`` setting the folder recommends
(``config.json``'s ``"infer"``, :func:`glocal_cli.infer.config.weights_settings`; the base's are kept unless
given again); a relative ``source_parser`` is a folder beside ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from glocal_cli.config import parse_override
from glocal_cli.infer.config import WEIGHTS_SETTINGS_KEY, weights_settings
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.pretrained import from_pretrained


def combine(base: Path, semantic_from: Path, out: Path, infer: dict | None = None) -> Path:
    """Write ``out`` = ``base`` with the semantic network of ``semantic_from`` and the recommended ``infer.*``
    settings of ``base`` updated by ``infer``; returns ``out``."""
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
    root = json.loads((tmp / "config.json").read_text())
    if (base / "discriminator").is_dir():
        shutil.copytree(base / "discriminator", tmp / "discriminator")
        root["components"] = sorted({*root["components"], "discriminator"})
    settings = {**meta.get(WEIGHTS_SETTINGS_KEY, {}), **(infer or {})}
    if settings:
        root[WEIGHTS_SETTINGS_KEY] = settings
    (tmp / "config.json").write_text(json.dumps(root, indent=2) + "\n")
    for name in ("MODEL_CARD.md", "training-config.yaml"):
        src = out / name if (out / name).is_file() else base / name
        if src.is_file():
            shutil.copy2(src, tmp / name)
    check = from_pretrained(tmp)  # strict
    parser = weights_settings(tmp).get("source_parser")  # checked as the pipeline reads them (tmp is beside out)
    if parser and not (Path(parser) / "config.json").is_file():
        raise SystemExit(f"--infer source_parser: {parser} is not a weights folder")
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
    ap.add_argument("--infer", action="append", default=[], metavar="KEY=VALUE",
                    help="an infer.* setting the folder recommends (YAML value), repeatable")
    args = ap.parse_args()
    infer = {}
    for item in args.infer:
        infer.update(parse_override(f"infer.{item}")["infer"])
    print(combine(args.base, args.semantic_from, args.out, infer))


if __name__ == "__main__":
    main()
