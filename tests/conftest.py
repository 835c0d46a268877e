"""Shared fixtures: tiny configs, the shared community data, seeded RNG."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GLOCAL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (the community benchmark files); skips when absent."""
    if not (SHARED_DATA / "deepfashion").is_dir():
        pytest.skip(f"community data not found at {SHARED_DATA} (set GLOCAL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_config():
    """The resolved ``tiny`` preset: 32x24 frame, a few channels."""
    from glocal_cli.config import resolve_config

    return resolve_config("tiny")


@pytest.fixture(autouse=True)
def _seed_everything():
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
