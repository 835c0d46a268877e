"""Keypoints: the one ``Pose`` type, its file formats, frames, heatmaps and skeleton drawing.

Conventions (see docs/design.md, "Data contracts"):

* 18 OpenPose-COCO points in the order of :data:`KEYPOINT_NAMES`.
* ``Pose.xy`` holds ``(x, y)`` in pixels of an image frame, **pixel-centre convention**: the
  centre of the top-left pixel is ``(0, 0)``, so a horizontal flip maps ``x`` to
  ``width - 1 - x`` and a point is inside a ``H x W`` frame when
  ``-0.5 <= x < W - 0.5`` and ``-0.5 <= y < H - 0.5``.
* A missing point has ``visible = False``; its stored coordinates are ``(-1, -1)`` and mean nothing.
* The community CSV stores **y first**, integers, ``-1`` for missing, in a named
  :class:`KeypointFrame` (DeepFashion's 256x256 padded frame, Market-1501's 128x64 frame).
"""

from __future__ import annotations

import colorsys
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glocal_cli.data import atomic_write_text
from glocal_cli.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "BODY25_TO_COCO18",
    "COCO17_NAMES",
    "COCO17_TO_COCO18",
    "CSV_HEADER",
    "FLIP_PERMUTATION",
    "FRAMES",
    "KEYPOINT_COLORS",
    "KEYPOINT_NAMES",
    "LIMBS",
    "NUM_KEYPOINTS",
    "KeypointFrame",
    "Pose",
    "convert_frame",
    "draw_skeleton",
    "format_keypoint_csv_row",
    "get_frame",
    "parse_keypoint_csv_row",
    "pose_file_frame",
    "pose_heatmaps",
    "pose_heatmaps_torch",
    "pose_sigma",
    "read_keypoint_csv",
    "read_pose_file",
    "read_pose_file_frame",
    "recognise_frame",
    "write_coco_json",
    "write_keypoint_csv",
    "write_mmpose_json",
    "write_openpose_json",
]

NUM_KEYPOINTS = 18
"""Number of OpenPose-COCO keypoints."""

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)
"""OpenPose COCO-18 order (the community CSV and OpenPose's COCO model)."""


def _flip_permutation() -> tuple[int, ...]:
    index = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
    perm = []
    for name in KEYPOINT_NAMES:
        if name.startswith("r_"):
            perm.append(index["l_" + name[2:]])
        elif name.startswith("l_"):
            perm.append(index["r_" + name[2:]])
        else:
            perm.append(index[name])
    return tuple(perm)


FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()
"""``flipped[i] = original[FLIP_PERMUTATION[i]]``: swaps every ``r_*`` point with its ``l_*`` twin."""

LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2),  # neck - r_shoulder
    (2, 3),  # r_shoulder - r_elbow
    (3, 4),  # r_elbow - r_wrist
    (1, 5),  # neck - l_shoulder
    (5, 6),  # l_shoulder - l_elbow
    (6, 7),  # l_elbow - l_wrist
    (1, 8),  # neck - r_hip
    (8, 9),  # r_hip - r_knee
    (9, 10),  # r_knee - r_ankle
    (1, 11),  # neck - l_hip
    (11, 12),  # l_hip - l_knee
    (12, 13),  # l_knee - l_ankle
    (1, 0),  # neck - nose
    (0, 14),  # nose - r_eye
    (14, 16),  # r_eye - r_ear
    (0, 15),  # nose - l_eye
    (15, 17),  # l_eye - l_ear
)
"""The 17 skeleton segments (index pairs into :data:`KEYPOINT_NAMES`), a tree rooted at the neck."""


def _hue_colors(n: int) -> tuple[tuple[int, int, int], ...]:
    colors = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb(i / n, 1.0, 1.0)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colors)


KEYPOINT_COLORS: tuple[tuple[int, int, int], ...] = _hue_colors(NUM_KEYPOINTS)
"""One RGB colour per keypoint (evenly spaced hues); limb ``k`` uses the colour of its end point."""

COCO17_NAMES: tuple[str, ...] = (
    "nose",
    "l_eye",
    "r_eye",
    "l_ear",
    "r_ear",
    "l_shoulder",
    "r_shoulder",
    "l_elbow",
    "r_elbow",
    "l_wrist",
    "r_wrist",
    "l_hip",
    "r_hip",
    "l_knee",
    "r_knee",
    "l_ankle",
    "r_ankle",
)
"""COCO keypoint order (17 points; no neck)."""

COCO17_TO_COCO18: tuple[int | None, ...] = tuple(
    None if name == "neck" else COCO17_NAMES.index(name) for name in KEYPOINT_NAMES
)
"""For each COCO-18 point, its COCO-17 index (``None`` for the neck, synthesised from the shoulders)."""

