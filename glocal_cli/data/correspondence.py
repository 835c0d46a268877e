"""Exact dense correspondence between two SynthPeople images, from their body-surface maps.

Every SynthPeople image has a surface map ``surface/<stem>.npz``: for each pixel the body part
drawn there and its local surface coordinates ``(u, v)`` (``u`` along the part's axis, ``v`` the
angle around it as a fraction of a turn), plus the image's part *frames* (the axis, widths and
profile of each part) and the body ``yaw``. A surface point ``(part, u, v)`` is the same piece of
skin or cloth in every pose of an identity.

:func:`pair_correspondence` turns the maps of a target and a source image into a
:class:`Correspondence` (a named tuple, so ``flow, visible = pair_correspondence(t, s)`` works):

* ``flow`` ``float32 (H, W, 2)``: for every target pixel ``(x, y) = (col, row)``, the *offset* in
  pixels to the position in the *source* image of the surface point the target pixel shows:
  ``source_xy = (col, row) + flow`` (pixel-centre convention); zero on the background. This is
  the GFLA/PISE flow convention; :attr:`Correspondence.coords` gives the absolute positions;
* ``visible`` ``float32 (H, W)``: 1 where that surface point is visible in the source (it faces
  the camera there, lies inside the source frame and no other part covers it), else 0; 0 on the
  background.

It projects every target surface point into the source analytically with the source's frames
(the exact inverse of the rasteriser), then checks that the source pixel it lands on shows the
same part: fully vectorised, a few milliseconds at 256x176. :func:`flow_to_grid` converts a flow
for ``torch.nn.functional.grid_sample``; :func:`warp_by_flow` warps a source image with it.

File format (``format_version`` 1): ``part`` ``uint8 (H, W)``; ``u`` and ``v`` ``uint16 (H, W)`` with
``u = u_stored / 16384 - 1`` and ``v = v_stored / 65536`` (12-bit steps over their ranges:
1/1024 of a part's length, 1/4096 of a turn; 0 on the background); ``frames`` ``float32 (18, 8)``
(columns :data:`~glocal_cli.data.geometry.FRAME_COLUMNS`); ``yaw`` ``float64 ()``. Written
deterministically (fixed zip timestamps), so equal maps give byte-identical files.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from glocal_cli.data.geometry import NUM_PARTS, PART_NAMES, surface_to_pixel
from glocal_cli.data.layout import CORRESPONDENCE_DIR
from glocal_cli.errors import InputError

__all__ = [
    "BACKGROUND",
    "CORRESPONDENCE_FORMAT_VERSION",
    "INVISIBLE",
    "VISIBLE",
    "CorrespondenceMaps",
    "correspondence_path",
    "load_correspondence",
    "save_correspondence",
    "PART_NAMES",
    "SURFACE_FORMAT_VERSION",
    "Correspondence",
    "SurfaceMap",
    "flow_to_grid",
    "load_surface",
    "pair_correspondence",
    "pair_correspondence_files",
    "warp_by_flow",
]

SURFACE_FORMAT_VERSION = 1
"""Version of the ``surface/<stem>.npz`` layout."""

_U_SCALE = 16384.0
_V_SCALE = 65536.0
_STEP = 16


@dataclass(frozen=True, eq=False)
class SurfaceMap:
    """Body-surface coordinates of one image.

    ``part`` ``uint8 (H, W)`` part ids (:data:`~glocal_cli.data.geometry.PART_NAMES`, 0
    background); ``u`` / ``v`` ``float32 (H, W)`` local coordinates (``u`` along the part, about
    ``0 .. 1``; ``v`` in ``[0, 1)``: the angle around the part, 0 = front centre line); ``frames``
    ``float32 (18, 8)`` part geometry; ``yaw`` body rotation in radians.
    """

    part: np.ndarray
    u: np.ndarray
    v: np.ndarray
    frames: np.ndarray
    yaw: float

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (int(self.part.shape[0]), int(self.part.shape[1]))

    def quantised(self) -> SurfaceMap:
        """The map as stored on disk (``u``, ``v`` rounded to the file's 16-bit steps)."""
        return SurfaceMap(self.part, *_dequantise(self.part, *self._uv()), self.frames, self.yaw)

    def _uv(self) -> tuple[np.ndarray, np.ndarray]:
        """``u``, ``v`` as stored: ``uint16 (H, W)``, low 4 bits zero (``u`` in steps of 1/1024 over
        ``[-1, 3)``, ``v`` in steps of 1/4096 of a turn), 0 on the background."""
        person = (self.part > 0).astype(np.uint16) << np.uint16(4)
        uq = self.u * np.float32(_U_SCALE / _STEP) + np.float32(_U_SCALE / _STEP + 0.5)
        np.clip(uq, 0, 65535 // _STEP, out=uq)
        u = uq.astype(np.uint16) * person
        vq = self.v * np.float32(_V_SCALE / _STEP) + np.float32(0.5)
        v = (vq.astype(np.int32).astype(np.uint16) & np.uint16(65536 // _STEP - 1)) * person
        return u, v

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``path`` (``.npz``) atomically and deterministically."""
        u, v = self._uv()
        arrays = {
            "part": np.ascontiguousarray(self.part, dtype=np.uint8),
            "u": u,
            "v": v,
            "frames": np.ascontiguousarray(self.frames, dtype=np.float32),
            "yaw": np.array(self.yaw, dtype=np.float64),
            "format_version": np.array(SURFACE_FORMAT_VERSION, dtype=np.int32),
        }
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.tmp")
        tmp.write_bytes(_zip_bytes({f"{k}.npy": _npy_bytes(a) for k, a in arrays.items()}))
        os.replace(tmp, final)


def _npy_bytes(arr: np.ndarray) -> bytes:
    """An array in ``.npy`` format (header + raw C-order data)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(arr))
    return header.getvalue() + np.ascontiguousarray(arr).tobytes()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    """A minimal deterministic zip archive (what ``np.load`` reads as ``.npz``).

    Deflate level 1 with zlib's run-length strategy (fast on label-like maps), fixed 1980-01-01
    timestamps, no extra fields.
    """
    out = bytearray()
    central = bytearray()
    dos_time, dos_date = 0, (0 << 9) | (1 << 5) | 1
    for name, data in members.items():
        comp = zlib.compressobj(1, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
        packed = comp.compress(data) + comp.flush()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        raw_name = name.encode("ascii")
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, dos_time, dos_date, crc, len(packed), len(data), len(raw_name), 0
        )
        out += raw_name
        out += packed
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0, 8, dos_time, dos_date, crc, len(packed),
            len(data), len(raw_name), 0, 0, 0, 0, 0o644 << 16, offset,
        )  # fmt: skip
        central += raw_name
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0)
    return bytes(out)


def _dequantise(part: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    person = part > 0
    uf = np.where(person, u.astype(np.float32) * np.float32(1.0 / _U_SCALE) - np.float32(1.0), np.float32(0.0))
    vf = v.astype(np.float32) * np.float32(1.0 / _V_SCALE)
    return uf, vf


def load_surface(path: str | os.PathLike[str]) -> SurfaceMap:
    """Read a ``surface/<stem>.npz``; :class:`InputError` naming the file when it is unusable."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as data:
            version = int(data["format_version"]) if "format_version" in data.files else -1
            if version != SURFACE_FORMAT_VERSION:
                raise InputError(f"{p}: surface map format_version {version}, expected {SURFACE_FORMAT_VERSION}")
            part = data["part"]
            u_stored = data["u"]
            v_stored = data["v"]
            frames = data["frames"]
            yaw = float(data["yaw"])
    except InputError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(f"{p}: cannot read surface map ({e.__class__.__name__}: {e})") from None
    if part.ndim != 2 or u_stored.shape != part.shape or v_stored.shape != part.shape or frames.shape != (NUM_PARTS, 8):
        raise InputError(
            f"{p}: surface map arrays have inconsistent shapes {part.shape}, {u_stored.shape}, {v_stored.shape}, "
            f"{frames.shape}"
        )
    if part.size and int(part.max()) >= NUM_PARTS:
        raise InputError(f"{p}: part id {int(part.max())} is not one of the {NUM_PARTS} parts")
    u, v = _dequantise(part, u_stored, v_stored)
    return SurfaceMap(part, u, v, frames.astype(np.float32), yaw)


def _as_surface(s: SurfaceMap | str | os.PathLike[str]) -> SurfaceMap:
    return s if isinstance(s, SurfaceMap) else load_surface(s)


class Correspondence(NamedTuple):
    """Ground-truth correspondence of a target image to a source image (see the module docstring)."""

    flow: np.ndarray
    """``float32 (H, W, 2)``: offsets ``(dx, dy)`` in pixels, target pixel -> source position."""
    visible: np.ndarray
    """``float32 (H, W)``: 1 where the target pixel's surface point is visible in the source."""

    @property
    def coords(self) -> np.ndarray:
        """``float32 (H, W, 2)``: absolute source positions ``(x, y)`` (the pixel grid plus ``flow``)."""
        return self.flow + _pixel_grid(*self.flow.shape[:2])

    @property
    def visibility(self) -> np.ndarray:
        """Alias of :attr:`visible`."""
        return self.visible


def _pixel_grid(h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def pair_correspondence(
    surface_target: SurfaceMap | str | os.PathLike[str],
    surface_source: SurfaceMap | str | os.PathLike[str],
) -> Correspondence:
    """Dense flow target -> source and the target's visibility in the source.

    Accepts :class:`SurfaceMap` objects or paths of ``surface/<stem>.npz`` files. Returns
    ``Correspondence(flow float32 (H, W, 2) pixel offsets, visible float32 (H, W) in {0, 1})``
    with ``(H, W)`` the target's size. Where ``visible`` is 0 on the person, ``flow`` still points
    at the projection of the surface point (behind an occluder, or on the silhouette edge for a
    point that faces away); it carries no appearance there.
    """
    tgt = _as_surface(surface_target)
    src = _as_surface(surface_source)
    h, w = tgt.shape
    sh, sw = src.shape
    flow = np.zeros((h, w, 2), np.float32)
    visible = np.zeros((h, w), np.float32)
    person = tgt.part > 0
    if not person.any():
        return Correspondence(flow, visible)
    rows, cols = np.nonzero(person)
    pid = tgt.part[rows, cols].astype(np.int64)
    theta = tgt.v[rows, cols] * np.float32(2.0 * math.pi)
    x, y, facing = surface_to_pixel(src.frames, src.yaw, pid, tgt.u[rows, cols], theta)
    flow[rows, cols, 0] = x - cols.astype(np.float32)
    flow[rows, cols, 1] = y - rows.astype(np.float32)
    ix = np.rint(x).astype(np.int64)
    iy = np.rint(y).astype(np.int64)
    ok = facing & (ix >= 0) & (ix < sw) & (iy >= 0) & (iy < sh)
    hit = np.zeros_like(ok)
    hit[ok] = src.part[iy[ok], ix[ok]] == pid[ok]
    visible[rows, cols] = hit
    return Correspondence(flow, visible)


def pair_correspondence_files(dataset: str | os.PathLike[str], target: str, source: str) -> Correspondence:
    """:func:`pair_correspondence` for two image names of a prepared SynthPeople folder."""
    root = Path(dataset) / "surface"
    return pair_correspondence(root / f"{Path(target).stem}.npz", root / f"{Path(source).stem}.npz")


def flow_to_grid(flow: np.ndarray, source_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Pixel offsets ``(H, W, 2)`` -> absolute ``grid_sample`` coordinates in ``[-1, 1]`` (``align_corners=False``).

    ``source_hw`` is the source image size (default: the flow's own size).
    """
    h, w = source_hw if source_hw is not None else flow.shape[:2]
    coords = flow.astype(np.float32) + _pixel_grid(*flow.shape[:2])
    grid = np.empty_like(coords)
    grid[..., 0] = (coords[..., 0] + 0.5) * (2.0 / w) - 1.0
    grid[..., 1] = (coords[..., 1] + 0.5) * (2.0 / h) - 1.0
    return grid


def warp_by_flow(source: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``source`` (``H x W [x C]``) at ``pixel + flow`` (bilinear, edge pixels repeated).

    Returns ``float32`` of the flow's size (with ``source``'s channels).
    """
    import cv2

    coords = flow.astype(np.float32) + _pixel_grid(*flow.shape[:2])
    return cv2.remap(
        np.ascontiguousarray(source).astype(np.float32),
        np.ascontiguousarray(coords[..., 0]),
        np.ascontiguousarray(coords[..., 1]),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


# ---- pair correspondence files (``correspondence/<target>__<source>.npz``): the 3D fits' ground truth

BACKGROUND, VISIBLE, INVISIBLE = 0, 1, 2
"""The three visibility classes (Intr-Flow's): background, visible in the source, invisible there."""

CORRESPONDENCE_FORMAT_VERSION = 1
"""Version of the ``correspondence/<target>__<source>.npz`` layout."""


class CorrespondenceMaps(NamedTuple):
    """One pair's flow and visibility as numpy arrays (the dataset's training format)."""

    flow: np.ndarray
    """``(H, W, 2)`` pixel offsets target -> source (``float16`` from :meth:`glocal_cli.body.correspond.BodyCorrespondence.maps`,
    ``float32`` from :func:`load_correspondence`)."""
    visibility: np.ndarray
    """``uint8 (H, W)`` classes 0 background, 1 visible, 2 invisible in the source."""


def correspondence_path(dataset: str | os.PathLike[str], target: str, source: str) -> Path:
    """``<dataset>/correspondence/<target_stem>__<source_stem>.npz``."""
    return Path(dataset) / CORRESPONDENCE_DIR / f"{Path(target).stem}__{Path(source).stem}.npz"


def save_correspondence(path: str | os.PathLike[str], flow: np.ndarray | Any,
                        visibility: np.ndarray | Any) -> None:
    """Write one pair's ``flow (H, W, 2)`` and ``visibility (H, W)`` (module docstring) atomically.

    Same maps, same bytes. Flow is stored as ``float16`` and zeroed on the background.
    """
    flow_np = np.asarray(flow.detach().cpu().numpy() if hasattr(flow, "detach") else flow)
    vis_np = np.asarray(visibility.detach().cpu().numpy() if hasattr(visibility, "detach") else visibility)
    if flow_np.ndim != 3 or flow_np.shape[-1] != 2 or vis_np.shape != flow_np.shape[:2]:
        raise ValueError(f"flow must be (H, W, 2) and visibility (H, W): got {flow_np.shape}, {vis_np.shape}")
    if vis_np.size and int(vis_np.max()) > INVISIBLE:
        raise ValueError(f"visibility classes are 0, 1, 2; got {int(vis_np.max())}")
    vis_np = np.ascontiguousarray(vis_np, dtype=np.uint8)
    flow32 = np.asarray(flow_np, dtype=np.float32)  # no copy when it is float32 already
    if not np.isfinite(flow32).all():
        flow32 = np.nan_to_num(flow32, nan=0.0, posinf=0.0, neginf=0.0)
    flow16 = flow32.astype(np.float16)
    flow16.view(np.uint32)[..., 0] *= vis_np != BACKGROUND  # both halves of a pixel's flow to +0.0
    arrays = {
        "flow": np.ascontiguousarray(flow16),
        "visibility": vis_np,
        "format_version": np.array(CORRESPONDENCE_FORMAT_VERSION, dtype=np.int32),
    }
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    tmp.write_bytes(_zip_bytes({f"{k}.npy": _npy_bytes(a) for k, a in arrays.items()}))
    os.replace(tmp, final)


def load_correspondence(path: str | os.PathLike[str]) -> CorrespondenceMaps:
    """Read a file of :func:`save_correspondence`: ``flow`` ``float32 (H, W, 2)``, ``visibility`` ``uint8 (H, W)``.

    Raises :class:`~glocal_cli.errors.InputError` naming the file when it is unreadable, of another
    format version, or inconsistent.
    """
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as data:
            version = int(data["format_version"]) if "format_version" in data.files else -1
            if version != CORRESPONDENCE_FORMAT_VERSION:
                raise InputError(f"{p}: correspondence format_version {version}, expected "
                                 f"{CORRESPONDENCE_FORMAT_VERSION}")
            flow = data["flow"]
            vis = data["visibility"]
    except InputError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise InputError(f"{p}: cannot read correspondence ({e.__class__.__name__}: {e})") from None
    if flow.ndim != 3 or flow.shape[-1] != 2 or vis.shape != flow.shape[:2] or vis.dtype != np.uint8:
        raise InputError(f"{p}: correspondence arrays have inconsistent shapes {flow.shape}, {vis.shape}")
    if vis.size and int(vis.max()) > INVISIBLE:
        raise InputError(f"{p}: visibility class {int(vis.max())} is not one of 0, 1, 2")
    return CorrespondenceMaps(flow.astype(np.float32), vis)
