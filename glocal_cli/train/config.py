"""Configuration of training (owned by the trainer)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, checkpointing and logging of ``glocal train``."""

    batch_size: int = 8
    """Images per process (per GPU) per step."""
    lr: float = 1e-4
    """Adam learning rate of the generator networks."""
    seed: int = 0
    """Random seed."""
