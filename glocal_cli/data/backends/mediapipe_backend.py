"""The ``mediapipe`` keypoint backend: mediapipe 0.10.21's bundled BlazePose (full) model, offline.

mediapipe 0.10.21 is the newest release whose wheel still carries ``pose_landmark_full.tflite``
and ``pose_detection.tflite`` (later releases download them on first use), so this backend needs
no network. It is the default detector: ``make install`` installs it (``pip install --no-deps
mediapipe==0.10.21`` next to the ``[mediapipe]`` extra: ``protobuf>=4.25.3,<5``, absl-py, attrs,
flatbuffers, matplotlib; it declares ``numpy<2`` but runs with numpy 2). :data:`INSTALL_HINT` says
how, for the error messages.

The 33 BlazePose landmarks map to the 18 COCO-18 points by name (:data:`BLAZEPOSE_TO_COCO18`);
the neck is the midpoint of the shoulders when both are visible; a landmark whose visibility is
below ``min_visibility`` or that lies outside the image is missing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from glocal_cli.console import is_verbose
from glocal_cli.data.backends.base import KeypointBackend, _non_empty
from glocal_cli.data.keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, Pose
from glocal_cli.errors import NotAvailableError

__all__ = [
    "BLAZEPOSE_NAMES",
    "BLAZEPOSE_TO_COCO18",
    "INSTALL_HINT",
    "MediapipeBackend",
    "blazepose_to_coco18",
    "mediapipe_status",
]

MEDIAPIPE_VERSION = "0.10.21"
"""The release this backend is written and measured against (pinned in requirements/constraints.txt)."""

INSTALL_HINT = (
    "run `make install` (from a checkout), or with pip: "
    f"`pip install -e '.[mediapipe]'` then `pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}`"
)
"""How to install the default detector (mediapipe is installed without its numpy<2 pin)."""

BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye", "r_eye_outer", "l_ear", "r_ear",
    "mouth_left", "mouth_right", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_pinky", "r_pinky", "l_index", "r_index", "l_thumb", "r_thumb", "l_hip", "r_hip", "l_knee", "r_knee",
    "l_ankle", "r_ankle", "l_heel", "r_heel", "l_foot_index", "r_foot_index",
)  # fmt: skip
"""mediapipe's 33 pose landmarks, in its order (``PoseLandmark``)."""

BLAZEPOSE_TO_COCO18: tuple[int | None, ...] = tuple(
    None if n == "neck" else BLAZEPOSE_NAMES.index(n) for n in KEYPOINT_NAMES
)
"""For each COCO-18 point its BlazePose index (``None`` for the neck, the shoulders' midpoint)."""

_NECK = KEYPOINT_NAMES.index("neck")
_R_SH, _L_SH = KEYPOINT_NAMES.index("r_shoulder"), KEYPOINT_NAMES.index("l_shoulder")


