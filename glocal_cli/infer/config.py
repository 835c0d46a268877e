"""Configuration of inference (transfer / inpaint pipelines)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InferConfig:
    """Batched inference settings."""

    batch_size: int = 8
    """Images per forward pass."""
