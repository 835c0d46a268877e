"""``save_pretrained`` / ``from_pretrained``: a weights folder of ``config.json`` + one sub-folder per component.

Layout::

    <DIR>/config.json                      {"format": "glocal-weights", "format_version": 1, "model": {...},
                                            "frame": {"height": H, "width": W}, "num_classes": 8,
                                            "components": [...], "glocal_version": ...}
    <DIR>/<component>/config.json          {"format": "glocal-weights-component", "format_version": 1,
                                            "component": name, "class": ..., "num_parameters": ..., "sha256": ...}
    <DIR>/<component>/model.safetensors    the component's state dict

Components: ``semantic``, ``flow`` (when learned), ``generator`` and optionally ``discriminator``.
Loading rebuilds the networks from the saved config and loads every component strictly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from glocal_cli.errors import WeightsError
from glocal_cli.models.discriminator import Discriminator
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.weights import (
    COMPONENT_FORMAT,
    CONFIG_NAME,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    load_component,
    read_weights_config,
    save_component,
)

__all__ = ["COMPONENT_FORMAT", "CONFIG_NAME", "FORMAT", "FORMAT_VERSION", "WEIGHTS_NAME", "from_pretrained",
           "load_component", "load_discriminator", "read_weights_config", "save_component", "save_pretrained"]


def save_pretrained(model: GLocalModel, directory: str | Path, discriminator: Discriminator | None = None,
                    pose_sigma: float | None = None) -> Path:
    """Write a weights folder for ``model`` (and optionally its discriminator); returns the folder
    (:meth:`GLocalModel.save_pretrained`)."""
    return model.save_pretrained(directory, discriminator, pose_sigma)


def from_pretrained(directory: str | Path, map_location: str | torch.device = "cpu") -> GLocalModel:
    """Rebuild a :class:`GLocalModel` from a weights folder and load every component strictly."""
    return GLocalModel.from_pretrained(directory, map_location)


def load_discriminator(directory: str | Path) -> Discriminator:
    """The discriminator saved in a weights folder (raises :class:`WeightsError` if there is none)."""
    cfg, meta = read_weights_config(directory)
    if "discriminator" not in meta.get("components", []):
        raise WeightsError(f"{Path(directory) / CONFIG_NAME}: this weights folder has no discriminator")
    return load_component(Discriminator(cfg), directory, "discriminator")  # type: ignore[return-value]