def mediapipe_status() -> tuple[bool, str]:
    """``(usable, reason)``: whether ``import mediapipe`` works and carries the bundled pose model."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging: warnings and up only
    try:
        import mediapipe as mp
    except Exception as e:  # ImportError, or a protobuf clash raising TypeError at import time
        return False, (f"mediapipe, the default keypoint detector, is not installed or fails to import "
                       f"({e.__class__.__name__}: {e}); {INSTALL_HINT}")
    from pathlib import Path

    model = Path(mp.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    if not model.is_file():
        return False, (
            f"mediapipe {getattr(mp, '__version__', '?')} has no bundled {model.name} (it would download it); "
            f"install mediapipe=={MEDIAPIPE_VERSION}: {INSTALL_HINT}"
        )
    return True, f"mediapipe {getattr(mp, '__version__', '?')}"


def blazepose_to_coco18(landmarks: np.ndarray, height: int, width: int, min_visibility: float) -> Pose:
    """Map ``(33, 3)`` BlazePose ``(x, y, visibility)`` with x, y normalised to [0, 1] onto a COCO-18 pose.

    Coordinates become pixels of the ``height x width`` image (pixel-centre convention:
    ``x_px = x * width - 0.5``); points below ``min_visibility`` or outside the image are missing.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    xy = np.full((NUM_KEYPOINTS, 2), -1.0)
    score = np.zeros(NUM_KEYPOINTS)
    for i, j in enumerate(BLAZEPOSE_TO_COCO18):
        if j is not None:
            xy[i] = (lm[j, 0] * width - 0.5, lm[j, 1] * height - 0.5)
            score[i] = lm[j, 2]
    visible = score >= min_visibility
    if visible[_R_SH] and visible[_L_SH]:
        xy[_NECK] = (xy[_R_SH] + xy[_L_SH]) / 2
        score[_NECK] = min(score[_R_SH], score[_L_SH])
        visible[_NECK] = True
    return Pose(xy, visible, score).clip_to_frame(height, width)


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence the C++ (absl/TFLite) start-up messages that mediapipe writes straight to fd 2.

    They are not errors ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires a
    model with a single signature") and cannot be turned off by environment variables. With
    ``--verbose`` they are shown.
    """
    if is_verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


SMALL_SIDE = 256
"""Images whose shorter side is below this are upscaled (bicubic, by a whole factor) and given a replicated
margin before detection: on Market-1501's 64x128 crops BlazePose found a person in 14 of 20 as they are, 18 of 20
this way."""


class MediapipeBackend(KeypointBackend):
    """BlazePose full (``model_complexity=1``) in static-image mode; one person per image.

    ``min_visibility``: landmarks below it are missing (0.5 by default, mediapipe's own drawing
    threshold). ``min_detection_confidence``: the person detector's threshold; below it the image
    has "no person".
    """

    name = "mediapipe"

    def __init__(self, min_visibility: float = 0.5, min_detection_confidence: float = 0.3) -> None:
        ok, reason = mediapipe_status()
        if not ok:
            raise NotAvailableError(f"keypoint backend 'mediapipe': {reason}")
        import mediapipe as mp

        self.min_visibility = float(min_visibility)
        self.min_detection_confidence = float(min_detection_confidence)
        with _quiet_native_stderr():
            self._pose: Any = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=1,
                enable_segmentation=False,
                min_detection_confidence=self.min_detection_confidence,
            )
        self._warmed_up = False
        self._version = getattr(mp, "__version__", "?")

    def detect(self, image: np.ndarray, name: str | None = None) -> Pose | None:
        img = np.ascontiguousarray(image, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"mediapipe backend needs an H x W x 3 RGB image, got shape {image.shape}")
        h, w = img.shape[:2]
        run, scale, pad_x, pad_y = img, 1, 0, 0
        if min(h, w) < SMALL_SIDE:  # a small crop (Market-1501's 64x128): the detector needs size and margin
            import cv2

            scale = int(np.ceil(SMALL_SIDE / min(h, w)))
            run = cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
            pad_y, pad_x = (h * scale) // 8, (w * scale) // 4
            run = cv2.copyMakeBorder(run, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REPLICATE)
        if self._warmed_up:
            result = self._pose.process(run)
        else:  # the graph logs its start-up warnings on the first image
            with _quiet_native_stderr():
                result = self._pose.process(run)
            self._warmed_up = True
        if result.pose_landmarks is None:
            return None
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
        pose = blazepose_to_coco18(lm, run.shape[0], run.shape[1], self.min_visibility)
        if run is not img:  # back to the crop's pixels (pixel-centre convention); points in the margin are missing
            pose = pose.transform(1 / scale, 1 / scale, (0.5 - pad_x) / scale - 0.5, (0.5 - pad_y) / scale - 0.5)
            inside = ((pose.xy[:, 0] >= -0.5) & (pose.xy[:, 0] <= w - 0.5) & (pose.xy[:, 1] >= -0.5)
                      & (pose.xy[:, 1] <= h - 0.5))
            pose = Pose(pose.xy, pose.visible & inside, pose.score)
        return _non_empty(pose)

    def describe(self) -> str:
        return (
            f"mediapipe {self._version} BlazePose full (visibility >= {self.min_visibility}, "
            f"detection >= {self.min_detection_confidence})"
        )

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None
