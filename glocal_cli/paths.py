"""Where glocal looks for things it did not get on the command line."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def default_weights_dir() -> Path | None:
    """The default weights: ``$GLOCAL_WEIGHTS``, else the repo's ``weights/default`` (editable install)."""
    env = os.environ.get("GLOCAL_WEIGHTS")
    if env:
        return Path(env)
    candidate = REPO_DIR / "weights" / "default"
    return candidate if (candidate / "config.json").is_file() else None


def default_inpaint_weights_dir() -> Path | None:
    """The default inpainting weights: ``$GLOCAL_INPAINT_WEIGHTS``, else the repo's ``weights/inpaint`` (trained
    on real photos to refine a classical fill), else :func:`default_weights_dir` (the transfer weights)."""
    env = os.environ.get("GLOCAL_INPAINT_WEIGHTS")
    if env:
        return Path(env)
    if os.environ.get("GLOCAL_WEIGHTS"):  # a user who points at their own weights means them for both tasks
        return default_weights_dir()
    candidate = REPO_DIR / "weights" / "inpaint"
    return candidate if (candidate / "config.json").is_file() else default_weights_dir()


def shared_data_dir() -> Path | None:
    """The community benchmark files: ``$GLOCAL_SHARED_DATA``, else ``../shared/data`` beside the repo."""
    env = os.environ.get("GLOCAL_SHARED_DATA")
    if env:
        return Path(env)
    candidate = REPO_DIR.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint cache (``$TORCH_HOME/hub/checkpoints``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"
