"""The GLocal networks: semantic prediction, flow, encoders, GGR, LST, decoder, discriminator.

Only the config classes are imported eagerly (the config schema imports them); the networks are
loaded lazily on first attribute access so that reading a config does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from glocal_cli.models.config import LossConfig, ModelConfig

_LAZY = {
    "Discriminator": "glocal_cli.models.discriminator",
    "GLocalGenerator": "glocal_cli.models.generator",
    "GLocalModel": "glocal_cli.models.generator",
    "GLocalOutput": "glocal_cli.models.generator",
    "GeneratorOutput": "glocal_cli.models.generator",
    "from_pretrained": "glocal_cli.models.pretrained",
    "load_discriminator": "glocal_cli.models.pretrained",
    "save_pretrained": "glocal_cli.models.pretrained",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'glocal_cli.models' has no attribute {name!r}")


__all__ = ["LossConfig", "ModelConfig", *_LAZY]