BODY25_TO_COCO18: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
"""For each COCO-18 point, its OpenPose BODY-25 index (BODY-25 adds mid-hip at 8 and six foot points)."""

_BODY25_MIDHIP = 8
_R_HIP, _L_HIP = KEYPOINT_NAMES.index("r_hip"), KEYPOINT_NAMES.index("l_hip")
_R_SHOULDER, _L_SHOULDER = KEYPOINT_NAMES.index("r_shoulder"), KEYPOINT_NAMES.index("l_shoulder")
_NECK = KEYPOINT_NAMES.index("neck")

CSV_HEADER = "name:keypoints_y:keypoints_x"
"""Header line of the community keypoint CSV."""


# --------------------------------------------------------------------------------------------- Pose


@dataclass(frozen=True, eq=False)
class Pose:
    """18 keypoints of one person in pixels of one image frame.

    ``xy`` is ``float32 (18, 2)`` holding ``(x, y)``; ``visible`` is ``bool (18,)``; ``score`` is an
    optional ``float32 (18,)`` detector confidence. Missing points store ``(-1, -1)``. Arrays are
    normalised (dtype, copy) on construction; treat them as read-only. Equality compares
    visibility, the coordinates of visible points and the scores.
    """

    xy: np.ndarray
    visible: np.ndarray
    score: np.ndarray | None = None

    def __post_init__(self) -> None:
        xy = np.array(self.xy, dtype=np.float32, copy=True)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"Pose.xy must have shape (N, 2), got {xy.shape}")
        n = xy.shape[0]
        visible = np.array(self.visible, dtype=bool, copy=True).reshape(-1)
        if visible.shape != (n,):
            raise ValueError(f"Pose.visible must have shape ({n},), got {visible.shape}")
        visible &= np.isfinite(xy).all(axis=1)
        xy[~visible] = -1.0
        score = None
        if self.score is not None:
            score = np.array(self.score, dtype=np.float32, copy=True).reshape(-1)
            if score.shape != (n,):
                raise ValueError(f"Pose.score must have shape ({n},), got {score.shape}")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "visible", visible)
        object.__setattr__(self, "score", score)

    # -- constructors and views

    @classmethod
    def missing(cls, n: int = NUM_KEYPOINTS) -> Pose:
        """A pose with every point missing."""
        return cls(np.full((n, 2), -1.0, np.float32), np.zeros(n, bool))

    @classmethod
    def from_xyv(cls, arr: Any, min_score: float = 0.0) -> Pose:
        """Build from an ``(N, 3)`` array of ``(x, y, v)``; visible where ``v > min_score``.

        ``v`` is kept as the score (OpenPose confidence, COCO visibility flag or detector score).
        """
        a = np.asarray(arr, dtype=np.float32)
        if a.ndim == 1 and a.size % 3 == 0:
            a = a.reshape(-1, 3)
        if a.ndim != 2 or a.shape[1] != 3:
            raise ValueError(f"expected an (N, 3) array of (x, y, v), got shape {a.shape}")
        return cls(a[:, :2], a[:, 2] > min_score, a[:, 2])

    def to_xyv(self) -> np.ndarray:
        """``float32 (N, 3)`` of ``(x, y, v)``: ``v`` is the score (1 without scores), ``0, 0, 0`` when missing."""
        out = np.zeros((len(self), 3), np.float32)
        out[:, :2] = self.xy
        out[:, 2] = self.score if self.score is not None else 1.0
        out[~self.visible] = 0.0
        return out

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pose):
            return NotImplemented
        if len(self) != len(other) or not np.array_equal(self.visible, other.visible):
            return False
        if not np.array_equal(self.xy[self.visible], other.xy[other.visible]):
            return False
        if (self.score is None) != (other.score is None):
            return False
        return self.score is None or np.array_equal(self.score, other.score)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Pose({self.num_visible}/{len(self)} visible, bbox={self.bbox()})"

    def allclose(self, other: Pose, atol: float = 1e-4) -> bool:
        """Same visibility and visible coordinates within ``atol`` pixels (scores ignored)."""
        return (
            len(self) == len(other)
            and np.array_equal(self.visible, other.visible)
            and np.allclose(self.xy[self.visible], other.xy[other.visible], atol=atol)
        )

    @property
    def num_visible(self) -> int:
        """Number of visible points."""
        return int(self.visible.sum())

    def replace(self, xy: Any = None, visible: Any = None, score: Any = "keep") -> Pose:
        """A copy with some arrays replaced (``score=None`` drops the scores)."""
        return Pose(
            self.xy if xy is None else xy,
            self.visible if visible is None else visible,
            self.score if isinstance(score, str) and score == "keep" else score,
        )

    # -- geometry

    def flip(self, width: int) -> Pose:
        """Mirror horizontally in a frame ``width`` pixels wide AND swap left/right points.

        ``x -> width - 1 - x`` (pixel-centre convention: the same as ``image[:, ::-1]``).
        """
        if len(self) != NUM_KEYPOINTS:
            raise ValueError(f"flip needs {NUM_KEYPOINTS} points, got {len(self)}")
        perm = list(FLIP_PERMUTATION)
        xy = self.xy.copy()
        xy[:, 0] = (width - 1) - xy[:, 0]
        score = None if self.score is None else self.score[perm]
        return Pose(xy[perm], self.visible[perm], score)

    def transform(self, scale_x: float, scale_y: float, offset_x: float = 0.0, offset_y: float = 0.0) -> Pose:
        """Affine map of the visible points: ``x' = x * scale_x + offset_x``, ``y' = y * scale_y + offset_y``.

        For a resize of the image by ``s`` under the pixel-centre convention use
        ``transform(s, s, 0.5 * s - 0.5, 0.5 * s - 0.5)`` (or :meth:`resize`).
        """
        xy = self.xy.astype(np.float64)
        xy[:, 0] = xy[:, 0] * scale_x + offset_x
        xy[:, 1] = xy[:, 1] * scale_y + offset_y
        return Pose(xy.astype(np.float32), self.visible, self.score)

    def resize(self, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> Pose:
        """Map from an ``src_hw`` image to the same image resized to ``dst_hw`` (pixel-centre convention)."""
        sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
        return self.transform(sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5)

    def in_frame(self, height: int, width: int) -> np.ndarray:
        """``bool (N,)``: visible and inside the ``height x width`` frame (pixel-centre convention)."""
        x, y = self.xy[:, 0], self.xy[:, 1]
        return self.visible & (x >= -0.5) & (x < width - 0.5) & (y >= -0.5) & (y < height - 0.5)

    def clip_to_frame(self, height: int, width: int) -> Pose:
        """Points outside the ``height x width`` frame become missing."""
        return Pose(self.xy, self.in_frame(height, width), self.score)

    def bbox(self) -> tuple[float, float, float, float] | None:
        """``(x0, y0, x1, y1)`` of the visible points, ``None`` when none is visible."""
        if not self.visible.any():
            return None
        pts = self.xy[self.visible]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        return (float(x0), float(y0), float(x1), float(y1))


# ------------------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class KeypointFrame:
    """The pixel frame keypoint coordinates refer to.

    ``height x width`` is the whole frame; ``pad_x`` / ``pad_y`` columns / rows on each side are
    padding around the content (DeepFashion's 176-wide photos padded to 256). Two frames are
    related through their content: :func:`convert_frame` removes the source padding, rescales
    the content to the destination content size and adds the destination padding.
    """

    height: int
    width: int
    pad_x: int = 0
    pad_y: int = 0
    name: str = ""

    @property
    def content_height(self) -> int:
        """Height of the content without padding."""
        return self.height - 2 * self.pad_y

    @property
    def content_width(self) -> int:
        """Width of the content without padding."""
        return self.width - 2 * self.pad_x


FRAMES: dict[str, KeypointFrame] = {
    "deepfashion-256x256": KeypointFrame(256, 256, pad_x=40, name="deepfashion-256x256"),
    "deepfashion-256x176": KeypointFrame(256, 176, name="deepfashion-256x176"),
    "market-128x64": KeypointFrame(128, 64, name="market-128x64"),
}
"""Named frames: DeepFashion's community CSV (256x256, 40 px white padding left and right around
the 176-wide photo), the DeepFashion model frame (256x176) and Market-1501 (128x64)."""


def get_frame(frame: str | KeypointFrame | tuple[int, int]) -> KeypointFrame:
    """A :class:`KeypointFrame` from a name in :data:`FRAMES`, a frame, or ``(height, width)``."""
    if isinstance(frame, KeypointFrame):
        return frame
    if isinstance(frame, str):
        if frame not in FRAMES:
            raise ValueError(f"unknown keypoint frame {frame!r}; known: {', '.join(FRAMES)}")
        return FRAMES[frame]
    h, w = frame
    return KeypointFrame(int(h), int(w), name=f"{h}x{w}")


def convert_frame(
    pose: Pose,
    src: str | KeypointFrame | tuple[int, int],
    dst: str | KeypointFrame | tuple[int, int],
    clip: bool = True,
) -> Pose:
    """Map a pose between frames that show the same content.

    ``x_dst = (x_src - src.pad_x + 0.5) * s_x - 0.5 + dst.pad_x`` with
    ``s_x = dst.content_width / src.content_width`` (likewise for y). DeepFashion 256x256 ->
    256x176 is thus ``x - 40``. With ``clip`` (default) points that fall outside the destination
    frame (e.g. on the padding of the 256x256 frame) become missing.
    """
    s, d = get_frame(src), get_frame(dst)
    sx = d.content_width / s.content_width
    sy = d.content_height / s.content_height
    ox = (0.5 - s.pad_x) * sx - 0.5 + d.pad_x
    oy = (0.5 - s.pad_y) * sy - 0.5 + d.pad_y
    out = pose.transform(sx, sy, ox, oy)
    return out.clip_to_frame(d.height, d.width) if clip else out


# ------------------------------------------------------------------------------- community CSV


def parse_keypoint_csv_row(line: str, where: str = "keypoint CSV row") -> tuple[str, Pose]:
    """Parse one ``name:[y...]:[x...]`` row; ``where`` names the file and row in errors."""
    parts = line.split(":")
    if len(parts) != 3:
        raise InputError(
            f"{where}: expected 3 ':'-separated fields (name:keypoints_y:keypoints_x), got {len(parts)}"
        )
    name = parts[0].strip()
    if not name:
        raise InputError(f"{where}: empty image name")
    lists = []
    for label, text in (("keypoints_y", parts[1]), ("keypoints_x", parts[2])):
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            raise InputError(f"{where}: {label} is not a JSON list: {text.strip()[:40]!r}") from None
        if not isinstance(values, list) or len(values) != NUM_KEYPOINTS:
            got = len(values) if isinstance(values, list) else type(values).__name__
            raise InputError(f"{where}: {label} must be a list of {NUM_KEYPOINTS} numbers, got {got}")
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
        ):
            raise InputError(f"{where}: {label} holds a value that is not a finite number")
        lists.append(values)
    y = np.asarray(lists[0], np.float32)
    x = np.asarray(lists[1], np.float32)
    visible = (x != -1) & (y != -1)
    if ((x < 0) | (y < 0))[visible].any():
        raise InputError(f"{where}: negative coordinate other than -1 (missing)")
    return name, Pose(np.stack([x, y], axis=1), visible)


