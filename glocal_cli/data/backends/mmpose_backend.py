"""The ``mmpose`` keypoint backend: a top-down model (RTMPose, HRNet, ...) through mmpose's API.

The user picks the model: ``config`` is a config file path or an mmpose model alias (e.g.
``rtmpose-m_8xb256-420e_coco-256x192`` or ``human``, resolved through mmpose's metafiles), and
``checkpoint`` a weights file or URL (an alias brings its own URL; mmengine downloads it where a
network exists). Each image is treated as one person crop: the person box is the whole image
(DeepFashion and Market-1501 images are person crops; for other photos, mmpose's full-image box
still finds the dominant person). Several images run as one batch through ``model.test_step``.

mmpose predicts the 17 COCO points; they map to COCO-18 by name
(:data:`~glocal_cli.data.keypoints.COCO17_TO_COCO18`), the neck being the shoulders' midpoint
when both are visible; a point whose score is below ``min_score`` is missing.

mmpose's package imports ``mmcv.ops``, which only the full mmcv (with compiled ops) provides;
with ``mmcv-lite`` a placeholder module must be registered first (``make mmpose`` documents it;
the test suite does it). Install: ``make mmpose`` (docs/data.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli.data.backends.base import KeypointBackend, _non_empty
from glocal_cli.data.keypoints import COCO17_TO_COCO18, KEYPOINT_NAMES, NUM_KEYPOINTS, Pose
from glocal_cli.errors import NotAvailableError, WeightsError

__all__ = ["MmposeBackend", "coco17_to_coco18", "mmpose_status"]

_NECK = KEYPOINT_NAMES.index("neck")
_R_SH, _L_SH = KEYPOINT_NAMES.index("r_shoulder"), KEYPOINT_NAMES.index("l_shoulder")


def mmpose_status() -> tuple[bool, str]:
    """``(importable, reason)`` for ``mmpose.apis`` (does not check weights)."""
    try:
        import mmpose
        from mmpose.apis import inference_topdown, init_model  # noqa: F401
    except Exception as e:  # ImportError, or mmcv.ops missing under mmcv-lite
        if "mmcv.ops" in str(e) or "mmcv._ext" in str(e):
            return False, (
                f"mmpose needs mmcv's compiled ops ({e}); mmcv-lite lacks them: install the full mmcv "
                "(`pip install mmcv==2.1.0`, which builds its ops)"
            )
        return False, f"mmpose is not installed or fails to import ({e.__class__.__name__}: {e}); see `make mmpose`"
    return True, f"mmpose {getattr(mmpose, '__version__', '?')}"


def coco17_to_coco18(xy17: np.ndarray, scores17: np.ndarray, min_score: float) -> Pose:
    """COCO-17 ``(17, 2)`` pixel coordinates + ``(17,)`` scores -> a COCO-18 :class:`Pose`."""
    xy = np.full((NUM_KEYPOINTS, 2), -1.0)
    score = np.zeros(NUM_KEYPOINTS)
    for i, j in enumerate(COCO17_TO_COCO18):
        if j is not None:
            xy[i] = xy17[j]
            score[i] = scores17[j]
    visible = score >= min_score
    if visible[_R_SH] and visible[_L_SH]:
        xy[_NECK] = (xy[_R_SH] + xy[_L_SH]) / 2
        score[_NECK] = min(score[_R_SH], score[_L_SH])
        visible[_NECK] = True
    return Pose(xy, visible, score)


def _resolve_alias(config: str) -> tuple[str, str | None]:
    """An mmpose model name or alias from its metafiles -> ``(config path, weights URL)``.

    A path (``.py`` suffix or a path separator) is returned unchanged with no URL.
    """
    if Path(config).suffix == ".py" or os.sep in config or "/" in config:
        return config, None
    try:
        from mmengine.infer import BaseInferencer

        root = BaseInferencer._get_repo_or_mim_dir("mmpose")
        models = list(BaseInferencer._get_models_from_metafile(root))
    except Exception as e:
        raise WeightsError(f"mmpose model {config!r}: cannot read mmpose's model index ({e.__class__.__name__}: {e})") from None
    wanted = config.lower()
    for entry in models:
        aliases = entry.get("Alias", [])
        aliases = [aliases] if isinstance(aliases, str) else list(aliases)
        if entry["Name"].lower() == wanted or wanted in (a.lower() for a in aliases):
            weights = entry["Weights"]
            weights = weights[0] if isinstance(weights, list) else weights
            return os.path.join(root, entry["Config"]), weights
    raise WeightsError(f"mmpose model {config!r}: not a config file and not a model name or alias in mmpose's index")


class MmposeBackend(KeypointBackend):
    """A top-down mmpose model; see the module docstring.

    ``random_weights=True`` allows ``checkpoint=None`` (the model then has random weights: only for
    tests of shapes and frames). ``batch_size`` images go through the model at once.
    """

    name = "mmpose"

    def __init__(
        self,
        config: str | os.PathLike[str],
        checkpoint: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        min_score: float = 0.3,
        batch_size: int = 8,
        random_weights: bool = False,
    ) -> None:
        ok, reason = mmpose_status()
        if not ok:
            raise NotAvailableError(f"keypoint backend 'mmpose': {reason}")
        from mmpose.apis import init_model

        cfg, url = _resolve_alias(str(config))
        if not Path(cfg).is_file() and url is None:
            raise WeightsError(f"{cfg}: mmpose config file not found")
        weights = str(checkpoint) if checkpoint is not None else url
        if weights is None and not random_weights:
            raise WeightsError(f"mmpose model {config}: no checkpoint given (--mmpose-checkpoint FILE or URL)")
        if weights is not None and "://" not in weights and not Path(weights).is_file():
            raise WeightsError(f"{weights}: mmpose checkpoint not found")
        try:
            self.model: Any = init_model(cfg, weights, device=device)
        except (OSError, RuntimeError, ConnectionError) as e:
            raise WeightsError(
                f"mmpose model {config}: cannot load weights {weights} ({e.__class__.__name__}: {e}); "
                "without a network, download the checkpoint elsewhere and pass its path"
            ) from None
        self.config = str(config)
        self.checkpoint = weights
        self.min_score = float(min_score)
        self.batch_size = max(1, int(batch_size))

    def predict_coco17(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Raw model output: per image ``(xy (17, 2), scores (17,))`` in the image's pixels."""
        from mmengine.dataset import Compose, pseudo_collate

        if not images:
            return []
        pipeline = Compose(self.model.cfg.test_dataloader.dataset.pipeline)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(images), self.batch_size):
            data_list = []
            for image in images[start : start + self.batch_size]:
                img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[..., ::-1])  # mmpose wants BGR
                h, w = img.shape[:2]
                info: dict[str, Any] = {
                    "img": img,
                    "bbox": np.array([[0, 0, w, h]], dtype=np.float32),
                    "bbox_score": np.ones(1, dtype=np.float32),
                }
                info.update(self.model.dataset_meta)
                data_list.append(pipeline(info))
            import torch

            with torch.no_grad():
                samples = self.model.test_step(pseudo_collate(data_list))
            for s in samples:
                inst = s.pred_instances
                kp = np.asarray(inst.keypoints, dtype=np.float64).reshape(-1, 2)[:17]
                sc = np.asarray(inst.keypoint_scores, dtype=np.float64).reshape(-1)[:17]
                out.append((kp, sc))
        return out

    def detect(self, image: np.ndarray, name: str | None = None) -> Pose | None:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray], names: Sequence[str | None] | None = None) -> list[Pose | None]:
        results = []
        for image, (kp, sc) in zip(images, self.predict_coco17(images)):
            pose = coco17_to_coco18(kp, sc, self.min_score).clip_to_frame(image.shape[0], image.shape[1])
            results.append(_non_empty(pose))
        return results

    def describe(self) -> str:
        weights = self.checkpoint if self.checkpoint is not None else "RANDOM weights"
        return f"mmpose {Path(self.config).name} ({weights}, score >= {self.min_score})"
