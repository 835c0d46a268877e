"""Pose helpers of the web page and its API: the wire format, mirror, interpolation, alignment.

On the wire a pose is a list of 18 ``[x, y, v]`` triples in the OpenPose-COCO-18 order
(:data:`~glocal_cli.data.keypoints.KEYPOINT_NAMES`), in pixels of one image with the pixel-centre
convention; ``v > 0`` means visible (a score, or 1), ``v = 0`` missing. This is OpenPose's own
``pose_keypoints_2d`` layout, so a pose from the page can be written as OpenPose JSON unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from glocal_cli.data.keypoints import NUM_KEYPOINTS, Pose
from glocal_cli.errors import InputError

__all__ = [
    "STANDING_POSE",
    "align_pose",
    "default_pose",
    "interpolate_poses",
    "mirror_pose",
    "interpolation_sequence",
    "pose_from_wire",
    "pose_to_wire",
]

STANDING_POSE: np.ndarray = np.array(
    [
        [0.50, 0.10], [0.50, 0.20], [0.38, 0.20], [0.33, 0.36], [0.31, 0.50], [0.62, 0.20], [0.67, 0.36],
        [0.69, 0.50], [0.42, 0.52], [0.42, 0.72], [0.42, 0.92], [0.58, 0.52], [0.58, 0.72], [0.58, 0.92],
        [0.47, 0.08], [0.53, 0.08], [0.44, 0.09], [0.56, 0.09],
    ],
    dtype=np.float32,
)  # fmt: skip
"""A front-facing standing person as fractions ``(x, y)`` of a box (the person's right is the image's left)."""


def pose_from_wire(value: Any, where: str = "pose") -> Pose:
    """A :class:`Pose` from 18 ``[x, y, v]`` triples (or 54 flat numbers); :class:`InputError` when malformed."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected 18 [x, y, v] triples of numbers") from None
    if arr.shape == (NUM_KEYPOINTS * 3,):
        arr = arr.reshape(NUM_KEYPOINTS, 3)
    if arr.shape != (NUM_KEYPOINTS, 3):
        raise InputError(f"{where}: expected 18 [x, y, v] triples, got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise InputError(f"{where}: coordinates must be finite numbers")
    if np.abs(arr[:, :2]).max(initial=0) > 1e6:
        raise InputError(f"{where}: coordinates out of range (|x|, |y| <= 1e6)")
    return Pose.from_xyv(arr.astype(np.float32))


def pose_to_wire(pose: Pose, digits: int = 2) -> list[list[float]]:
    """18 ``[x, y, v]`` triples (``[0, 0, 0]`` for a missing point), rounded to ``digits``."""
    return [[round(float(a), digits) for a in row] for row in pose.to_xyv()]


def default_pose(height: int, width: int, fill: float = 0.9) -> Pose:
    """:data:`STANDING_POSE` in a box ``fill`` of the image height tall, centred in a ``height x width`` image."""
    box_h = fill * height
    box_w = min(0.55 * box_h, 0.9 * width)
    x0, y0 = (width - box_w) / 2, (height - box_h) / 2
    xy = STANDING_POSE * np.array([box_w, box_h], np.float32) + np.array([x0, y0], np.float32)
    return Pose(xy - 0.5, np.ones(NUM_KEYPOINTS, bool))


def mirror_pose(pose: Pose, width: int | None = None) -> Pose:
    """Mirror left-right and swap the left/right points.

    ``width``: mirror in an image of that width (``x -> width - 1 - x``); ``None`` mirrors about the
    vertical line through the pose's own box centre, so the person stays where it stands.
    """
    if width is not None:
        return pose.flip(width)
    box = pose.bbox()
    if box is None:
        return pose
    centre_x = (box[0] + box[2]) / 2.0
    return pose.flip(1).transform(1.0, 1.0, 2.0 * centre_x, 0.0)  # flip(1): x -> -x; then x -> 2c - x


def interpolate_poses(a: Pose, b: Pose, t: float) -> Pose:
    """The pose a fraction ``t`` (0..1) of the way from ``a`` to ``b``.

    Points visible in both move linearly; a point visible in only one pose keeps that pose's
    position and is shown on that pose's half of the way (``t < 0.5`` for ``a``, ``t >= 0.5`` for ``b``).
    """
    t = float(np.clip(t, 0.0, 1.0))
    both = a.visible & b.visible
    xy = np.where(both[:, None], (1 - t) * a.xy + t * b.xy, np.where(a.visible[:, None], a.xy, b.xy))
    only_a = a.visible & ~b.visible
    only_b = b.visible & ~a.visible
    visible = both | (only_a & (t < 0.5)) | (only_b & (t >= 0.5))
    return Pose(xy.astype(np.float32), visible)


def interpolation_sequence(poses: Sequence[Pose], steps: int) -> list[Pose]:
    """``steps`` poses evenly spaced along the path through ``poses`` (first and last included)."""
    if not poses:
        raise InputError("animation: no poses given")
    if len(poses) == 1 or steps <= 1:
        return [poses[0]] * max(1, steps)
    segments = len(poses) - 1
    out = []
    for i in range(steps):
        s = i * segments / (steps - 1)
        k = min(int(s), segments - 1)
        out.append(interpolate_poses(poses[k], poses[k + 1], s - k))
    return out


def align_pose(pose: Pose, reference: Pose | None, height: int, width: int, margin: float = 0.05) -> Pose:
    """Move and scale ``pose`` (from another image) onto a ``height x width`` image.

    With a ``reference`` pose (the person already in that image) the pose is scaled to the
    reference's box height and put on the same feet line and centre; without one it is fitted to
    the image (``1 - 2 margin`` of its height, centred). Scale is uniform: the body keeps its shape.
    """
    box = pose.bbox()
    if box is None:
        return pose
    x0, y0, x1, y1 = box
    bh = max(y1 - y0, 1.0)
    ref = reference.bbox() if reference is not None else None
    if ref is not None and ref[3] - ref[1] >= 4.0:
        scale = (ref[3] - ref[1]) / bh
        cx, bottom = (ref[0] + ref[2]) / 2, ref[3]
    else:
        bw = max(x1 - x0, 1.0)
        scale = min((1 - 2 * margin) * height / bh, (1 - 2 * margin) * width / bw)
        cx, bottom = (width - 1) / 2, (height - 1) / 2 + scale * bh / 2
    moved = pose.transform(scale, scale, cx - scale * (x0 + x1) / 2, bottom - scale * y1)
    return moved
