"""Target poses for SynthPeople: real annotated poses (jittered, flipped, completed) or parametric ones.

The real poses are the community's DeepFashion test annotation
(``fasion-annotation-test.csv``, 256x256 padded frame), read through
:func:`glocal_cli.data.keypoints.read_keypoint_csv` and converted to the 256x176 model frame.
Points the annotation lacks (legs below the picture, hands behind the back, the far ear) are
completed from a 3-D template turned to the pose's view, so the renderer always has a whole body;
whether a point shows in the rendered picture is decided by the renderer, not here.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glocal_cli.data.keypoints import FLIP_PERMUTATION, KEYPOINT_NAMES, read_keypoint_csv

__all__ = [
    "POSE_CSV_NAME",
    "TEMPLATE",
    "PoseBank",
    "SampledPose",
    "complete_pose",
    "estimate_yaw",
    "find_pose_csv",
    "parametric_pose",
    "standing_pose",
    "view_of",
]

POSE_CSV_NAME = "fasion-annotation-test.csv"
"""File name of the community's DeepFashion test keypoints (the misspelling is theirs)."""

K = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# (lateral: person's left positive, down, forward) in torso lengths, neck at the origin. The
# frontal medians of the DeepFashion test annotation, with forward offsets for the face.
TEMPLATE = np.array(
    [
        [0.0, -0.39, 0.17],  # nose
        [0.0, 0.0, 0.0],  # neck
        [-0.31, 0.0, 0.0],  # r_shoulder
        [-0.38, 0.55, 0.0],  # r_elbow
        [-0.40, 1.04, 0.05],  # r_wrist
        [0.31, 0.0, 0.0],  # l_shoulder
        [0.38, 0.55, 0.0],  # l_elbow
        [0.40, 1.04, 0.05],  # l_wrist
        [-0.19, 1.0, 0.0],  # r_hip
        [-0.20, 1.80, 0.02],  # r_knee
        [-0.16, 2.58, 0.0],  # r_ankle
        [0.19, 1.0, 0.0],  # l_hip
        [0.20, 1.80, 0.02],  # l_knee
        [0.16, 2.58, 0.0],  # l_ankle
        [-0.07, -0.46, 0.15],  # r_eye
        [0.07, -0.46, 0.15],  # l_eye
        [-0.16, -0.42, 0.0],  # r_ear
        [0.16, -0.42, 0.0],  # l_ear
    ],
    np.float64,
)
"""A standing person in 3-D (lateral, down, forward), torso length 1, neck at the origin."""

SHOULDER_WIDTH = 0.62
"""Shoulder distance of a frontal pose in torso lengths (median of the annotation)."""

# Completion order and parent of each point (a tree rooted at the neck).
_PARENT = {
    "nose": "neck",
    "r_shoulder": "neck",
    "l_shoulder": "neck",
    "r_elbow": "r_shoulder",
    "l_elbow": "l_shoulder",
    "r_wrist": "r_elbow",
    "l_wrist": "l_elbow",
    "r_hip": "neck",
    "l_hip": "neck",
    "r_knee": "r_hip",
    "l_knee": "l_hip",
    "r_ankle": "r_knee",
    "l_ankle": "l_knee",
    "r_eye": "nose",
    "l_eye": "nose",
    "r_ear": "nose",
    "l_ear": "nose",
}
_ORDER = [
    "r_shoulder", "l_shoulder", "r_hip", "l_hip", "nose", "r_eye", "l_eye", "r_ear", "l_ear",
    "r_elbow", "l_elbow", "r_wrist", "l_wrist", "r_knee", "l_knee", "r_ankle", "l_ankle",
]  # fmt: skip


@dataclass(frozen=True)
class SampledPose:
    """A complete pose for the renderer.

    ``xy``: ``float64 (18, 2)`` pixels, every point set; ``yaw``: body rotation (0 front,
    ``pi`` back, ``-pi/2`` facing image-right); ``behind``: ``(right, left)`` hands behind the
    back; ``source``: where it came from (row name of the annotation or ``parametric``).
    """

    xy: np.ndarray
    yaw: float
    behind: tuple[bool, bool]
    source: str


