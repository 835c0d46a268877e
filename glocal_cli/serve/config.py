"""Configuration of ``glocal serve`` (the ``serve`` section of the config tree)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServeConfig:
    """Local web server settings (``glocal serve``; see docs/serve.md)."""

    host: str = "127.0.0.1"
    """Address to bind. The default serves this machine only; another address exposes the model to the network."""
    port: int = 8765
    """TCP port to listen on."""
    out: str = "outputs/serve"
    """Folder for everything the server writes (pose files, animations, saved results); nothing is written elsewhere."""
    examples: str = ""
    """Folder of example sources and poses offered by the page (the examples/ layout); empty = the repo's examples/."""
    max_upload_mb: float = 10.0
    """Largest request body accepted (an uploaded photo, pose file or mask), in megabytes; larger ones get HTTP 413."""
    max_pixels: int = 40_000_000
    """Largest uploaded image in pixels (width x height); larger ones are refused before decoding."""
    max_images: int = 32
    """Uploaded photos kept in memory at once (least recently used ones are dropped)."""
    keypoints: Literal["auto", "mediapipe", "mmpose", "none"] = "auto"
    """Keypoint detector for uploaded photos: auto = the first usable backend; none = never detect (the page
    starts from a default pose the user drags onto the person)."""
    paste_back: bool = True
    """Show results in the photo's own canvas (aligned with the skeleton editor) instead of the model frame."""
    debounce_ms: int = 120
    """Delay after the last edit before the page asks for a new result."""
    animation_max_frames: int = 48
    """Most frames one animation request may ask for."""
    animation_fps: float = 8.0
    """Default frames per second of animations."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port = {self.port} must be in 1..65535")
        if self.max_upload_mb <= 0 or self.max_pixels < 64 * 64:
            raise ValueError("max_upload_mb must be > 0 and max_pixels >= 4096")
        if self.max_images < 1 or self.animation_max_frames < 2:
            raise ValueError("max_images must be >= 1 and animation_max_frames >= 2")
        if self.debounce_ms < 0 or self.animation_fps <= 0:
            raise ValueError("debounce_ms must be >= 0 and animation_fps > 0")
        if not self.out:
            raise ValueError("out must name a folder")

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 1024 * 1024)
