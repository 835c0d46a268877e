"""Configuration of evaluation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings of ``glocal eval``."""

    protocol: str = "clean"
    """Named metric protocol (see docs/metrics.md)."""
    batch_size: int = 32
    """Images per batch for feature extraction."""
