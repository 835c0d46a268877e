"""Weights from a training checkpoint (the recipes' ``EXPORT_ONLY=1``; :func:`export_checkpoint` in Python).

A stage exports its weights folder when it ends; a long run stopped part-way (a CPU recipe resumed over
several sessions) has only checkpoints. :func:`export_checkpoint` rebuilds the model from the config the
checkpoint records, loads its state strictly and writes the weights folder (``config.json`` + safetensors
+ ``training-config.yaml``), exactly as the end of a stage does.
"""

from __future__ import annotations

from pathlib import Path

from glocal_cli.config import GLocalConfig, save_config
from glocal_cli.config.io import config_from_dict
from glocal_cli.errors import InputError
from glocal_cli.models.discriminator import Discriminator
from glocal_cli.models.generator import GLocalModel
from glocal_cli.train.checkpoint import load_checkpoint

__all__ = ["export_checkpoint"]


def export_checkpoint(checkpoint: Path, out: Path, discriminator: bool = False, overwrite: bool = False) -> dict:
    """Write the weights folder ``out`` from ``checkpoint``; returns ``{"stage", "step", "total_steps"}``.

    ``discriminator``: include the discriminator (to fine-tune adversarially later). An existing ``out``
    holding a ``config.json`` is refused unless ``overwrite``.
    """
    checkpoint, out = Path(checkpoint), Path(out)
    if (out / "config.json").exists() and not overwrite:
        raise InputError(f"{out}: a weights folder already exists (use --overwrite to replace it)")
    state = load_checkpoint(checkpoint)
    if "model" not in state or "config" not in state:
        raise InputError(f"{checkpoint}: not a glocal training checkpoint (no model state or config)")
    cfg = config_from_dict(GLocalConfig, state["config"], label=str(checkpoint))
    model = GLocalModel(cfg.model, cfg.data.height, cfg.data.width, cfg.data.num_classes)
    model.load_state_dict(state["model"], strict=True)
    d = None
    if discriminator:
        d = Discriminator(cfg.model)
        d.load_state_dict(state["discriminator"], strict=True)
    model.save_pretrained(out, discriminator=d, pose_sigma=cfg.data.pose_sigma)
    save_config(cfg, out / "training-config.yaml")
    return {"stage": state.get("stage"), "step": state.get("step"), "total_steps": state.get("total_steps")}