def read_keypoint_csv(
    path: str | os.PathLike[str],
    frame: str | KeypointFrame | tuple[int, int] | None = None,
    to_frame: str | KeypointFrame | tuple[int, int] | None = None,
) -> dict[str, Pose]:
    """Read a community keypoint CSV into ``{image name: Pose}`` (file order kept).

    ``frame`` is the frame the file's coordinates are in (only needed with ``to_frame``); when
    ``to_frame`` is given every pose is converted with :func:`convert_frame` (points leaving the
    frame become missing). Raises :class:`InputError` naming the file and row for a malformed
    row, a missing header or a duplicated name.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read keypoint CSV ({e.__class__.__name__}: {e})") from None
    lines = text.splitlines()
    if not lines or lines[0].replace(" ", "").strip() != CSV_HEADER:
        first = lines[0][:60] if lines else ""
        raise InputError(f"{p}: row 1: expected header {CSV_HEADER!r}, got {first!r}")
    if to_frame is not None and frame is None:
        raise ValueError("read_keypoint_csv: to_frame needs the file's frame")
    poses: dict[str, Pose] = {}
    for row, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, pose = parse_keypoint_csv_row(line, where=f"{p}: row {row}")
        if name in poses:
            raise InputError(f"{p}: row {row}: duplicate image name {name!r}")
        if to_frame is not None:
            pose = convert_frame(pose, frame, to_frame)  # type: ignore[arg-type]
        poses[name] = pose
    return poses


def format_keypoint_csv_row(name: str, pose: Pose) -> str:
    """One community CSV row: coordinates rounded to ints (negative visible ones to 0), ``-1`` missing."""
    if ":" in name or "\n" in name:
        raise ValueError(f"image name {name!r} cannot be stored in a ':'-separated CSV")
    if len(pose) != NUM_KEYPOINTS:
        raise ValueError(f"{name}: a CSV pose needs {NUM_KEYPOINTS} points, got {len(pose)}")
    r = np.maximum(np.rint(pose.xy), 0).astype(np.int64)
    r[~pose.visible] = -1
    ys = ", ".join(str(int(v)) for v in r[:, 1])
    xs = ", ".join(str(int(v)) for v in r[:, 0])
    return f"{name}: [{ys}]: [{xs}]"


def write_keypoint_csv(path: str | os.PathLike[str], poses: Mapping[str, Pose]) -> None:
    """Write ``{name: Pose}`` as a community CSV (y first, ints, ``-1`` missing), atomically."""
    rows = [CSV_HEADER] + [format_keypoint_csv_row(name, pose) for name, pose in poses.items()]
    atomic_write_text(path, "\n".join(rows) + "\n")


# ------------------------------------------------------------------------------- JSON pose files


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read pose file ({e.__class__.__name__}: {e})") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None


def _flat_numbers(values: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: keypoints must be numbers") from None
    if not np.isfinite(arr).all():
        raise InputError(f"{where}: keypoints hold a non-finite value")
    return arr


def _from_coco17(xy: np.ndarray, score: np.ndarray, min_score: float) -> Pose:
    """COCO-17 ``(17, 2)`` + ``(17,)`` -> COCO-18; neck = shoulder midpoint when both are visible."""
    out_xy = np.full((NUM_KEYPOINTS, 2), -1.0, np.float32)
    out_score = np.zeros(NUM_KEYPOINTS, np.float32)
    for i, j in enumerate(COCO17_TO_COCO18):
        if j is not None:
            out_xy[i] = xy[j]
            out_score[i] = score[j]
    visible = out_score > min_score
    if visible[_R_SHOULDER] and visible[_L_SHOULDER]:
        out_xy[_NECK] = (out_xy[_R_SHOULDER] + out_xy[_L_SHOULDER]) / 2
        out_score[_NECK] = min(out_score[_R_SHOULDER], out_score[_L_SHOULDER])
        visible[_NECK] = True
    return Pose(out_xy, visible, out_score)


def _openpose_person(values: Any, where: str) -> Pose:
    arr = _flat_numbers(values, where)
    if arr.ndim != 1 or arr.size not in (3 * NUM_KEYPOINTS, 75):
        raise InputError(
            f"{where}: pose_keypoints_2d has {arr.size} values; expected 54 (COCO-18) or 75 (BODY-25)"
        )
    xyc = arr.reshape(-1, 3)
    if xyc.shape[0] == 25:
        xyc = xyc[list(BODY25_TO_COCO18)]
    return Pose.from_xyv(xyc)


def _pick_most_confident(poses: list[Pose], path: Path, fmt: str) -> tuple[Pose, str]:
    if not poses:
        raise InputError(f"{path}: {fmt} file holds no people")
    totals = [float(p.score[p.visible].sum()) if p.score is not None else float(p.num_visible) for p in poses]
    best = int(np.argmax(totals))
    note = f"{fmt}, {len(poses)} person(s)"
    if len(poses) > 1:
        note += f"; kept person {best} (total confidence {totals[best]:.2f}, the highest)"
    return poses[best], note


def _read_openpose(data: dict[str, Any], path: Path) -> tuple[Pose, str]:
    people = data.get("people")
    if not isinstance(people, list):
        raise InputError(f"{path}: OpenPose JSON needs a 'people' list")
    poses = []
    for i, person in enumerate(people):
        where = f"{path}: people[{i}]"
        if not isinstance(person, dict):
            raise InputError(f"{where}: expected an object")
        values = person.get("pose_keypoints_2d", person.get("pose_keypoints"))
        if values is None:
            raise InputError(f"{where}: no 'pose_keypoints_2d'")
        poses.append(_openpose_person(values, where))
    model = "OpenPose"
    if people:
        n = len(_flat_numbers(people[0].get("pose_keypoints_2d", people[0].get("pose_keypoints")), str(path)))
        model += " BODY-25" if n == 75 else " COCO-18"
    return _pick_most_confident(poses, path, model)


def _coco_instance(values: Any, where: str, min_score: float) -> Pose:
    arr = _flat_numbers(values, where)
    if arr.ndim != 1 or arr.size != 51:
        raise InputError(f"{where}: COCO keypoints must be 51 values (17 x (x, y, v)), got {arr.size}")
    xyv = arr.reshape(17, 3)
    return _from_coco17(xyv[:, :2], xyv[:, 2], min_score)


def _read_coco(instances: list[Any], path: Path, min_score: float) -> tuple[Pose, str]:
    poses = []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict) or "keypoints" not in inst:
            raise InputError(f"{path}: annotation {i} has no 'keypoints'")
        poses.append(_coco_instance(inst["keypoints"], f"{path}: annotation {i}", min_score))
    return _pick_most_confident(poses, path, "COCO keypoints")


def _mmpose_instance(inst: dict[str, Any], where: str, min_score: float) -> Pose:
    kpts = _flat_numbers(inst["keypoints"], where)
    if kpts.ndim == 3 and kpts.shape[0] == 1:  # some mmpose versions nest one more level
        kpts = kpts[0]
    if kpts.ndim != 2 or kpts.shape[1] != 2 or kpts.shape[0] not in (17, 133):
        raise InputError(
            f"{where}: mmpose keypoints must be 17 (COCO) or 133 (COCO-WholeBody) [x, y] pairs, "
            f"got shape {tuple(kpts.shape)}"
        )
    scores = inst.get("keypoint_scores")
    sc = np.ones(kpts.shape[0]) if scores is None else _flat_numbers(scores, where).reshape(-1)
    if sc.shape[0] == 1 and kpts.shape[0] != 1:
        sc = sc.reshape(-1)
    if sc.shape[0] != kpts.shape[0]:
        raise InputError(f"{where}: {sc.shape[0]} keypoint_scores for {kpts.shape[0]} keypoints")
    return _from_coco17(kpts[:17], sc[:17], min_score)


def _read_mmpose(instances: list[Any], path: Path, min_score: float) -> tuple[Pose, str]:
    poses = []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict) or "keypoints" not in inst:
            raise InputError(f"{path}: instance {i} has no 'keypoints'")
        poses.append(_mmpose_instance(inst, f"{path}: instance {i}", min_score))
    return _pick_most_confident(poses, path, "mmpose prediction")


def _is_nested_keypoints(inst: Any) -> bool:
    return (
        isinstance(inst, dict)
        and isinstance(inst.get("keypoints"), list)
        and bool(inst["keypoints"])
        and (isinstance(inst["keypoints"][0], list))
    )


def read_pose_file(path: str | os.PathLike[str], min_score: float | None = None) -> tuple[Pose, str]:
    """Read one person's pose from a JSON file (see :func:`read_pose_file_frame`); returns ``(pose, note)``."""
    pose, note, _ = read_pose_file_frame(path, min_score)
    return pose, note


