"""The keypoint backend interface and the annotation-file backends (``csv``, ``json``).

A backend turns an RGB image (``uint8 (H, W, 3)``) into one person's 18 COCO-18 keypoints
(:class:`~glocal_cli.data.keypoints.Pose`) **in that image's pixels**, or ``None`` when it finds
no person. Detector backends (``mediapipe``, ``mmpose``) look at the pixels; annotation backends
look the image up by its name in existing files, so :meth:`KeypointBackend.detect` takes the
image's ``name`` too. :meth:`KeypointBackend.detect_batch` is the entry point the preparation
pipeline uses: backends that can batch (mmpose) override it.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli.data.keypoints import KeypointFrame, Pose, convert_frame, read_keypoint_csv, read_pose_file
from glocal_cli.errors import InputError

__all__ = ["MIN_VISIBLE_POINTS", "AnnotationBackend", "CsvBackend", "JsonBackend", "KeypointBackend"]

MIN_VISIBLE_POINTS = 1
"""A detection with fewer visible points than this counts as "no person"."""


class KeypointBackend(ABC):
    """One person's COCO-18 keypoints from an image (see the module docstring).

    Subclasses set :attr:`name` and implement :meth:`detect`; those that can run several images at
    once override :meth:`detect_batch`. Backends hold models: use them as context managers or call
    :meth:`close`. A backend is not shared between processes; each worker builds its own from a
    :class:`~glocal_cli.data.backends.BackendSpec`.
    """

    name: str = "backend"
    """Short name (the ``--keypoints`` value)."""
    uses_pixels: bool = True
    """``False`` for annotation backends, which never look at the image (the pipeline may then skip
    decoding it for the lookup)."""

    @abstractmethod
    def detect(self, image: np.ndarray, name: str | None = None) -> Pose | None:
        """The pose of the (most prominent) person in ``image``, in its pixels; ``None`` if none.

        ``image`` is ``uint8 (H, W, 3)`` RGB. ``name`` is the image's dataset name (used by
        annotation backends; ignored by detectors).
        """

    def detect_batch(self, images: Sequence[np.ndarray], names: Sequence[str | None] | None = None) -> list[Pose | None]:
        """:meth:`detect` for several images (detectors that can batch override this)."""
        names = list(names) if names is not None else [None] * len(images)
        return [self.detect(img, n) for img, n in zip(images, names)]

    def describe(self) -> str:
        """One line for the summary table and the manifest (model, thresholds)."""
        return self.name

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release the model (no-op by default)."""

    def __enter__(self) -> KeypointBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _non_empty(pose: Pose | None) -> Pose | None:
    if pose is None or pose.num_visible < MIN_VISIBLE_POINTS:
        return None
    return pose


class AnnotationBackend(KeypointBackend):
    """Keypoints looked up by image name in a ``{name: Pose}`` table given in a known frame.

    ``frame`` is the frame the stored coordinates refer to (e.g. ``"deepfashion-256x256"``, whose
    content is the 176-wide photo); :meth:`detect` maps a pose from that frame's *content* onto the
    image it is given (``convert_frame`` to the image's ``(H, W)``); ``frame=None`` means the
    coordinates are already in the given image's pixels. An all-missing row is "no person".
    """

    uses_pixels = False

    def __init__(
        self, poses: Mapping[str, Pose], frame: str | KeypointFrame | tuple[int, int] | None, source: str
    ) -> None:
        self.poses = dict(poses)
        self.frame = frame
        self.source = source

    def lookup(self, name: str) -> Pose | None:
        """The stored pose of ``name`` in the annotation's frame, ``None`` when absent or all missing."""
        return _non_empty(self.poses.get(name))

    def names(self) -> list[str]:
        """Every annotated image name, in file order."""
        return list(self.poses)

    def detect(self, image: np.ndarray, name: str | None = None) -> Pose | None:
        if name is None:
            raise InputError(f"{self.source}: annotation backend '{self.name}' needs the image's name")
        pose = self.lookup(name)
        if pose is None or self.frame is None:
            return pose
        h, w = int(image.shape[0]), int(image.shape[1])
        return _non_empty(convert_frame(pose, self.frame, (h, w)))

    def describe(self) -> str:
        return f"{self.name} ({self.source}, {len(self.poses)} rows)"


class CsvBackend(AnnotationBackend):
    """Community keypoint CSVs (``name:keypoints_y:keypoints_x``, y first, ``-1`` missing).

    Several files (e.g. the train and test annotations) are merged; the first row of a name wins.
    """

    name = "csv"

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        frame: str | KeypointFrame | tuple[int, int] | None,
    ) -> None:
        files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not files:
            raise InputError("keypoint backend 'csv': no annotation file given")
        poses: dict[str, Pose] = {}
        for f in files:
            for n, pose in read_keypoint_csv(f).items():
                poses.setdefault(n, pose)
        super().__init__(poses, frame, ", ".join(str(f) for f in files))


class JsonBackend(AnnotationBackend):
    """A folder of per-image pose JSON files (OpenPose, COCO or mmpose predictions).

    The file of image ``<stem>.<ext>`` is ``<stem>.json``, ``<stem>_keypoints.json`` (OpenPose's
    own naming) or ``<name>.json``. Coordinates are in the pixels of the original image, which
    ``frame`` states as ``(H, W)``; when ``frame`` is ``None`` they are taken to be in the pixels of
    whatever image :meth:`detect` receives (the raw photo).
    """

    name = "json"

    def __init__(self, folder: str | os.PathLike[str], frame: KeypointFrame | tuple[int, int] | None = None) -> None:
        root = Path(folder)
        if not root.is_dir():
            raise InputError(f"{root}: keypoint JSON folder not found")
        files = {p.name: p for p in root.rglob("*.json")}
        poses: dict[str, Pose] = {}
        self.errors: dict[str, str] = {}
        for fname, path in sorted(files.items()):
            stem = fname[: -len(".json")]
            if stem.endswith("_keypoints"):
                stem = stem[: -len("_keypoints")]
            try:
                pose, _note = read_pose_file(path)
            except InputError as e:
                self.errors[stem] = str(e)
                continue
            poses[stem] = pose
        super().__init__(poses, frame, str(root))

    def lookup(self, name: str) -> Pose | None:
        stem = Path(name).stem
        return _non_empty(self.poses.get(name, self.poses.get(stem)))
