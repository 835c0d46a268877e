"""Staged, resumable, DDP-ready training of GLocal (``glocal train``).

The library entry point is :func:`glocal_cli.train.trainer.train`; it is imported lazily here so that
``import glocal_cli.train`` (e.g. for :class:`~glocal_cli.train.config.TrainConfig`) stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from glocal_cli.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'glocal_cli.train' has no attribute {name!r}")