def read_pose_file_frame(
    path: str | os.PathLike[str], min_score: float | None = None
) -> tuple[Pose, str, KeypointFrame | None]:
    """Read one person's pose from a JSON file, detecting the format; returns ``(pose, note, frame)``.

    ``frame`` is the canvas the coordinates are in when the file records it (see
    :func:`pose_file_frame`), else ``None``.

    Formats: OpenPose (``{"people": [{"pose_keypoints_2d": [...]}]}``, 54 values COCO-18 or 75
    BODY-25), COCO keypoints (``{"annotations": [...]}`` or a results list, 51 flat values, neck
    synthesised from both shoulders), mmpose predictions (a list of instances, or
    ``{"instances": [...]}`` / ``{"instance_info": [...]}``, with ``keypoints`` as ``[x, y]``
    pairs and ``keypoint_scores``). With several people the most confident (highest total score
    of visible points) is kept and ``note`` says so. ``min_score``: a point is visible when its
    score exceeds it; default 0 for OpenPose/COCO and 0.3 for mmpose (whose points always exist).
    """
    p = Path(path)
    data = _load_json(p)
    pose, note = _read_pose_data(data, p, min_score)
    return pose, note, pose_file_frame(data, p, pose)


def _read_pose_data(data: Any, p: Path, min_score: float | None) -> tuple[Pose, str]:
    if isinstance(data, dict) and "people" in data:
        return _read_openpose(data, p)
    if isinstance(data, dict) and "annotations" in data:
        anns = data["annotations"]
        if not isinstance(anns, list):
            raise InputError(f"{p}: 'annotations' must be a list")
        return _read_coco(anns, p, 0.0 if min_score is None else min_score)
    instances: Any = None
    if isinstance(data, dict) and "instance_info" in data:
        frames = data["instance_info"]
        if not isinstance(frames, list) or not frames:
            raise InputError(f"{p}: mmpose file holds no people ('instance_info' is empty)")
        first = frames[0]
        instances = first.get("instances", []) if isinstance(first, dict) else first
    elif isinstance(data, dict) and "instances" in data:
        instances = data["instances"]
    elif isinstance(data, list):
        instances = data
    if isinstance(instances, list):
        if not instances:
            raise InputError(f"{p}: pose file holds no people (empty list)")
        if all(_is_nested_keypoints(inst) for inst in instances):
            return _read_mmpose(instances, p, 0.3 if min_score is None else min_score)
        return _read_coco(instances, p, 0.0 if min_score is None else min_score)
    raise InputError(f"{p}: unknown pose format (expected OpenPose, COCO or mmpose JSON)")


