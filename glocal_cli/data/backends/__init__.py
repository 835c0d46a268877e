"""Keypoint backends behind one interface (:class:`KeypointBackend`), chosen with ``--keypoints``.

* ``csv``: the community keypoint CSV (:class:`CsvBackend`), ``json``: per-image OpenPose / COCO /
  mmpose JSON files (:class:`JsonBackend`).
* ``mediapipe``: mediapipe 0.10.21's bundled BlazePose, offline (:class:`MediapipeBackend`); the
  default detector, installed by ``make install``.
* ``mmpose``: a top-down mmpose model given by config + checkpoint or alias (:class:`MmposeBackend`);
  the accuracy option (``make mmpose``).
* ``auto``: mmpose when it is installed and a model is given (``--mmpose-config``), else mediapipe,
  else a clear error naming the install command.

Backends hold models that cannot cross process boundaries, so the preparation pipeline passes a
picklable :class:`BackendSpec` to its workers and each builds its own with :meth:`BackendSpec.build`.
Detector modules are imported lazily: importing this package never imports mediapipe or mmpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from glocal_cli.data.backends.base import AnnotationBackend, CsvBackend, JsonBackend, KeypointBackend
from glocal_cli.data.backends.mediapipe_backend import mediapipe_status
from glocal_cli.data.backends.mmpose_backend import mmpose_status
from glocal_cli.data.keypoints import KeypointFrame
from glocal_cli.errors import ConfigError, NotAvailableError

__all__ = [
    "BACKEND_NAMES",
    "AnnotationBackend",
    "BackendSpec",
    "CsvBackend",
    "JsonBackend",
    "KeypointBackend",
    "backend_status",
    "make_backend",
    "require_detector",
    "resolve_auto",
]

BACKEND_NAMES: tuple[str, ...] = ("csv", "json", "mediapipe", "mmpose", "auto")
"""Values of ``--keypoints``."""


def backend_status() -> dict[str, tuple[bool, str]]:
    """``{name: (usable, reason)}`` for the detector backends (for ``glocal info`` and ``auto``)."""
    return {"mediapipe": mediapipe_status(), "mmpose": mmpose_status()}


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to build a backend in any process (picklable).

    ``annotations``: the CSV file or files (``csv``) or the JSON folder (``json``); ``frame``: the frame of
    the annotation coordinates (``csv``: a name in ``FRAMES`` or ``(H, W)``; ``json``: ``None`` for
    the raw image's pixels). ``mmpose_*``: the model for ``mmpose`` (``mmpose_config`` a path or an
    alias). ``options``: extra keyword arguments for the backend's constructor (thresholds).
    """

    name: str
    annotations: Path | tuple[Path, ...] | None = None
    frame: str | KeypointFrame | tuple[int, int] | None = None
    mmpose_config: str | None = None
    mmpose_checkpoint: str | None = None
    device: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in BACKEND_NAMES:
            raise ConfigError(f"--keypoints {self.name!r}: unknown backend; use one of {', '.join(BACKEND_NAMES)}")

    @property
    def is_annotation(self) -> bool:
        """``True`` for ``csv`` / ``json`` (lookup by name, no pixels needed)."""
        return self.name in ("csv", "json")

    def build(self) -> KeypointBackend:
        """Build the backend (``auto`` is resolved first)."""
        return make_backend(self)


def resolve_auto(spec: BackendSpec) -> BackendSpec:
    """``auto`` -> ``mmpose`` (installed and a model given), else ``mediapipe``, else :class:`NotAvailableError`."""
    if spec.name != "auto":
        return spec
    status = backend_status()
    if status["mmpose"][0] and spec.mmpose_config:
        return replace(spec, name="mmpose")
    if status["mediapipe"][0]:
        return replace(spec, name="mediapipe")
    mm_reason = status["mmpose"][1] if not status["mmpose"][0] else "mmpose is installed but no --mmpose-config was given"
    raise NotAvailableError(
        "--keypoints auto: no keypoint detector is usable: "
        f"{status['mediapipe'][1]}; {mm_reason}; or pass existing keypoints with --keypoints csv|json --annotations PATH"
    )


def require_detector(spec: BackendSpec | str) -> BackendSpec:
    """The detector ``spec`` resolves to, checked usable before any work starts.

    ``auto`` is resolved (:func:`resolve_auto`); ``mediapipe`` / ``mmpose`` must be installed. Raises
    :class:`NotAvailableError` whose one line names the install command, so that a job that needs
    keypoints fails at once instead of once per photo.
    """
    if isinstance(spec, str):
        spec = BackendSpec(spec)
    spec = resolve_auto(spec)
    if spec.name in ("mediapipe", "mmpose"):
        from glocal_cli.data.backends.mediapipe_backend import mediapipe_status
        from glocal_cli.data.backends.mmpose_backend import mmpose_status

        usable, reason = (mediapipe_status if spec.name == "mediapipe" else mmpose_status)()
        if not usable:
            raise NotAvailableError(f"--keypoints {spec.name}: {reason}")
    return spec


def make_backend(spec: BackendSpec | str, **kwargs: Any) -> KeypointBackend:
    """Build a backend from a :class:`BackendSpec` (or a name plus :class:`BackendSpec` fields)."""
    if isinstance(spec, str):
        spec = BackendSpec(spec, **kwargs)
    spec = resolve_auto(spec)
    if spec.name == "csv":
        if spec.annotations is None:
            raise ConfigError("--keypoints csv needs --annotations FILE (a community keypoint CSV)")
        return CsvBackend(spec.annotations, spec.frame)
    if spec.name == "json":
        if spec.annotations is None:
            raise ConfigError("--keypoints json needs --annotations DIR (a folder of pose JSON files)")
        if isinstance(spec.annotations, tuple):
            raise ConfigError("--keypoints json takes one folder of pose JSON files")
        frame = spec.frame if isinstance(spec.frame, (KeypointFrame, tuple)) else None
        return JsonBackend(spec.annotations, frame)
    if spec.name == "mediapipe":
        from glocal_cli.data.backends.mediapipe_backend import MediapipeBackend

        return MediapipeBackend(**spec.options)
    if spec.name == "mmpose":
        from glocal_cli.data.backends.mmpose_backend import MmposeBackend

        if not spec.mmpose_config:
            raise ConfigError("--keypoints mmpose needs --mmpose-config (a config file or an mmpose model alias)")
        return MmposeBackend(spec.mmpose_config, spec.mmpose_checkpoint, device=spec.device, **spec.options)
    raise NotAvailableError(f"keypoint backend {spec.name!r} cannot be built")
