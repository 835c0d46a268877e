"""Pictures of body fits and 3D correspondence that a person can check at a glance.

Everything here takes plain arrays (numpy or tensors: photos ``uint8 (H, W, 3)``, part maps, pixel
flows, visibility classes) and returns ``uint8 (H, W, 3)`` RGB pictures, so it does not depend on
how a body was fitted. One row per pair (:func:`pair_row`):

``source + mesh | target + mesh | target parts | flow | visibility | warped source``

* *mesh*: the rendered body over the photo in part colours, semi-transparent, shaded by the
  surface normal (:func:`normal_shading`) so that its 3D form reads; keypoints optional
  (:func:`draw_points`: given in green, fitted in red);
* *parts*: :data:`PART_PALETTE` colours of :data:`~glocal_cli.body.base.BODY_PARTS`;
* *flow*: hue = direction, saturation = length (white = no motion), the picture of
  ``glocal transfer --save-flow`` (:func:`glocal_cli.models.flow.flow_to_rgb`);
* *visibility*: green visible in the source, red invisible there, grey background;
* *warped source*: the source sampled by the flow where visible; invisible pixels darkened and
  tinted red, the background shows the target photo faded (so misplaced limbs stand out).

:func:`compose_rows` stacks rows under a title strip; :func:`save_picture` writes a PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from glocal_cli.body.base import NUM_BODY_PARTS
from glocal_cli.data.parsing import colorize
from glocal_cli.models.flow import flow_to_rgb

__all__ = [
    "PAIR_COLUMNS",
    "PART_PALETTE",
    "compose_rows",
    "draw_points",
    "flow_picture",
    "mesh_overlay",
    "normal_shading",
    "pair_row",
    "part_picture",
    "save_picture",
    "visibility_picture",
    "warped_picture",
]

PART_PALETTE: np.ndarray = np.array(
    [
        [0, 0, 0],  # background
        [250, 200, 150],  # head
        [220, 40, 40],  # torso
        [255, 160, 40], [255, 220, 60], [250, 250, 160],  # upper arm, lower arm, hand (left)
        [40, 150, 255], [80, 210, 250], [170, 240, 255],  # right arm
        [60, 170, 80], [140, 220, 60], [210, 250, 150],  # upper leg, lower leg, foot (left)
        [140, 60, 200], [200, 110, 230], [240, 190, 250],  # right leg
    ],
    dtype=np.uint8,
)
"""``uint8 (15, 3)`` RGB per body part: the person's left warm, right cool, lighter towards the extremities."""
PART_PALETTE.setflags(write=False)
assert len(PART_PALETTE) == NUM_BODY_PARTS

VISIBILITY_COLOURS: np.ndarray = np.array([[128, 128, 128], [40, 180, 60], [220, 40, 40]], dtype=np.uint8)
"""Background grey, visible green, invisible red (the 3 classes of :mod:`glocal_cli.body.correspond`)."""
VISIBILITY_COLOURS.setflags(write=False)

PAIR_COLUMNS: tuple[str, ...] = ("source + mesh", "target + mesh", "target parts", "flow", "visibility",
                                 "warped source")
"""Titles of the columns of :func:`pair_row`."""


