"""The inference core, part 1: what goes into the model.

Every front end (the Python API :class:`~glocal_cli.infer.pipeline.GLocalPipeline`, the batch job of
``glocal transfer`` / ``glocal inpaint`` in :mod:`glocal_cli.infer.batch`, and ``glocal serve``'s engine) puts a
photo into the model frame with :func:`~glocal_cli.infer.io.prepare_source`, maps its target pose with
:func:`~glocal_cli.infer.io.map_target_pose`, turns a hole drawn on the photo into a frame mask with
:func:`frame_mask`, and stacks the items with :func:`collate` into the batch
:meth:`GLocalPipeline.forward_batch` runs. Part 2, everything after the model, is
:func:`glocal_cli.infer.composite.compose`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glocal_cli.data.images import FrameTransform, resize_image
from glocal_cli.data.keypoints import Pose
from glocal_cli.data.prefill import telea_fill

__all__ = ["HIDE_WORK_SIDE", "ModelInput", "collate", "frame_mask", "hide_hole"]


@dataclass
class ModelInput:
    """One item of a model batch, in the model frame (picklable: the batch job's loader workers make them)."""

    image: np.ndarray
    """``uint8 (H, W, 3)``: the photo fitted into the frame."""
    source: Pose
    """The source keypoints in the frame."""
    transform: FrameTransform
    """How the photo was fitted into the frame (and how results go back into it)."""
    parsing: np.ndarray | None = None
    """``uint8 (H, W)`` source parsing labels, or ``None``: estimated by the model (``infer.source_parsing``)."""
    target: Pose | None = None
    """The target keypoints in the frame (pose transfer)."""
    mask: np.ndarray | None = None
    """``bool (H, W)`` hole (inpainting), or ``None``: a semantic hole of ``infer.mask_classes`` from the parsing."""
    parser_image: np.ndarray | None = None
    """``uint8 (kH, kW, 3)``: the photo in the frame of an ``infer.source_parser`` ``k`` times larger."""


def collate(items: Sequence[ModelInput]) -> dict[str, torch.Tensor]:
    """Stack items into the batch of :meth:`GLocalPipeline.forward_batch`: ``image`` uint8 ``(B, 3, H, W)``,
    ``source_xy``/``source_vis``, ``parsing`` uint8 ``(B, H, W)`` with ``has_parsing``, ``content_box`` ``(B, 4)``;
    ``target_xy``/``target_vis`` when the items have targets; ``mask`` uint8 ``(B, 1, H, W)`` with ``has_mask``
    when any item has a mask; ``parser_image`` uint8 ``(B, 3, kH, kW)`` when the items have one."""
    if not items:
        raise ValueError("collate: no items")
    h, w = items[0].image.shape[:2]
    batch = {
        "image": torch.from_numpy(np.stack([it.image for it in items])).permute(0, 3, 1, 2).contiguous(),
        "source_xy": torch.from_numpy(np.stack([it.source.xy for it in items])),
        "source_vis": torch.from_numpy(np.stack([it.source.visible for it in items])),
        "parsing": torch.from_numpy(np.stack([it.parsing if it.parsing is not None else np.zeros((h, w), np.uint8)
                                              for it in items])),
        "has_parsing": torch.tensor([it.parsing is not None for it in items]),
        "content_box": torch.tensor([it.transform.content_box() for it in items]),
    }
    if items[0].target is not None:
        batch["target_xy"] = torch.from_numpy(np.stack([it.target.xy for it in items]))  # type: ignore[union-attr]
        batch["target_vis"] = torch.from_numpy(np.stack([it.target.visible for it in items]))  # type: ignore[union-attr]
    if items[0].parser_image is not None:
        batch["parser_image"] = torch.from_numpy(np.stack([it.parser_image for it in items])).permute(0, 3, 1, 2)
    if any(it.mask is not None for it in items):
        batch["mask"] = torch.from_numpy(np.stack([it.mask if it.mask is not None else np.zeros((h, w), bool)
                                                   for it in items])[:, None].astype(np.uint8))
        batch["has_mask"] = torch.tensor([it.mask is not None for it in items])
    return batch


def frame_mask(mask: np.ndarray, transform: FrameTransform) -> np.ndarray:
    """A hole drawn on the photo (as given, or its downscaled copy) -> ``bool`` hole of the model frame, by the
    photo's fit. A frame pixel is a hole when any part of it is, so every hole pixel of the photo lies on a frame
    pixel the model fills; the frame photo itself is made from :func:`hide_hole`'s copy, so that the resize
    mixes nothing of the hole's content into the pixels around it. Padding is never a hole."""
    t = transform
    resized = resize_image(np.asarray(mask, bool).astype(np.uint8) * 255, t.resized_height, t.resized_width, "area")
    frame = np.zeros((t.frame_height, t.frame_width), np.uint8)
    x0, y0, x1, y1 = t.content_box()
    frame[y0:y1, x0:x1] = resized[y0 - t.offset_y:y1 - t.offset_y, x0 - t.offset_x:x1 - t.offset_x]
    return frame > 0


HIDE_WORK_SIDE = 512
""":func:`hide_hole` fills at most this many pixels on the long side (4x the default frame's height)."""


def hide_hole(photo: np.ndarray, hole: np.ndarray, work_side: int = HIDE_WORK_SIDE) -> np.ndarray:
    """The photo with its hole (``bool``, at the photo's size or any other of the same aspect ratio: a pixel
    any part of which is a hole is one) Telea-filled, for the frame the model sees: a hole is missing, so neither
    the parsing estimate nor the model may read what the photo shows under it, and the frame's resize would
    otherwise mix it into the pixels around the hole. The fill is made at most ``work_side`` pixels large
    (area-reduced, so that no reduced known pixel carries hole content) and resized back into the hole."""
    import cv2

    img = np.asarray(photo, np.uint8)
    h, w = img.shape[:2]
    hole = np.asarray(hole, bool)
    if hole.shape != (h, w):
        hole = resize_image(hole.astype(np.uint8) * 255, h, w, "area") > 0
    if not hole.any():
        return img
    scale = min(1.0, work_side / max(h, w))
    if scale == 1.0:
        return telea_fill(img, hole)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    ys, xs = np.nonzero(hole)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    up = cv2.resize(telea_fill(small, small_hole), (w, h), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
    out = img.copy()
    region, inside = out[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    region[inside] = up[inside]
    return out
