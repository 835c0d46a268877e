"""Animations from result frames: ``.mp4`` through OpenCV's ``VideoWriter``, ``.gif`` through PIL.

Frames are ``uint8 (H, W, 3)`` RGB arrays added in order (:class:`FrameWriter` streams mp4 frames
to disk; GIF frames are kept until :meth:`FrameWriter.close`). The file appears under its final
name only when it is complete (written to a temporary name, then renamed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli.errors import InputError, NotAvailableError

__all__ = ["VIDEO_SUFFIXES", "FrameWriter", "write_video"]

VIDEO_SUFFIXES = (".mp4", ".gif")
"""Container formats ``--video`` accepts."""


class FrameWriter:
    """Write RGB frames to ``path`` (``.mp4`` or ``.gif``) at ``fps`` frames per second.

    Use as a context manager; on an exception nothing is left under ``path``. All frames must
    have the size of the first one (later frames of another size are resized).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 10.0) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise InputError(f"{self.path}: video must end in {' or '.join(VIDEO_SUFFIXES)}")
        if fps <= 0:
            raise InputError(f"{self.path}: fps must be positive, got {fps}")
        if self.path.exists() and self.path.is_dir():
            raise InputError(f"{self.path}: is a folder, not a video file name")
        self.fps = float(fps)
        self.kind = suffix[1:]
        self.count = 0
        self._size: tuple[int, int] | None = None
        self._frames: list[np.ndarray] = []
        self._writer: Any = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{suffix}")

    def add(self, frame: np.ndarray) -> None:
        """Append one ``uint8 (H, W, 3)`` RGB frame."""
        img = np.ascontiguousarray(frame)
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"video frames must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
        if self._size is None:
            self._size = (img.shape[0], img.shape[1])
        elif img.shape[:2] != self._size:
            import cv2

            img = cv2.resize(img, (self._size[1], self._size[0]), interpolation=cv2.INTER_AREA)
        if self.kind == "gif":
            self._frames.append(img)
        else:
            if self._writer is None:
                self._writer = self._open_mp4()
            import cv2

            self._writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        self.count += 1

    def _open_mp4(self) -> Any:
        import cv2

        assert self._size is not None
        h, w = self._size
        writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not writer.isOpened():
            raise NotAvailableError(
                f"{self.path}: OpenCV cannot write mp4 here (no mp4v encoder); use a .gif name instead"
            )
        return writer

    def close(self) -> Path | None:
        """Finish the file; returns its path, or ``None`` when no frame was added."""
        if self.count == 0:
            self._discard()
            return None
        if self.kind == "gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in self._frames]
            duration = max(20, int(round(1000.0 / self.fps)))  # GIF timing has 10 ms steps; browsers clamp <20
            images[0].save(self._tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=duration, loop=0, optimize=False, disposal=2)
            self._frames.clear()
        else:
            self._writer.release()
            self._writer = None
        os.replace(self._tmp, self.path)
        return self.path

    def _discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._frames.clear()
        if self._tmp.exists():
            self._tmp.unlink()

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()


def write_video(path: str | os.PathLike[str], frames: list[np.ndarray], fps: float = 10.0) -> Path | None:
    """Write all ``frames`` at once (see :class:`FrameWriter`)."""
    with FrameWriter(path, fps) as writer:
        for frame in frames:
            writer.add(frame)
    return Path(path) if frames else None
