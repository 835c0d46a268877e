"""Inference inputs and outputs: finding sources and poses, sidecars, frame mapping, result files.

Sidecar convention (also used by ``examples/``): next to a source image ``<stem>.<ext>``

* ``<stem>.json``: its pose (OpenPose / COCO / mmpose JSON, in the image's pixels);
* ``<stem>_parsing.png``: its parsing (8-class label map, same size as the image);
* ``<stem>_mask.png``: an inpainting mask (white = hole), used by ``inpaint --mask file``.

Sidecar images are never treated as sources when a folder is scanned.

Target poses come from a pose JSON file, a folder of them, a community keypoint CSV (every row, or
the row named in a pairs CSV), or photos (``--pose-from``: keypoints by the configured backend).
Their coordinates are mapped into the model frame according to ``infer.pose_frame``
(see :func:`map_target_pose`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli.data.images import IMAGE_SUFFIXES, FrameTransform, fit_to_frame, load_image, resize_image
from glocal_cli.data.keypoints import (
    NUM_KEYPOINTS,
    KeypointFrame,
    Pose,
    convert_frame,
    read_keypoint_csv,
    read_pose_file_frame,
)
from glocal_cli.data.layout import read_pairs_csv
from glocal_cli.errors import InputError
from glocal_cli.infer.prepare import hide_hole

__all__ = [
    "BODY_SEGMENTS",
    "GUESS_MARGIN",
    "GUESS_NOTE",
    "SIDECAR_SUFFIXES",
    "PoseRef",
    "PoseSource",
    "PreparedSource",
    "body_scale",
    "check_out_dir",
    "find_sidecar",
    "fit_canvas",
    "fit_transform_for_poses",
    "guess_placement",
    "guess_target_pose",
    "list_images",
    "list_pose_sources",
    "load_source_image",
    "map_target_pose",
    "match_downscale",
    "pose_and_frame_from_any",
    "pose_from_any",
    "pose_reference",
    "prepare_source",
    "read_pairs",
    "safe_stem",
]

SIDECAR_SUFFIXES = ("_parsing", "_mask")
"""Stem endings of sidecar images (never sources)."""


def safe_stem(name: str) -> str:
    """A file-name-safe stem (path separators and odd characters replaced by ``_``)."""
    stem = Path(name).stem if "." in Path(name).name else Path(name).name
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in stem) or "item"


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files of a folder (not recursive, sorted), sidecar images excluded."""
    root = Path(folder)
    return sorted(
        p for p in root.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith(SIDECAR_SUFFIXES)
        and not p.name.startswith(".")
    )


def find_sidecar(image: Path, kind: str) -> Path | None:
    """The ``pose`` (``<stem>.json``), ``parsing`` (``<stem>_parsing.png``) or ``mask`` sidecar, if present."""
    name = {"pose": f"{image.stem}.json", "parsing": f"{image.stem}_parsing.png", "mask": f"{image.stem}_mask.png"}[kind]
    path = image.with_name(name)
    return path if path.is_file() else None