def _frame_value(value: Any, where: str) -> KeypointFrame:
    """A recorded ``frame``: a name in :data:`FRAMES`, ``"HxW"``, or ``{"height": H, "width": W}``."""
    if isinstance(value, str):
        if value in FRAMES:
            return FRAMES[value]
        parts = value.lower().split("x")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            return _canvas(int(parts[0]), int(parts[1]), where)
        raise InputError(f"{where}: frame {value!r} is neither a known frame ({', '.join(FRAMES)}) nor HxW")
    if isinstance(value, dict) and "height" in value and "width" in value:
        return _canvas(value["height"], value["width"], where)
    raise InputError(f"{where}: 'frame' must be a frame name, 'HxW' or {{\"height\": H, \"width\": W}}")


def _canvas(height: Any, width: Any, where: str) -> KeypointFrame:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and v > 0
             for v in (height, width))
    if not ok:
        raise InputError(f"{where}: canvas size must be two positive integers, got {height!r} x {width!r}")
    return KeypointFrame(int(height), int(width), name=f"{int(height)}x{int(width)}")


def pose_file_frame(data: Any, path: str | os.PathLike[str], pose: Pose | None = None) -> KeypointFrame | None:
    """The canvas a pose file's coordinates are in, when the file records it; else ``None``.

    Recorded as (first match wins): ``"frame"`` (a name in :data:`FRAMES` such as
    ``deepfashion-256x256``, ``"HxW"``, or ``{"height": H, "width": W}``); ``"canvas_width"`` and
    ``"canvas_height"`` (the OpenPose-editor / ControlNet convention, also written by
    :func:`write_openpose_json`); or, in a COCO file, the ``width`` / ``height`` of its ``images``
    when they all agree. A bare canvas is recognised as a community frame by its size
    (:func:`recognise_frame`, which needs ``pose``).
    """
    where = str(path)
    if not isinstance(data, dict):
        return None
    frame: KeypointFrame | None = None
    if "frame" in data:
        frame = _frame_value(data["frame"], where)
    elif "canvas_width" in data or "canvas_height" in data:
        frame = _canvas(data.get("canvas_height"), data.get("canvas_width"), where)
    elif isinstance(data.get("images"), list) and data["images"]:
        sizes = {(im.get("height"), im.get("width")) for im in data["images"] if isinstance(im, dict)}
        if len(sizes) == 1:
            h, w = sizes.pop()
            if h is not None and w is not None:
                frame = _canvas(h, w, where)
    if frame is None or frame.name in FRAMES:
        return frame
    return recognise_frame(frame, pose)


