"""Render and write one SynthPeople identity (the unit of parallel work and of resuming).

An identity's random stream depends only on ``(seed, identity index)``, so its files are
byte-identical whatever the number of workers, the order identities finish in, or whether the
run was interrupted and resumed. Every file is written atomically; the identity's *marker*
(``.synthpeople/done/id_<index>.json``, holding its keypoints, views and yaws) is written last, so
an identity with a marker is complete and one without is simply rendered again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli.data import atomic_write_text
from glocal_cli.data.correspondence import SurfaceMap
from glocal_cli.data.layout import IMAGES_DIR, PARSING_DIR, SURFACE_DIR
from glocal_cli.synth.appearance import Appearance, sample_appearance
from glocal_cli.synth.poses import PoseBank
from glocal_cli.synth.render import RenderedPerson, RenderOptions, render_person

__all__ = [
    "STATE_DIR",
    "identity_files",
    "identity_key",
    "identity_rng",
    "image_name",
    "marker_path",
    "read_marker",
    "render_identity",
    "write_identity",
    "write_png",
]

STATE_DIR = ".synthpeople"
"""Hidden folder of a SynthPeople output with the run's state and the per-identity markers."""

_PNG_PARAMS: list[int] | None = None


def identity_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of one identity: a function of ``(seed, index)`` only."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 0x5E7]))


def image_name(index: int, pose: int) -> str:
    """``synth_id00012_03.png``: identity 12, pose 3."""
    return f"synth_id{index:05d}_{pose:02d}.png"


def identity_key(name: str) -> str:
    """``synth_id00012_03.png`` -> ``synth/id00012`` (the pairing and split key)."""
    stem = Path(name).stem
    return "synth/" + stem[len("synth_") :].rsplit("_", 1)[0]


def identity_files(out: Path, name: str) -> tuple[Path, Path, Path]:
    """The image, parsing map and surface map files of image ``name`` in the output ``out``."""
    stem = Path(name).stem
    return out / IMAGES_DIR / name, out / PARSING_DIR / f"{stem}.png", out / SURFACE_DIR / f"{stem}.npz"


def marker_path(out: Path, index: int) -> Path:
    """Completion marker of identity ``index``."""
    return out / STATE_DIR / "done" / f"id_{index:05d}.json"


def render_identity(
    seed: int,
    index: int,
    poses_per_identity: int,
    height: int,
    width: int,
    bank: PoseBank,
    options: RenderOptions | None = None,
) -> tuple[Appearance, list[RenderedPerson]]:
    """Draw an identity's appearance and render its poses (no files written)."""
    rng = identity_rng(seed, index)
    app = sample_appearance(rng)
    people = []
    for _ in range(poses_per_identity):
        pose = bank.sample(rng, height, width)
        people.append(render_person(pose, app, height, width, rng, options))
    return app, people


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 ``(H, W)`` label map or ``(H, W, 3)`` RGB image as PNG, atomically and fast.

    OpenCV's zlib at level 1 without PNG row filters: about ten times faster than PIL's default
    on the noisy studio background (the dataset's throughput depends on it), smaller, and
    deterministic. The files are ordinary PNGs (mode ``RGB`` / ``L``), read by
    :func:`~glocal_cli.data.images.load_image` and :func:`~glocal_cli.data.parsing.read_parsing`.
    """
    import cv2

    global _PNG_PARAMS
    if _PNG_PARAMS is None:
        _PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    pixels = image[:, :, ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(pixels, dtype=np.uint8), _PNG_PARAMS)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    _write_bytes(path, buf.tobytes())


def _write_bytes(path: Path, data: bytes) -> None:
    """Write atomically: a temporary name in the same folder, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_identity(
    out: Path,
    seed: int,
    index: int,
    poses_per_identity: int,
    height: int,
    width: int,
    bank: PoseBank,
) -> dict[str, Any]:
    """Render identity ``index`` and write its images, parsing maps, surface maps and marker.

    Returns the marker record: ``{"identity", "appearance", "images": [{"name", "xy", "visible",
    "view", "yaw", "pose"}, ...]}``.
    """
    app, people = render_identity(seed, index, poses_per_identity, height, width, bank)
    images = []
    for k, person in enumerate(people):
        name = image_name(index, k)
        image_file, parsing_file, surface_file = identity_files(out, name)
        write_png(image_file, person.image)
        write_png(parsing_file, person.parsing)
        SurfaceMap(person.part, person.u, person.v, person.frames, person.yaw).save(surface_file)
        kp = person.keypoints
        images.append(
            {
                "name": name,
                "xy": [[round(float(x), 3), round(float(y), 3)] for x, y in kp.xy],
                "visible": [bool(v) for v in kp.visible],
                "view": person.view,
                "yaw": round(person.yaw, 5),
                "pose": person.pose_source,
            }
        )
    record = {"identity": index, "appearance": app.describe(), "images": images}
    atomic_write_text(marker_path(out, index), json.dumps(record, separators=(",", ":")) + "\n")
    return record


def read_marker(out: Path, index: int, poses_per_identity: int,
                files_of: Callable[[Path, str], Iterable[Path]] = identity_files) -> dict[str, Any] | None:
    """The marker record of a finished identity, or ``None`` when it is missing or unusable or one of the
    files ``files_of(out, image name)`` of its images is missing."""
    path = marker_path(out, index)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    images = record.get("images") if isinstance(record, dict) else None
    if images is None or record.get("identity") != index or not isinstance(images, list) \
            or len(images) != poses_per_identity:
        return None
    for k, item in enumerate(images):
        if not isinstance(item, dict) or item.get("name") != image_name(index, k):
            return None
        if not all(os.path.isfile(f) for f in files_of(out, item["name"])):
            return None
    return record


# ------------------------------------------------------------------------- worker processes

_WORKER_BANK: PoseBank | None = None


def init_worker(bank_file: str) -> None:
    """Process-pool initializer: one thread per process for OpenCV, the pose bank (a file written
    by :meth:`PoseBank.save`) loaded once; Ctrl-C is left to the parent, which stops handing out
    identities and lets the ones in flight finish."""
    import signal

    import cv2

    global _WORKER_BANK
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _WORKER_BANK = PoseBank.load(bank_file)


def work_star(job: tuple[str, int, int, int, int, int]) -> dict[str, Any]:
    """Process-pool task ``(out, seed, index, poses_per_identity, height, width)``:
    :func:`write_identity` with the process's pose bank."""
    if _WORKER_BANK is None:
        raise RuntimeError("init_worker was not called in this process")
    out, seed, index, poses_per_identity, height, width = job
    return write_identity(Path(out), seed, index, poses_per_identity, height, width, _WORKER_BANK)