def check_out_dir(out: str | os.PathLike[str]) -> Path:
    """``out`` as a folder to write into: an existing file there is an :class:`InputError`."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: output folder is an existing file")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{path}: cannot create the output folder ({parent} is a file)")
    return path


# ------------------------------------------------------------------------------------------- poses


@dataclass(frozen=True)
class PoseSource:
    """Where one target pose comes from (picklable, resolved in the loader workers).

    ``kind``: ``"file"`` (a pose JSON), ``"image"`` (a photo; keypoints by the backend) or
    ``"pose"`` (an already read :class:`Pose`, e.g. a CSV row, with ``frame_hw`` the size of the
    frame its coordinates are in, ``None`` = the model frame).
    """

    kind: str
    name: str
    path: Path | None = None
    pose: Pose | None = field(default=None, compare=False)
    frame_hw: tuple[int, int] | None = None


def _csv_frame(path: Path, setting: str) -> Any:
    """The frame of a keypoint CSV's coordinates: the config value, a manifest beside it, or ``None``."""
    if setting != "auto":
        if "x" in setting and setting.replace("x", "").isdigit():
            h, w = setting.split("x")
            return (int(h), int(w))
        return setting
    manifest = path.with_name("manifest.json")
    if manifest.is_file():
        import json

        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            return (int(data["height"]), int(data["width"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def list_pose_sources(path: str | os.PathLike[str], from_images: bool = False, csv_frame: str = "auto",
                      model_hw: tuple[int, int] | None = None) -> list[PoseSource]:
    """Target poses from a JSON file, a keypoint CSV (every row), a folder of JSON files, or photos.

    ``from_images``: ``path`` is a photo or a folder of photos whose keypoints the backend detects.
    CSV coordinates are converted to the model frame ``model_hw`` from the CSV's frame (``csv_frame``:
    ``auto`` = the ``manifest.json`` beside the CSV, else the model frame; or a frame name / ``HxW``).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such pose file or folder")
    if from_images:
        images = list_images(p) if p.is_dir() else [p]
        if not images:
            raise InputError(f"{p}: folder holds no images")
        return [PoseSource("image", safe_stem(i.name), path=i) for i in images]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() == ".json"
                       and not f.name.startswith("."))
        if not files:
            csvs = sorted(p.glob("*.csv"))
            if len(csvs) == 1:
                return list_pose_sources(csvs[0], csv_frame=csv_frame, model_hw=model_hw)
            raise InputError(f"{p}: folder holds no pose files (*.json)")
        return [PoseSource("file", safe_stem(f.name), path=f) for f in files]
    if p.suffix.lower() == ".csv":
        frame = _csv_frame(p, csv_frame)
        poses = read_keypoint_csv(p, frame, model_hw) if (frame is not None and model_hw is not None) \
            else read_keypoint_csv(p)
        if not poses:
            raise InputError(f"{p}: keypoint CSV has no rows")
        return [PoseSource("pose", name, path=p, pose=pose) for name, pose in poses.items()]
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return [PoseSource("image", safe_stem(p.name), path=p)]
    return [PoseSource("file", safe_stem(p.name), path=p)]


def read_pairs(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(from, to)`` rows of a pairs CSV (header ``from,to``; further columns are ignored); errors
    name the file and row, and a file without rows is an error too."""
    pairs = read_pairs_csv(path, extra_columns=True)
    if not pairs:
        raise InputError(f"{path}: pairs CSV has no rows")
    return pairs


def _pose_check(pose: Pose, frame_hw: tuple[int, int], where: str, min_visible: int) -> tuple[Pose, list[str]]:
    """Clip to the frame and collect the "out of frame" / "mostly missing" warnings."""
    notes: list[str] = []
    inside = pose.in_frame(*frame_hw)
    outside = int(pose.visible.sum() - inside.sum())
    if outside:
        notes.append(f"{where}: {outside} keypoint(s) fall outside the frame and are ignored")
    pose = pose.clip_to_frame(*frame_hw)
    if pose.num_visible < min_visible:
        notes.append(f"{where}: only {pose.num_visible} of {NUM_KEYPOINTS} keypoints visible; the result may be poor")
    return pose, notes


def fit_transform_for_poses(poses: list[Pose], frame_hw: tuple[int, int], margin: float = 0.15) -> FrameTransform | None:
    """A :class:`FrameTransform` that puts the union box of ``poses`` (with ``margin``) in the frame, centred.

    Used for target poses whose canvas is unknown (``pose_frame: fit``); one transform for a whole
    sequence keeps an animation from jittering. ``None`` when no point is visible.
    """
    boxes = [b for b in (p.bbox() for p in poses) if b is not None]
    if not boxes:
        return None
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    m = margin * max(x1 - x0, y1 - y0, 1.0)
    bw, bh = x1 - x0 + 2 * m + 1, y1 - y0 + 2 * m + 1
    h, w = frame_hw
    scale = min(h / bh, w / bw)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # FrameTransform maps x_f = (x + 0.5) * s - 0.5 + offset; choose offset so the centre maps mid-frame
    off_x = round((w - 1) / 2 - ((cx + 0.5) * scale - 0.5))
    off_y = round((h - 1) / 2 - ((cy + 0.5) * scale - 0.5))
    # a virtual canvas large enough to hold every point; its size only sets the exact scale
    cw, ch = int(np.ceil(x1 + m + 2)), int(np.ceil(y1 + m + 2))
    return FrameTransform(float(scale), int(off_x), int(off_y), max(ch, 1), max(cw, 1), h, w)


GUESS_NOTE = (
    "pose_frame auto: a target pose records no frame (canvas_width/canvas_height, or 'frame'), so it was "
    "placed on the source person by body scale (torso and limb lengths, anchored at the neck or hips) and "
    "moved, or shrunk, to stay inside the frame; record the canvas in the pose file (\"canvas_width\": W, "
    "\"canvas_height\": H) or set infer.pose_frame to source, fit or model to avoid the guess"
)
"""The one-line warning of ``pose_frame: auto`` when it guesses (the same text for every file: shown once)."""

_NECK, _R_SHOULDER, _L_SHOULDER, _R_HIP, _L_HIP = 1, 2, 5, 8, 11

BODY_SEGMENTS: tuple[tuple[int, int], ...] = (
    (1, 8), (1, 11),  # neck to each hip (the torso)
    (2, 5), (8, 11),  # shoulder width, hip width
    (2, 3), (5, 6),  # upper arms
    (3, 4), (6, 7),  # forearms
    (8, 9), (11, 12),  # thighs
    (9, 10), (12, 13),  # shins
)
"""The segments (COCO-18 indices) whose lengths set the ``pose_frame: auto`` guess's scale."""

_TORSO_SEGMENTS = 4  # the first four of BODY_SEGMENTS are the torso: they bend least, so they count double
GUESS_MARGIN = 0.02
"""The margin (share of the frame's shorter side) that the guessed pose keeps from the frame's edges."""


def _torso(pose: Pose) -> float | None:
    """Neck to mid-hip length (one hip if only one is visible), ``None`` without a neck or hips."""
    if not pose.visible[_NECK]:
        return None
    hips = [pose.xy[i] for i in (_R_HIP, _L_HIP) if pose.visible[i]]
    if not hips:
        return None
    length = float(np.linalg.norm(np.mean(hips, axis=0) - pose.xy[_NECK]))
    return length if length >= 1.0 else None


def _segment_lengths(pose: Pose) -> np.ndarray:
    """``float64 (len(BODY_SEGMENTS),)``: each segment's length, NaN where an end is missing."""
    out = np.full(len(BODY_SEGMENTS), np.nan)
    for k, (a, b) in enumerate(BODY_SEGMENTS):
        if pose.visible[a] and pose.visible[b]:
            out[k] = float(np.linalg.norm(pose.xy[a].astype(np.float64) - pose.xy[b]))
    return out


@dataclass(frozen=True)
class PoseRef:
    """The build and place of a target pose, or of a whole pose sequence (``--video``), for ``pose_frame: auto``.

    ``box`` is the (union) keypoint box ``(x0, y0, x1, y1)``; ``torso`` the (median) neck to mid-hip
    length, ``None`` when no pose has one; ``height`` the (median) box height; ``lengths`` the
    (median) length of each of :data:`BODY_SEGMENTS` (NaN where no pose shows it); ``points`` the
    (median) position of each keypoint, ``None`` where no pose shows it. One reference for a
    sequence gives every frame the same scale and shift, so the animation keeps its own motion.
    """

    box: tuple[float, float, float, float]
    torso: float | None
    height: float
    lengths: tuple[float, ...] = ()
    points: tuple[tuple[float, float] | None, ...] = ()


def pose_reference(poses: list[Pose]) -> PoseRef | None:
    """The :class:`PoseRef` of ``poses`` (``None`` when no point is visible)."""
    poses = [p for p in poses if p.visible.any()]
    boxes = [b for b in (p.bbox() for p in poses) if b is not None]
    if not boxes:
        return None
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    torsos = [t for t in (_torso(p) for p in poses) if t is not None]
    seg = np.stack([_segment_lengths(p) for p in poses])
    lengths = tuple(float(np.median(c[np.isfinite(c)])) if np.isfinite(c).any() else float("nan") for c in seg.T)
    n = min(len(p) for p in poses)
    points: list[tuple[float, float] | None] = []
    for i in range(n):
        seen = np.array([p.xy[i] for p in poses if p.visible[i]], np.float64)
        points.append((float(np.median(seen[:, 0])), float(np.median(seen[:, 1]))) if len(seen) else None)
    return PoseRef(box, float(np.median(torsos)) if torsos else None,
                   max(1.0, float(np.median([b[3] - b[1] for b in boxes]))), lengths, tuple(points))


def _box_to_person(pose: Pose, ref: PoseRef, person: Pose) -> Pose | None:
    """The former guess (kept for comparison: ``guess="box"``): map ``pose`` so that its reference box
    lands on ``person``'s box (both centred, one uniform scale: the ratio of the torso lengths when both
    have one, else of the box heights); nothing keeps it inside the frame."""
    pbox = person.bbox()
    if pbox is None:
        return None
    ptorso = _torso(person)
    if ref.torso is not None and ptorso is not None:
        s = ptorso / ref.torso
    else:
        s = max(1.0, pbox[3] - pbox[1]) / ref.height
    rcx, rcy = (ref.box[0] + ref.box[2]) / 2, (ref.box[1] + ref.box[3]) / 2
    pcx, pcy = (pbox[0] + pbox[2]) / 2, (pbox[1] + pbox[3]) / 2
    return pose.transform(s, s, pcx - rcx * s, pcy - rcy * s)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    return float(v[np.searchsorted(cum, 0.5 * cum[-1])])


def body_scale(ref: PoseRef, person: Pose) -> float | None:
    """The scale that gives the reference pose ``person``'s build: the weighted median of the length
    ratios of the :data:`BODY_SEGMENTS` both show (each weighted by its share of the shared length in
    the pose where it is shorter, so a foreshortened limb counts little; torso segments count double).
    ``None`` when they share no segment of at least 2 px."""
    if not ref.lengths:
        return None
    mine, theirs = _segment_lengths(person), np.asarray(ref.lengths, np.float64)
    ok = np.isfinite(mine) & np.isfinite(theirs) & (mine >= 2.0) & (theirs >= 2.0)
    if not ok.any():
        return None
    a, b = mine[ok], theirs[ok]
    w = np.minimum(a / a.sum(), b / b.sum()) * np.where(np.arange(len(BODY_SEGMENTS))[ok] < _TORSO_SEGMENTS, 2.0, 1.0)
    return _weighted_median(a / b, w)


def _anchor(ref: PoseRef, person: Pose) -> tuple[np.ndarray, np.ndarray]:
    """A body point both show, as ``(point in the reference, point on the person)``: the neck, else the
    mid-hip (the hips both show), else the centre of the torso points both show, else the box centres."""
    def shared(idx: tuple[int, ...]) -> list[int]:
        return [i for i in idx if i < len(ref.points) and ref.points[i] is not None and i < len(person)
                and person.visible[i]]

    for idx in ((_NECK,), (_R_HIP, _L_HIP), (_NECK, _R_SHOULDER, _L_SHOULDER, _R_HIP, _L_HIP)):
        both = shared(idx)
        if both:
            return (np.mean([ref.points[i] for i in both], axis=0),  # type: ignore[misc]
                    np.mean([person.xy[i] for i in both], axis=0).astype(np.float64))
    pbox = person.bbox()
    assert pbox is not None
    return (np.array([(ref.box[0] + ref.box[2]) / 2, (ref.box[1] + ref.box[3]) / 2]),
            np.array([(pbox[0] + pbox[2]) / 2, (pbox[1] + pbox[3]) / 2]))


def guess_placement(ref: PoseRef, person: Pose, frame_hw: tuple[int, int],
                    margin: float = GUESS_MARGIN) -> tuple[float, float, float] | None:
    """``(scale, offset_x, offset_y)`` that puts a pose (or sequence) ``ref`` without a recorded frame on
    the source person ``person`` (in the frame ``frame_hw``): scaled by :func:`body_scale` (else by the
    box heights when both are at least 8 px tall, else so that the reference box fills the frame),
    anchored at a body point both show (:func:`_anchor`), then shifted, and shrunk around the anchor
    only if it does not fit, so that the reference box (every keypoint of every pose of a sequence)
    lies inside the frame, ``margin`` (share of the shorter side) from its edges. ``None`` when the
    person shows no keypoint."""
    pbox = person.bbox()
    if pbox is None:
        return None
    h, w = frame_hw
    m = min(margin * min(h, w), (min(h, w) - 1) / 2)
    lo_x, hi_x, lo_y, hi_y = m, w - 1 - m, m, h - 1 - m
    rw, rh = ref.box[2] - ref.box[0], ref.box[3] - ref.box[1]
    s = body_scale(ref, person)
    if s is None:
        if pbox[3] - pbox[1] >= 8 and rh >= 8:
            s = (pbox[3] - pbox[1]) / rh
        elif max(rw, rh) >= 1:
            s = min((hi_x - lo_x) / max(rw, 1.0), (hi_y - lo_y) / max(rh, 1.0))
        else:
            s = 1.0
    r_anchor, p_anchor = _anchor(ref, person)
    if s > 0 and (rw > 0 or rh > 0):  # too big for the frame: shrink around the anchor
        s *= min(1.0, (hi_x - lo_x) / (s * rw) if rw > 0 else 1.0, (hi_y - lo_y) / (s * rh) if rh > 0 else 1.0)
    ox, oy = float(p_anchor[0] - s * r_anchor[0]), float(p_anchor[1] - s * r_anchor[1])
    x0, y0, x1, y1 = (s * ref.box[0] + ox, s * ref.box[1] + oy, s * ref.box[2] + ox, s * ref.box[3] + oy)
    ox += max(0.0, lo_x - x0) - max(0.0, x1 - hi_x)
    oy += max(0.0, lo_y - y0) - max(0.0, y1 - hi_y)
    return s, ox, oy


def guess_target_pose(pose: Pose, person: Pose, frame_hw: tuple[int, int], ref: PoseRef | None = None,
                      rule: str = "body") -> Pose | None:
    """The ``pose_frame: auto`` guess for a pose without a recorded frame, before any clipping: ``rule``
    ``body`` (:func:`guess_placement`) or ``box`` (the former box-onto-box rule, for comparison).
    ``ref``: the sequence's :class:`PoseRef` (default: the pose's own). ``None`` without keypoints."""
    reference = ref or pose_reference([pose])
    if reference is None:
        return None
    if rule == "box":
        return _box_to_person(pose, reference, person)
    if rule != "body":
        raise ValueError(f"unknown guess rule {rule!r}")
    placed = guess_placement(reference, person, frame_hw)
    if placed is None:
        return None
    s, ox, oy = placed
    return pose.transform(s, s, ox, oy)


def fit_canvas(pose: Pose, frame: KeypointFrame, frame_hw: tuple[int, int]) -> Pose:
    """A pose in a recorded canvas -> the model frame: the canvas's content (without its padding) fitted
    whole into the frame, aspect kept, centred, exactly as a photo without keypoints is fitted."""
    ch, cw = frame.content_height, frame.content_width
    h, w = frame_hw
    scale = min(h / ch, w / cw)
    nh, nw = max(1, round(ch * scale)), max(1, round(cw * scale))
    t = FrameTransform(float(scale), (w - nw) // 2, (h - nh) // 2, ch, cw, h, w)
    return t.apply_to_pose(pose.transform(1.0, 1.0, -float(frame.pad_x), -float(frame.pad_y)), clip=False)


def map_target_pose(
    pose: Pose,
    mode: str,
    frame_hw: tuple[int, int],
    source_transform: FrameTransform | None = None,
    fit: FrameTransform | None = None,
    where: str = "target pose",
    min_visible: int = 9,
    canvas_hw: tuple[int, int] | None = None,
    recorded: KeypointFrame | None = None,
    source_pose: Pose | None = None,
    ref: PoseRef | None = None,
    guess: str = "body",
) -> tuple[Pose, list[str]]:
    """Map a target pose into the model frame; returns ``(pose, warnings)``.

    ``mode``: ``model`` (already in the frame), ``source`` (in the source photo's pixels: mapped by
    the source's fit transform, so ``--paste-back`` lines up), ``fit`` (its own box fitted into the
    frame, or the shared ``fit`` transform of a sequence), or ``auto``, which decides in this order:

    1. the pose file records its frame (``recorded``, see :func:`~glocal_cli.data.keypoints.pose_file_frame`):
       a canvas of the source photo's size is the source's pixels (as ``source``); any other canvas,
       a community frame included (256x256 padded DeepFashion, 256x176, Market 128x64), has its
       content fitted whole into the model frame, as a photo is;
    2. otherwise it guesses, and says so (:data:`GUESS_NOTE`): the pose (or the sequence, ``ref``) is
       put on the source person (``source_pose``, in the frame) by body scale, anchored at a body
       point both show, then moved (and shrunk only if it is too big) to lie inside the frame (see
       :func:`guess_placement`); ``guess="box"`` is the former rule (its box onto the person's box,
       for comparison); without a source person it falls back to ``fit``.

    ``canvas_hw``: the size of the source photo as given, when ``source_transform`` fits a downscaled
    copy of it (``infer.max_input_side``): source-pixel poses are scaled with the photo first.
    ``guess``: the rule of step 2, ``body`` (default) or ``box`` (the former rule, for comparison).
    """
    notes: list[str] = []
    if source_transform is not None and canvas_hw is None:
        canvas_hw = (source_transform.source_height, source_transform.source_width)
    if mode == "auto":
        if recorded is not None:
            same = (recorded.height, recorded.width) == tuple(canvas_hw or ()) and not (recorded.pad_x or recorded.pad_y)
            if same and source_transform is not None:
                mode = "source"
            else:
                pose, mode = fit_canvas(pose, recorded, frame_hw), "model"
        else:
            notes.append(GUESS_NOTE)
            mapped = None if source_pose is None else guess_target_pose(pose, source_pose, frame_hw, ref, guess)
            pose, mode = (mapped, "model") if mapped is not None else (pose, "fit")
    if mode == "source":
        if source_transform is None:
            raise ValueError("map_target_pose: mode 'source' needs the source transform")
        working_hw = (source_transform.source_height, source_transform.source_width)
        if canvas_hw is not None and tuple(canvas_hw) != working_hw:
            pose = pose.resize(canvas_hw, working_hw)
        pose = source_transform.apply_to_pose(pose, clip=False)
    elif mode == "fit":
        transform = fit or fit_transform_for_poses([pose], frame_hw)
        if transform is not None:
            pose = _apply_scale_offset(pose, transform)
    elif mode != "model":
        raise ValueError(f"unknown pose_frame {mode!r}")
    pose, more = _pose_check(pose, frame_hw, where, min_visible)
    return pose, notes + more


def _apply_scale_offset(pose: Pose, t: FrameTransform) -> Pose:
    s = t.scale
    return pose.transform(s, s, 0.5 * s - 0.5 + t.offset_x, 0.5 * s - 0.5 + t.offset_y)


# ------------------------------------------------------------------------------------------ sources


def load_source_image(path: str | os.PathLike[str], max_side: int) -> tuple[np.ndarray, list[str]]:
    """Load any image as RGB uint8 (see :func:`~glocal_cli.data.images.load_image`), downscaling one
    whose longer side exceeds ``max_side`` (warned)."""
    image = load_image(path)
    return limit_size(image, max_side, str(path))


def limit_size(image: np.ndarray, max_side: int, where: str) -> tuple[np.ndarray, list[str]]:
    """Downscale ``image`` so that its longer side is at most ``max_side``; returns ``(image, warnings)``."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, []
    s = max_side / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    return resize_image(image, nh, nw, "area"), [f"{where}: {h}x{w} image downscaled to {nh}x{nw}"]


def match_downscale(parsing: np.ndarray | None, raw_hw: tuple[int, int], hw: tuple[int, int]) -> np.ndarray | None:
    """A label map given at the photo's size follows the photo's ``max_input_side`` downscale (nearest)."""
    if parsing is None or tuple(raw_hw) == tuple(hw) or parsing.shape[:2] != tuple(raw_hw):
        return parsing
    return resize_image(parsing.astype(np.uint8), hw[0], hw[1], "nearest")


@dataclass
class PreparedSource:
    """A source photo put into the model frame."""

    image: np.ndarray
    """``uint8 (H, W, 3)`` in the model frame."""
    pose: Pose
    """Source keypoints in the model frame."""
    parsing: np.ndarray | None
    """``uint8 (H, W)`` labels in the model frame, or ``None`` (to be estimated)."""
    transform: FrameTransform
    """Maps the (possibly downscaled) original into the frame; for ``--paste-back``."""
    original_hw: tuple[int, int]
    """Size of the (possibly downscaled) original image."""
    notes: list[str] = field(default_factory=list)
    """Warnings to show."""
    raw_hw: tuple[int, int] | None = None
    """Size of the photo as given, before the ``max_input_side`` downscale (``None``: ``original_hw``)."""
    original: np.ndarray | None = None
    """The photo as given (Python API only: paste-back and the inpainting composite use it)."""
    parser_image: np.ndarray | None = None
    """``uint8 (kH, kW, 3)``: the photo in the frame of an ``infer.source_parser`` ``k`` times larger (``None``
    when the parser's frame is the model's)."""

    def hiding(self, photo: np.ndarray, hole: np.ndarray) -> PreparedSource:
        """A copy whose frame photos are made from ``photo`` (the photo as given or its downscaled copy) with
        ``hole`` filled (:func:`glocal_cli.infer.prepare.hide_hole`): a hole is missing, nothing of it is seen."""
        filled = hide_hole(photo, hole)
        k = 1 if self.parser_image is None else self.parser_image.shape[0] // self.image.shape[0]
        return replace(self, image=self.transform.render(filled),
                       parser_image=None if k == 1 else self.transform.scaled(k).render(filled))

    @property
    def canvas_hw(self) -> tuple[int, int]:
        """Size of the photo as given: results pasted back or composited have this size."""
        if self.original is not None:
            return (int(self.original.shape[0]), int(self.original.shape[1]))
        return self.raw_hw or self.original_hw


def prepare_source(
    image: np.ndarray,
    pose: Pose | None,
    parsing: np.ndarray | None,
    frame_hw: tuple[int, int],
    where: str = "source",
    resample: str = "bicubic",
    margin: float = 0.15,
    min_visible: int = 9,
    parser_scale: int = 1,
) -> PreparedSource:
    """Fit a source image (and its pose and parsing, in the image's pixels) into the model frame; with
    ``parser_scale`` ``k > 1`` also into the source parser's frame, ``k`` times larger (``parser_image``)."""
    notes: list[str] = []
    if parsing is not None and parsing.shape != image.shape[:2]:
        notes.append(f"{where}: parsing is {parsing.shape[0]}x{parsing.shape[1]}, image {image.shape[0]}x"
                     f"{image.shape[1]}; parsing resized")
        parsing = resize_image(parsing.astype(np.uint8), image.shape[0], image.shape[1], "nearest")
    h, w = frame_hw
    frame, transform = fit_to_frame(image, h, w, resample, pose=pose, margin=margin)  # type: ignore[arg-type]
    frame_pose = Pose.missing() if pose is None else transform.apply_to_pose(pose, clip=False)
    frame_pose, more = _pose_check(frame_pose, frame_hw, f"{where} keypoints", min_visible)
    notes += more
    frame_parsing = None
    if parsing is not None:
        rgb = np.repeat(parsing.astype(np.uint8)[..., None], 3, axis=2)
        fitted, _ = fit_to_frame(rgb, h, w, "nearest", pose=pose, pad_value=0, margin=margin)
        frame_parsing = fitted[..., 0]
    parser_image = transform.scaled(parser_scale).render(image, resample) if parser_scale > 1 else None
    return PreparedSource(frame, frame_pose, frame_parsing, transform, image.shape[:2], notes,
                          parser_image=parser_image)


def pose_from_any(value: Any, where: str = "pose") -> tuple[Pose, list[str]]:
    """A :class:`Pose` from a Pose, a pose-file path, or an ``(18, 2)`` / ``(18, 3)`` array of ``x, y[, score]``."""
    pose, _, notes = pose_and_frame_from_any(value, where)
    return pose, notes


def pose_and_frame_from_any(value: Any, where: str = "pose") -> tuple[Pose, KeypointFrame | None, list[str]]:
    """:func:`pose_from_any` plus the frame a pose file records (``None`` for arrays and files without one)."""
    if isinstance(value, Pose):
        return value, None, []
    if isinstance(value, (str, os.PathLike)):
        pose, note, frame = read_pose_file_frame(value)
        return pose, frame, ([f"{value}: {note}"] if "kept person" in note else [])
    pose, notes = _pose_from_array(value, where)
    return pose, None, notes


def _pose_from_array(value: Any, where: str) -> tuple[Pose, list[str]]:
    arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float32)
    if arr.shape == (NUM_KEYPOINTS, 2):
        return Pose(arr, (arr >= 0).all(axis=1)), []
    if arr.shape == (NUM_KEYPOINTS, 3):
        return Pose.from_xyv(arr), []
    raise InputError(f"{where}: expected a Pose, a pose file, or an (18, 2)/(18, 3) array, got shape {arr.shape}")


def convert_csv_pose(pose: Pose, frame: Any, model_hw: tuple[int, int]) -> Pose:
    """A CSV pose from ``frame`` into the model frame (no-op when ``frame`` is ``None``)."""
    return pose if frame is None else convert_frame(pose, frame, model_hw, clip=False)