def _np(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _rgb(photo: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = _np(photo)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"photos must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    return arr


def part_picture(part: np.ndarray | torch.Tensor) -> np.ndarray:
    """``(H, W)`` body-part ids -> ``uint8 (H, W, 3)`` in :data:`PART_PALETTE` (unknown ids white)."""
    pal = np.concatenate([PART_PALETTE, np.full((1, 3), 255, np.uint8)])
    return colorize(np.clip(_np(part).astype(np.int64), 0, len(PART_PALETTE)), pal)


def normal_shading(normals: np.ndarray | torch.Tensor, ambient: float = 0.35) -> np.ndarray:
    """Per-pixel normals ``(H, W, 3)`` (canonical frame) -> ``float32 (H, W)`` brightness in ``[ambient, 1]``.

    A light at the camera: a surface facing it (normal ``z`` = -1) is brightest. Winding does not
    matter (the absolute cosine is used).
    """
    n = _np(normals).astype(np.float32)
    length = np.linalg.norm(n, axis=-1)
    cos = np.abs(n[..., 2]) / np.maximum(length, 1e-12)
    return (ambient + (1.0 - ambient) * cos).astype(np.float32)


def mesh_overlay(photo: np.ndarray | torch.Tensor, part: np.ndarray | torch.Tensor,
                 shading: np.ndarray | torch.Tensor | None = None, alpha: float = 0.55) -> np.ndarray:
    """The photo with the rendered body (part colours times ``shading``) blended in at ``alpha``."""
    img = _rgb(photo).astype(np.float32)
    p = _np(part)
    colour = part_picture(p).astype(np.float32)
    if shading is not None:
        colour *= _np(shading).astype(np.float32)[..., None]
    body = (p > 0)[..., None]
    out = np.where(body, (1 - alpha) * img + alpha * colour, img)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def draw_points(picture: np.ndarray, xy: np.ndarray | torch.Tensor, colour: Sequence[int] = (0, 200, 0),
                visible: np.ndarray | torch.Tensor | None = None, radius: int = 2) -> np.ndarray:
    """A copy of ``picture`` with filled squares at ``xy`` ``(K, 2)`` (``(col, row)``; hidden points skipped)."""
    out = np.array(picture, copy=True)
    pts = _np(xy).reshape(-1, 2)
    keep = np.isfinite(pts).all(-1) if visible is None else (_np(visible).reshape(-1) > 0) & np.isfinite(pts).all(-1)
    for x, y in np.rint(pts[keep]).astype(np.int64):
        out[max(0, y - radius):max(0, y + radius + 1), max(0, x - radius):max(0, x + radius + 1)] = colour
    return out


def flow_picture(flow: np.ndarray | torch.Tensor, visibility: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Pixel flow ``(H, W, 2)`` -> colour wheel picture (white where no motion or on the background)."""
    f = torch.as_tensor(_np(flow), dtype=torch.float32)
    if visibility is not None:
        f = f * torch.as_tensor(_np(visibility) > 0)[..., None]
    return flow_to_rgb(f.permute(2, 0, 1)[None])[0].numpy()


def visibility_picture(visibility: np.ndarray | torch.Tensor) -> np.ndarray:
    """3-class visibility ``(H, W)`` -> grey background, green visible, red invisible."""
    return VISIBILITY_COLOURS[np.clip(_np(visibility).astype(np.int64), 0, 2)]


def warped_picture(warped: np.ndarray | torch.Tensor, visibility: np.ndarray | torch.Tensor,
                   target: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """The warped source where visible; invisible pixels darkened and tinted red; background: the target faded."""
    img = _rgb(warped).astype(np.float32)
    vis = _np(visibility)
    back = np.full_like(img, 255.0) if target is None else 255.0 - 0.3 * (255.0 - _rgb(target).astype(np.float32))
    hidden = 0.4 * img + np.array([90.0, 0.0, 0.0], np.float32)
    out = np.where((vis == 1)[..., None], img, np.where((vis == 2)[..., None], hidden, back))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def pair_row(
    *,
    source: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    source_part: np.ndarray | torch.Tensor,
    target_part: np.ndarray | torch.Tensor,
    flow: np.ndarray | torch.Tensor,
    visibility: np.ndarray | torch.Tensor,
    warped: np.ndarray | torch.Tensor,
    source_shading: np.ndarray | torch.Tensor | None = None,
    target_shading: np.ndarray | torch.Tensor | None = None,
    pad: int = 2,
) -> np.ndarray:
    """One pair as a row of :data:`PAIR_COLUMNS` pictures, ``pad`` white pixels apart (all frames one size)."""
    cells = [
        mesh_overlay(source, source_part, source_shading),
        mesh_overlay(target, target_part, target_shading),
        part_picture(target_part),
        flow_picture(flow, visibility),
        visibility_picture(visibility),
        warped_picture(warped, visibility, target),
    ]
    return _hstack(cells, pad)


def _hstack(cells: Sequence[np.ndarray], pad: int) -> np.ndarray:
    h = cells[0].shape[0]
    if any(c.shape[0] != h for c in cells):
        raise ValueError(f"pictures of one row must share a height: {[c.shape for c in cells]}")
    gap = np.full((h, pad, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for i, c in enumerate(cells):
        if i:
            parts.append(gap)
        parts.append(c)
    return np.concatenate(parts, axis=1)


def compose_rows(rows: Sequence[np.ndarray], titles: Sequence[str] | None = PAIR_COLUMNS, pad: int = 2,
                 cell_width: int | None = None) -> np.ndarray:
    """Stack ``rows`` (same width) ``pad`` pixels apart under a strip of column ``titles`` (``None``: no strip).

    ``cell_width`` places the titles (default: the row width split evenly between the titles).
    """
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        raise ValueError("no rows to compose")
    width = rows[0].shape[1]
    if any(r.shape[1] != width for r in rows):
        raise ValueError(f"rows must share a width: {[r.shape for r in rows]}")
    blocks: list[np.ndarray] = []
    if titles:
        strip = Image.new("RGB", (width, 14), "white")
        draw = ImageDraw.Draw(strip)
        step = cell_width + pad if cell_width else (width + pad) / len(titles)
        for i, title in enumerate(titles):
            draw.text((int(i * step) + 2, 1), title, fill=(0, 0, 0), font=ImageFont.load_default())
        blocks.append(np.asarray(strip))
    for r in rows:
        if blocks:
            blocks.append(np.full((pad, width, 3), 255, np.uint8))
        blocks.append(r)
    return np.concatenate(blocks, axis=0)


def save_picture(picture: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write a ``uint8 (H, W, 3)`` picture as PNG (parent folders created); returns the path."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_rgb(picture)).save(p)
    return p