def view_of(yaw: float) -> str:
    """``front`` (within 60 degrees of frontal), ``back`` (within 60 degrees of the back) or ``side``."""
    c = math.cos(yaw)
    return "front" if c > 0.5 else ("back" if c < -0.5 else "side")


def _torso(xy: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Hip midpoint, torso length and roll (angle of the neck->hips axis from the image vertical)."""
    neck = xy[K["neck"]]
    hips = [xy[K[n]] for n in ("r_hip", "l_hip") if vis[K[n]]]
    if len(hips) == 2:
        mid = (hips[0] + hips[1]) / 2
        length = float(np.linalg.norm(mid - neck))
    else:
        mid = hips[0]
        length = float(np.linalg.norm(mid - neck)) / 1.018
    shoulder = float(np.linalg.norm(xy[K["l_shoulder"]] - xy[K["r_shoulder"]]))
    length = max(length, shoulder / 0.75, 1.0)
    d = mid - neck
    roll = math.atan2(d[0], d[1]) if len(hips) == 2 else 0.0
    return mid, length, roll


def estimate_yaw(xy: np.ndarray, vis: np.ndarray, length: float, roll: float, rng: np.random.Generator) -> float:
    """Body yaw from the shoulders (how wide) and the nose (which way the face points)."""
    c, s = math.cos(roll), math.sin(roll)
    d = xy[K["l_shoulder"]] - xy[K["r_shoulder"]]
    lateral = c * d[0] - s * d[1]
    cos_yaw = float(np.clip(lateral / (SHOULDER_WIDTH * length), -1.0, 1.0))
    sign = 0.0
    if vis[K["nose"]]:
        off = xy[K["nose"], 0] - xy[K["neck"], 0]
        if abs(off) > 0.03 * length:
            sign = -math.copysign(1.0, off)
    if sign == 0.0:
        sign = 1.0 if rng.random() < 0.5 else -1.0
    return math.atan2(sign * math.sqrt(max(0.0, 1.0 - cos_yaw * cos_yaw)), cos_yaw)


def _project_template(yaw: float, roll: float, length: float) -> np.ndarray:
    """Template offsets turned to ``yaw`` and rolled by ``roll``, in pixels (18, 2)."""
    lat, down, fwd = TEMPLATE[:, 0], TEMPLATE[:, 1], TEMPLATE[:, 2]
    x = lat * math.cos(yaw) - fwd * math.sin(yaw)
    c, s = math.cos(roll), math.sin(roll)
    return np.stack([c * x + s * down, -s * x + c * down], axis=1) * length


def complete_pose(
    xy: np.ndarray, visible: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, float, tuple[bool, bool]] | None:
    """Fill missing points from the template; ``None`` when the core (neck, shoulders, a hip) is missing.

    Returns ``(xy (18, 2), yaw, behind)``. A wrist the annotation lacks under a present elbow, in
    a front-ish view, is put behind the back (where annotators could not see it) with
    probability 0.6.
    """
    core = visible[K["neck"]] and visible[K["r_shoulder"]] and visible[K["l_shoulder"]]
    if not core or not (visible[K["r_hip"]] or visible[K["l_hip"]]):
        return None
    xy = xy.astype(np.float64).copy()
    vis = visible.copy()
    hip_mid, length, roll = _torso(xy, vis)
    yaw = estimate_yaw(xy, vis, length, roll, rng) + float(rng.normal(0.0, 0.08))
    offsets = _project_template(yaw, roll, length)
    behind = [False, False]
    for side, prefix in enumerate(("r_", "l_")):
        wrist, elbow = K[prefix + "wrist"], K[prefix + "elbow"]
        if not vis[wrist] and vis[elbow] and math.cos(yaw) > 0.3 and rng.random() < 0.6:
            xy[wrist] = xy[elbow] + 0.65 * (hip_mid - xy[elbow]) + rng.normal(0, 0.03 * length, 2)
            vis[wrist] = True
            behind[side] = True
    for name in _ORDER:
        i = K[name]
        if not vis[i]:
            p = K[_PARENT[name]]
            xy[i] = xy[p] + offsets[i] - offsets[p]
            vis[i] = True
    return xy, yaw, (behind[0], behind[1])


def parametric_pose(rng: np.random.Generator, height: int, width: int) -> SampledPose:
    """A random standing pose built from joint angles (used when no annotation file is found)."""
    view = rng.choice(3, p=[0.5, 0.3, 0.2])
    yaw = [rng.uniform(-0.5, 0.5), rng.choice([-1, 1]) * rng.uniform(1.1, 2.0), math.pi + rng.uniform(-0.5, 0.5)][view]
    pts = TEMPLATE.copy()
    for side, prefix in ((-1.0, "r_"), (1.0, "l_")):
        sh = pts[K[prefix + "shoulder"]]
        a1 = rng.uniform(0.05, 0.55)
        fwd1 = rng.uniform(-0.1, 0.3)
        elbow = sh + 0.55 * np.array([side * math.sin(a1), math.cos(a1), fwd1])
        a2 = a1 + rng.uniform(-1.6, 0.3)
        wrist = elbow + 0.5 * np.array([side * math.sin(a2), math.cos(a2), rng.uniform(0.0, 0.6)])
        pts[K[prefix + "elbow"]], pts[K[prefix + "wrist"]] = elbow, wrist
        hip = pts[K[prefix + "hip"]]
        b1 = rng.uniform(-0.08, 0.22)
        knee = hip + 0.8 * np.array([side * math.sin(b1), math.cos(b1), rng.uniform(-0.1, 0.2)])
        b2 = b1 + rng.uniform(-0.15, 0.1)
        pts[K[prefix + "knee"]] = knee
        pts[K[prefix + "ankle"]] = knee + 0.78 * np.array([side * math.sin(b2), math.cos(b2), -0.05])
    length = rng.uniform(0.26, 0.4) * height
    neck = np.array([width / 2 + rng.normal(0, 0.03 * width), rng.uniform(0.2, 0.3) * height])
    x = pts[:, 0] * math.cos(yaw) - pts[:, 2] * math.sin(yaw)
    xy = neck + np.stack([x, pts[:, 1]], axis=1) * length
    return SampledPose(xy, float(yaw), (False, False), "parametric")


def standing_pose(
    height: int,
    width: int,
    yaw: float = 0.0,
    torso: float = 0.3,
    neck_y: float = 0.22,
    offsets: dict[str, tuple[float, float]] | None = None,
    behind: tuple[bool, bool] = (False, False),
) -> SampledPose:
    """The template person standing at the frame centre, turned by ``yaw``, for tests and demos.

    ``torso`` is the torso length as a fraction of ``height``; ``neck_y`` the neck height as a
    fraction of ``height``; ``offsets`` moves named points by ``(dx, dy)`` torso lengths.
    """
    length = torso * height
    lat, down, fwd = TEMPLATE[:, 0], TEMPLATE[:, 1], TEMPLATE[:, 2]
    x = lat * math.cos(yaw) - fwd * math.sin(yaw)
    xy = np.array([(width - 1) / 2.0, neck_y * height]) + np.stack([x, down], axis=1) * length
    for name, (dx, dy) in (offsets or {}).items():
        xy[K[name]] += np.array([dx, dy]) * length
    return SampledPose(xy, float(yaw), behind, "template")


def find_pose_csv(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The annotation file: ``explicit``, else ``$GLOCAL_SHARED_DATA/deepfashion/``, else ``../shared/data``.

    ``../shared/data`` is looked for next to the current directory and next to the source tree.
    """
    if explicit is not None:
        return Path(explicit)
    candidates = []
    env = os.environ.get("GLOCAL_SHARED_DATA")
    if env:
        candidates.append(Path(env) / "deepfashion" / POSE_CSV_NAME)
    candidates.append(Path.cwd().parent / "shared" / "data" / "deepfashion" / POSE_CSV_NAME)
    candidates.append(Path(__file__).resolve().parents[4] / "shared" / "data" / "deepfashion" / POSE_CSV_NAME)
    for c in candidates:
        if c.is_file():
            return c
    return None


class PoseBank:
    """Real poses in the 256x176 frame, and the sampler that turns them into renderer poses.

    ``PoseBank(None)`` samples :func:`parametric_pose` only.
    """

    def __init__(self, csv_path: str | os.PathLike[str] | None):
        self.path = None if csv_path is None else Path(csv_path)
        self.names: list[str] = []
        self.xy = np.zeros((0, 18, 2), np.float64)
        self.visible = np.zeros((0, 18), bool)
        self.digest = "parametric"
        if self.path is not None:
            poses = read_keypoint_csv(self.path, "deepfashion-256x256", "deepfashion-256x176")
            keep = []
            for name, pose in poses.items():
                v = pose.visible
                if v[K["neck"]] and v[K["r_shoulder"]] and v[K["l_shoulder"]] and (v[K["r_hip"]] or v[K["l_hip"]]):
                    keep.append((name, pose))
            self.names = [n for n, _ in keep]
            self.xy = np.stack([p.xy for _, p in keep]).astype(np.float64) if keep else self.xy
            self.visible = np.stack([p.visible for _, p in keep]) if keep else self.visible
            self.digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Store the parsed bank (``.npz``) so that worker processes load it without parsing the CSV."""
        np.savez(
            path,
            names=np.array(self.names, dtype=str),
            xy=self.xy,
            visible=self.visible,
            digest=np.array(self.digest),
            path=np.array("" if self.path is None else str(self.path)),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PoseBank:
        """A bank stored by :meth:`save`."""
        bank = cls(None)
        with np.load(path, allow_pickle=False) as data:
            bank.names = [str(n) for n in data["names"]]
            bank.xy = data["xy"].astype(np.float64)
            bank.visible = data["visible"].astype(bool)
            bank.digest = str(data["digest"])
            stored = str(data["path"])
        bank.path = Path(stored) if stored else None
        return bank

    @property
    def source(self) -> str:
        """``deepfashion-test-annotation`` or ``parametric``."""
        return "parametric" if not self.names else "deepfashion-test-annotation"

    def __len__(self) -> int:
        return len(self.names)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> SampledPose:
        """One pose in the ``height x width`` frame: a random real pose, frame-fitted, maybe
        flipped, jittered (scale, shift, small rotation, per point) and completed."""
        if not self.names:
            return parametric_pose(rng, height, width)
        for _ in range(20):
            i = int(rng.integers(len(self.names)))
            xy = self.xy[i].copy()
            vis = self.visible[i].copy()
            scale = min(height / 256.0, width / 176.0)
            xy = (xy + 0.5) * scale - 0.5
            xy[:, 0] += (width - 176.0 * scale) / 2.0
            xy[:, 1] += (height - 256.0 * scale) / 2.0
            if rng.random() < 0.5:
                xy[:, 0] = (width - 1) - xy[:, 0]
                perm = list(FLIP_PERMUTATION)
                xy, vis = xy[perm], vis[perm]
            g = rng.uniform(0.9, 1.06)
            rot = rng.uniform(-0.05, 0.05)
            centre = np.array([width / 2.0, height / 2.0])
            shift = np.array([rng.uniform(-0.04, 0.04) * width, rng.uniform(-0.03, 0.03) * height])
            c, s = math.cos(rot), math.sin(rot)
            rel = xy - centre
            xy = centre + shift + g * np.stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]], 1)
            done = complete_pose(xy, vis, rng)
            if done is None:
                continue
            full, yaw, behind = done
            _, length, _ = _torso(full, np.ones(18, bool))
            if not 0.12 * height <= length <= 0.75 * height:
                continue
            full = full + rng.normal(0.0, 0.012 * length, full.shape)
            return SampledPose(full, float(yaw), behind, self.names[i])
        return parametric_pose(rng, height, width)
