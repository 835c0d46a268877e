"""Helpers of the inference tests: tiny random weights saved with save_pretrained, small inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def save_tiny_weights(directory: Path, seed: int = 0, frame_scale: int = 1, **model_changes: object) -> Path:
    """A ``tiny``-config GLocalModel (32x24 frame, ``frame_scale`` times larger each way) with seeded random
    weights, as a weights folder (``model_changes``: model config keys to change, e.g. ``inpaint_prefill=True``)."""
    import dataclasses

    import torch

    from glocal_cli.config import resolve_config
    from glocal_cli.models.generator import GLocalModel
    from glocal_cli.models.pretrained import save_pretrained

    cfg = resolve_config("tiny")
    torch.manual_seed(seed)
    mcfg = dataclasses.replace(cfg.model, **model_changes) if model_changes else cfg.model
    model = GLocalModel(mcfg, cfg.data.height * frame_scale, cfg.data.width * frame_scale, cfg.data.num_classes)
    return save_pretrained(model, directory)


def copy_examples(dest: Path, sources: int = 2, poses: int = 2) -> tuple[Path, Path]:
    """Copy a few example sources (with sidecars) and poses into ``dest``."""
    src, pos = dest / "sources", dest / "poses"
    src.mkdir(parents=True)
    pos.mkdir(parents=True)
    for i in range(sources):
        for f in (EXAMPLES / "sources").glob(f"person_{i:02d}*"):
            shutil.copy(f, src / f.name)
    for j in range(poses):
        shutil.copy(EXAMPLES / "poses" / f"pose_{j:02d}.json", pos)
    return src, pos


def openpose_json(path: Path, people: list[np.ndarray]) -> Path:
    """Write an OpenPose JSON with the given ``(18, 3)`` people."""
    import json

    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": p.reshape(-1).tolist()} for p in people]}))
    return path


def standing_pose(height: int, width: int, score: float = 1.0) -> np.ndarray:
    """A plausible ``(18, 3)`` standing pose inside a ``height x width`` canvas."""
    xs = np.array([0.5, 0.5, 0.35, 0.3, 0.28, 0.65, 0.7, 0.72, 0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.45, 0.55, 0.42, 0.58])
    ys = np.array([0.1, 0.2, 0.2, 0.35, 0.5, 0.2, 0.35, 0.5, 0.55, 0.72, 0.9, 0.55, 0.72, 0.9, 0.08, 0.08, 0.09, 0.09])
    return np.stack([xs * width, ys * height, np.full(18, score)], axis=1).astype(np.float32)