def recognise_frame(frame: KeypointFrame, pose: Pose | None = None) -> KeypointFrame:
    """A bare canvas of a community frame's size as that frame.

    256x176 and 128x64 are DeepFashion's and Market-1501's frames (no padding: the canvas is the
    photo). A 256x256 canvas is the community's padded DeepFashion frame (the 176-wide photo in
    columns 40..215) when every visible point of ``pose`` lies in those columns; otherwise it is
    taken as a plain square picture.
    """
    for named in FRAMES.values():
        if (named.height, named.width) != (frame.height, frame.width) or frame.pad_x or frame.pad_y:
            continue
        if named.pad_x == 0 and named.pad_y == 0:
            return named
        if pose is not None and pose.visible.any():
            x = pose.xy[pose.visible, 0]
            if bool((x >= named.pad_x - 0.5).all() and (x <= named.width - named.pad_x - 0.5).all()):
                return named
    return frame


def _as_list(poses: Pose | Sequence[Pose]) -> list[Pose]:
    return [poses] if isinstance(poses, Pose) else list(poses)


def write_openpose_json(
    path: str | os.PathLike[str], poses: Pose | Sequence[Pose], model: str = "COCO",
    canvas: tuple[int, int] | None = None,
) -> None:
    """Write OpenPose JSON (``model`` ``"COCO"``: 18 points, or ``"BODY_25"``; missing = ``0, 0, 0``).

    For BODY-25 the mid-hip is the mean of both hips when both are visible; foot points are missing.
    ``canvas = (height, width)`` records the picture the coordinates refer to (``canvas_height`` /
    ``canvas_width``), so that a reader knows the pose's frame.
    """
    people = []
    for pose in _as_list(poses):
        xyv = pose.to_xyv()
        if model == "BODY_25":
            body = np.zeros((25, 3), np.float32)
            body[list(BODY25_TO_COCO18)] = xyv
            if pose.visible[_R_HIP] and pose.visible[_L_HIP]:
                body[_BODY25_MIDHIP, :2] = (xyv[_R_HIP, :2] + xyv[_L_HIP, :2]) / 2
                body[_BODY25_MIDHIP, 2] = min(xyv[_R_HIP, 2], xyv[_L_HIP, 2])
            xyv = body
        elif model != "COCO":
            raise ValueError(f"unknown OpenPose model {model!r}; use 'COCO' or 'BODY_25'")
        people.append({"person_id": [-1], "pose_keypoints_2d": [round(float(v), 4) for v in xyv.reshape(-1)]})
    record: dict[str, Any] = {"version": 1.3, "people": people}
    if canvas is not None:
        record["canvas_height"], record["canvas_width"] = int(canvas[0]), int(canvas[1])
    atomic_write_text(path, json.dumps(record) + "\n")


def _to_coco17(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    xyv = pose.to_xyv()
    xy = np.zeros((17, 2), np.float32)
    sc = np.zeros(17, np.float32)
    for i, j in enumerate(COCO17_TO_COCO18):
        if j is not None:
            xy[j] = xyv[i, :2]
            sc[j] = xyv[i, 2]
    return xy, sc


def write_coco_json(path: str | os.PathLike[str], poses: Pose | Sequence[Pose]) -> None:
    """Write ``{"annotations": [{"keypoints": 51 values, "num_keypoints": n}]}``, v = 2 visible, 0 missing."""
    anns = []
    for pose in _as_list(poses):
        xy, sc = _to_coco17(pose)
        v = np.where(sc > 0, 2.0, 0.0)
        flat = np.concatenate([np.where(v[:, None] > 0, xy, 0.0), v[:, None]], axis=1).reshape(-1)
        anns.append({"keypoints": [round(float(a), 4) for a in flat], "num_keypoints": int((v > 0).sum())})
    atomic_write_text(path, json.dumps({"annotations": anns}) + "\n")


def write_mmpose_json(path: str | os.PathLike[str], poses: Pose | Sequence[Pose]) -> None:
    """Write an mmpose-style prediction list: ``[{"keypoints": [[x, y] x 17], "keypoint_scores": [...]}]``."""
    instances = []
    for pose in _as_list(poses):
        xy, sc = _to_coco17(pose)
        instances.append(
            {
                "keypoints": [[round(float(a), 4), round(float(b), 4)] for a, b in xy],
                "keypoint_scores": [round(float(s), 4) for s in sc],
            }
        )
    atomic_write_text(path, json.dumps(instances) + "\n")


# ------------------------------------------------------------------------------------- heatmaps


def pose_sigma(height: int, sigma_at_256: float = 6.0) -> float:
    """Heatmap sigma for a frame ``height`` pixels high: ``sigma_at_256 * height / 256``."""
    return sigma_at_256 * height / 256.0


def pose_heatmaps(pose: Pose, height: int, width: int, sigma: float) -> np.ndarray:
    """``float32 (N, H, W)``: ``exp(-d^2 / (2 sigma^2))`` around each visible point, zeros when missing.

    ``d`` is measured between pixel centres (pixel ``(r, c)`` sits at ``x = c, y = r``).
    """
    ys = np.arange(height, dtype=np.float32)
    xs = np.arange(width, dtype=np.float32)
    k = 1.0 / (2.0 * sigma * sigma)
    gx = np.exp(-((xs[None, :] - pose.xy[:, :1]) ** 2) * k)  # (N, W)
    gy = np.exp(-((ys[None, :] - pose.xy[:, 1:]) ** 2) * k)  # (N, H)
    maps = gy[:, :, None] * gx[:, None, :]
    maps[~pose.visible] = 0.0
    return maps.astype(np.float32, copy=False)


def pose_heatmaps_torch(
    xy: torch.Tensor, visible: torch.Tensor, height: int, width: int, sigma: float
) -> torch.Tensor:
    """Batched heatmaps: ``xy (B, N, 2)``, ``visible (B, N)`` -> ``(B, N, H, W)`` on ``xy``'s device.

    Same formula as :func:`pose_heatmaps` (separable Gaussians, no Python loop); the dtype is
    ``xy``'s when it is floating point, else float32. Missing points give all-zero channels, even
    when their stored coordinates are NaN.
    """
    import torch

    dtype = xy.dtype if xy.is_floating_point() else torch.float32
    xy = xy.to(dtype)
    vis = visible.to(torch.bool) & torch.isfinite(xy).all(dim=-1)
    xy = torch.where(vis[..., None], xy, torch.zeros((), dtype=dtype, device=xy.device))
    xs = torch.arange(width, dtype=dtype, device=xy.device)
    ys = torch.arange(height, dtype=dtype, device=xy.device)
    k = 1.0 / (2.0 * sigma * sigma)
    gx = torch.exp(-((xs - xy[..., 0:1]) ** 2) * k)  # (B, N, W)
    gy = torch.exp(-((ys - xy[..., 1:2]) ** 2) * k) * vis[..., None].to(dtype)  # (B, N, H)
    return gy[..., :, None] * gx[..., None, :]


# ------------------------------------------------------------------------------------- drawing


def draw_skeleton(image: np.ndarray, pose: Pose, radius: int = 3, thickness: int = 2) -> np.ndarray:
    """A copy of ``image`` (``H x W x 3`` uint8 RGB) with the pose's limbs and points drawn.

    Limbs whose two ends are visible are drawn as lines, points as filled circles, in
    :data:`KEYPOINT_COLORS`.
    """
    import cv2

    img = np.ascontiguousarray(image, dtype=np.uint8).copy()
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"draw_skeleton needs an H x W x 3 image, got shape {image.shape}")
    pts = np.rint(pose.xy).astype(np.int64)
    for a, b in LIMBS:
        if pose.visible[a] and pose.visible[b]:
            cv2.line(
                img,
                (int(pts[a, 0]), int(pts[a, 1])),
                (int(pts[b, 0]), int(pts[b, 1])),
                KEYPOINT_COLORS[b],
                thickness,
                lineType=cv2.LINE_AA,
            )
    for i in np.flatnonzero(pose.visible):
        cv2.circle(
            img, (int(pts[i, 0]), int(pts[i, 1])), radius, KEYPOINT_COLORS[i], -1, lineType=cv2.LINE_AA
        )
    return img
