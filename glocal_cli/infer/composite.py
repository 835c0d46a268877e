"""Model-frame results back in the source photo: paste-back and the inpainting composite.

The model runs in a fixed frame (e.g. 256x176); a source photo is fitted into it by a
:class:`~glocal_cli.data.images.FrameTransform` (possibly after a downscale of a very large photo,
``infer.max_input_side``). These helpers map frame pictures back onto the photo *as given*:

* :func:`paste_into` puts the frame's content region back at its place in the original photo
  (the part the frame cropped away keeps the photo's own pixels);
* :func:`inpaint_composite` keeps every known pixel of the photo and takes only the holes from the
  model, with a feathered seam *inside* the hole (see :func:`feather_fill`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glocal_cli.data.images import FrameTransform, Resample, resize_image
from glocal_cli.data.prefill import semantic_fill, telea_fill, texture_fill

if TYPE_CHECKING:
    import torch

__all__ = ["canvas_box", "compose", "feather_fill", "DETAIL_KEYS", "frame_to_canvas", "full_res_transfer", "inpaint_composite", "mask_to_canvas",
           "paste_into"]


def canvas_box(transform: FrameTransform, canvas_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the photo region that the frame's content shows, in a canvas of ``canvas_hw``.

    ``canvas_hw`` is the photo's size as given; the transform may refer to a uniformly downscaled
    copy of it (``transform.source_height x source_width``), so the box is scaled accordingly.
    """
    ch, cw = canvas_hw
    fx0, fy0, fx1, fy1 = transform.content_box()
    # the content box in resized-source pixels, then in canvas pixels (one resized pixel = cw / rw)
    rx0, ry0 = fx0 - transform.offset_x, fy0 - transform.offset_y
    rx1, ry1 = fx1 - transform.offset_x, fy1 - transform.offset_y
    kx, ky = cw / transform.resized_width, ch / transform.resized_height
    x0, y0 = min(cw - 1, round(rx0 * kx)), min(ch - 1, round(ry0 * ky))
    x1 = min(cw, max(x0 + 1, round(rx1 * kx)))
    y1 = min(ch, max(y0 + 1, round(ry1 * ky)))
    return x0, y0, x1, y1


def frame_to_canvas(frame_image: np.ndarray, transform: FrameTransform, canvas_hw: tuple[int, int],
                    resample: Resample = "bicubic") -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The frame's content region resized to its place in the photo: ``(region, box)`` with ``box`` as
    :func:`canvas_box` returns it and ``region`` of the box's size."""
    frame = np.asarray(frame_image)
    if frame.shape[:2] != (transform.frame_height, transform.frame_width):
        raise ValueError(f"frame image is {frame.shape[0]}x{frame.shape[1]}, expected "
                         f"{transform.frame_height}x{transform.frame_width}")
    fx0, fy0, fx1, fy1 = transform.content_box()
    x0, y0, x1, y1 = canvas_box(transform, canvas_hw)
    region = resize_image(np.ascontiguousarray(frame[fy0:fy1, fx0:fx1]), y1 - y0, x1 - x0, resample)
    return region, (x0, y0, x1, y1)


def paste_into(original: np.ndarray, frame_image: np.ndarray, transform: FrameTransform,
               resample: Resample = "bicubic") -> np.ndarray:
    """A copy of ``original`` (the photo as given) with the frame's content pasted at its place.

    When the frame shows the whole photo the result is the frame content resized to the photo's
    size; when the photo was cropped to fit, the pixels outside the crop are the photo's own.
    """
    out = np.array(original, dtype=np.uint8, copy=True)
    region, (x0, y0, x1, y1) = frame_to_canvas(frame_image, transform, out.shape[:2], resample)
    out[y0:y1, x0:x1] = region
    return out


def mask_to_canvas(frame_mask: np.ndarray, transform: FrameTransform, canvas_hw: tuple[int, int]) -> np.ndarray:
    """A frame-sized hole mask as ``bool`` in the photo's pixels (nearest; outside the frame's view: no hole)."""
    out = np.zeros(canvas_hw, bool)
    region, (x0, y0, x1, y1) = frame_to_canvas(np.asarray(frame_mask, bool).astype(np.uint8) * 255, transform,
                                               canvas_hw, "nearest")
    out[y0:y1, x0:x1] = region > 127
    return out


def _normalised_box_blur(values: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """Box blur of ``values`` counting only pixels where ``weight`` is 1 (known pixels)."""
    import cv2

    w = weight.astype(np.float32)
    num = cv2.boxFilter(values * w[..., None], -1, (k, k), normalize=False, borderType=cv2.BORDER_REPLICATE)
    den = cv2.boxFilter(w, -1, (k, k), normalize=False, borderType=cv2.BORDER_REPLICATE)
    return num / np.maximum(den, 1e-6)[..., None]


def feather_fill(original: np.ndarray, fill: np.ndarray, hole: np.ndarray, feather: float) -> np.ndarray:
    """Known pixels of ``original``, holes from ``fill``, with the seam feathered inside the hole.

    Every known pixel is returned unchanged, and no pixel of the original's hole content is used
    (it is whatever the mask removes: an object, or the ground truth of a benchmark). Inside the
    hole, within ``feather`` pixels of its border, the fill is shifted by the colour step between
    photo and fill at the nearest known pixel (smoothed over known pixels only), fading linearly
    from that step at the border to none at depth ``feather``: the fill meets the photo without a
    visible seam and keeps its own structure. Deeper hole pixels are the fill exactly.
    ``feather <= 0``: a hard composite.
    """
    import cv2

    orig = np.asarray(original, np.uint8)
    hole = np.asarray(hole, bool)
    out = orig.copy()
    if not hole.any():
        return out
    out[hole] = fill[hole]
    if feather <= 0 or hole.all():
        return out
    k = max(3, 2 * int(round(feather / 2)) + 1)
    # work on the hole's box grown by the feather and the blur: every pixel that matters lies in it,
    # and its border pixels are known, so the distances inside are exact
    ys, xs = np.nonzero(hole)
    m = int(np.ceil(feather)) + k
    y0, y1 = max(0, int(ys.min()) - m), min(hole.shape[0], int(ys.max()) + m + 1)
    x0, x1 = max(0, int(xs.min()) - m), min(hole.shape[1], int(xs.max()) + m + 1)
    h, o, f = hole[y0:y1, x0:x1], orig[y0:y1, x0:x1], np.asarray(fill)[y0:y1, x0:x1]
    known = ~h
    dist, labels = cv2.distanceTransformWithLabels(h.astype(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    band = h & (dist < feather)
    if not band.any():
        return out
    step = _normalised_box_blur(o.astype(np.float32) - f.astype(np.float32), known, k)
    known_flat = np.flatnonzero(known.ravel())  # label L (raster order of the known pixels) -> pixel
    nearest = known_flat[labels[band] - 1]
    fade = (1.0 - dist[band] / float(feather))[:, None]
    shifted = f[band].astype(np.float32) + fade * step.reshape(-1, o.shape[2])[nearest]
    view = out[y0:y1, x0:x1]
    view[band] = np.clip(np.rint(shifted), 0, 255).astype(np.uint8)
    return out


def inpaint_composite(original: np.ndarray, hole: np.ndarray, frame_result: np.ndarray, transform: FrameTransform,
                      feather: float = 2.0, frame_prefill: np.ndarray | None = None,
                      frame_probs: np.ndarray | None = None, fill: str = "semantic",
                      texture: Mapping[str, Any] | None = None) -> tuple[np.ndarray, list[str]]:
    """The inpainting result at the photo's own size: ``(image, warnings)``.

    ``original``: the photo as given (``uint8 (H, W, 3)``); ``hole``: ``bool (H, W)``, True = missing;
    ``frame_result``: the model's picture in the frame; ``transform``: how the photo (or its downscaled
    copy) was fitted into the frame. ``feather`` is in model-frame pixels (scaled to the photo). Hole
    pixels outside the region the frame shows cannot be filled: they keep the photo's pixels (warned).

    ``frame_prefill`` (weights with ``model.inpaint_prefill``): the classically prefilled frame the model
    refined. The hole is then filled at the photo's resolution: the classical fill of the photo itself plus
    the model's correction (``frame_result - frame_prefill``) resized to the photo, so the fill keeps the
    photo's sharpness where the model leaves the classical fill as it is. With ``frame_probs`` (``(K, h, w)``
    class probabilities in the frame, ``infer.inpaint_fill: semantic`` or ``texture``) that classical fill is
    :func:`~glocal_cli.data.prefill.semantic_fill`, class by class, or with ``fill="texture"``
    :func:`~glocal_cli.data.prefill.texture_fill` (the texture continued; synthesised at 1 MP at most; ``texture``:
    its options, e.g. ``weight`` and ``taper``, :meth:`glocal_cli.infer.config.InferConfig.texture_options`).
    """
    orig = np.asarray(original, np.uint8)
    hole = np.asarray(hole, bool)
    if hole.shape != orig.shape[:2]:
        raise ValueError(f"hole mask is {hole.shape[0]}x{hole.shape[1]}, the photo {orig.shape[0]}x{orig.shape[1]}")
    notes: list[str] = []
    region, (x0, y0, x1, y1) = frame_to_canvas(frame_result, transform, orig.shape[:2])
    inside = np.zeros_like(hole)
    inside[y0:y1, x0:x1] = True
    outside = int((hole & ~inside).sum())
    if outside:
        notes.append(f"{outside} hole pixel(s) lie outside the part of the photo the model sees; left as they are")
    out = orig.copy()
    per_frame_px = orig.shape[1] / transform.resized_width
    if frame_prefill is not None and hole[y0:y1, x0:x1].any():
        fx0, fy0, fx1, fy1 = transform.content_box()
        delta = np.asarray(frame_result, np.float32)[fy0:fy1, fx0:fx1] - np.asarray(frame_prefill, np.float32)[fy0:fy1, fx0:fx1]
        correction = cv2_resize(delta, y1 - y0, x1 - x0)
        if frame_probs is None:
            classical = telea_fill(orig[y0:y1, x0:x1], hole[y0:y1, x0:x1]).astype(np.float32)
        else:  # the probabilities of the frame's content box cover the photo's region (x0, y0, x1, y1)
            probs = np.asarray(frame_probs, np.float32)[:, fy0:fy1, fx0:fx1]
            if fill == "texture":
                classical = texture_fill(orig[y0:y1, x0:x1], hole[y0:y1, x0:x1], probs, **(texture or {}))
            else:
                classical = semantic_fill(orig[y0:y1, x0:x1], hole[y0:y1, x0:x1], probs)
            classical = classical.astype(np.float32)
        region = np.clip(np.rint(classical + correction), 0, 255).astype(np.uint8)
        feather = 0.0  # the classical fill already meets the photo at the seam
    out[y0:y1, x0:x1] = feather_fill(orig[y0:y1, x0:x1], region, hole[y0:y1, x0:x1], feather * per_frame_px)
    return out, notes


def compose(frame_image: np.ndarray, photo: np.ndarray, transform: FrameTransform, *,
            detail: Sequence[np.ndarray] | None = None, hole: np.ndarray | None = None,
            prefill: np.ndarray | None = None, probs: np.ndarray | None = None,
            feather: float = 2.0, fill: str = "semantic",
            texture: Mapping[str, Any] | None = None) -> tuple[np.ndarray, list[str]]:
    """The inference core, part 2: a model-frame result in the photo's own canvas and resolution,
    ``(picture, notes)``; every front end writes what this returns.

    Inpainting (``hole``: ``bool`` at the photo's size): every known pixel of ``photo`` kept, the hole from the
    model (:func:`inpaint_composite`, with the frame's ``prefill`` when the weights refine a classical fill, and
    the class ``probs`` it was mixed by when that fill is semantic or ``fill="texture"``, with the ``texture``
    fill's options).
    Pose transfer with the generator's blend maps (``detail``, :data:`DETAIL_KEYS` order): what the source shows
    copied from the photo at full resolution (:func:`full_res_transfer`). Otherwise the frame picture resized
    into its place (:func:`paste_into`)."""
    if hole is not None:
        return inpaint_composite(photo, hole, frame_image, transform, feather, prefill, probs, fill, texture)
    if detail is not None:
        return full_res_transfer(photo, frame_image, transform, *detail), []
    return paste_into(photo, frame_image, transform), []


def cv2_resize(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a float map ``(h, w, C)`` to ``(height, width, C)`` (a smooth correction field)."""
    import cv2

    return cv2.resize(values, (width, height), interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)


DETAIL_KEYS = ("blend", "warped", "flow", "person", "backdrop")
"""The per-item maps :func:`full_res_transfer` takes after the frame picture, in its argument order."""


def person_mask(person: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """A steep ramp of the person probability around 0.5 (0 below 0.35, 1 above 0.65): the parsing's soft
    margin would otherwise leave a haze of the model's background around the person."""
    return ((person - 0.35) / 0.3).clip(0, 1)


def _nonzero_box(values: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``(row0, row1, col0, col1)`` of the smallest box holding every non-zero of a 2-D tensor; ``None`` if none."""
    import torch

    rows = torch.nonzero(values.amax(1) > 0)
    if not len(rows):
        return None
    cols = torch.nonzero(values.amax(0) > 0)
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def full_res_transfer(original: np.ndarray, frame_image: np.ndarray, transform: FrameTransform,
                      blend: np.ndarray, warped: np.ndarray, flow: np.ndarray, person: np.ndarray | None = None,
                      backdrop: np.ndarray | None = None, band_pixels: int = 1 << 20) -> np.ndarray:
    """A pose-transfer result pasted into the photo at the photo's own resolution, with what the source
    shows copied *sharp* (the final, visibility-gated blend of the generator, at full resolution).

    The model works in its frame (e.g. 128x88); its output is ``image = m * warp(I_s) + (1 - m) * decoded
    + residual`` (``model.pixel_blend``). Upsampling that picture blurs the copied texture. Here the
    low-resolution warp is replaced by the photo itself warped by the same flow at the photo's
    resolution: ``out = up(image) + up(m) * (warp_full(photo) - up(warp(I_s)))``, which equals
    ``m * warp_full(photo) + (1 - m) * up(decoded) + up(residual)`` up to the interpolation.

    ``blend`` ``float (1, H, W)`` is ``m``; ``warped`` ``float (3, H, W)`` in ``[-1, 1]`` the model's own
    warp of the framed source; ``flow`` ``float (2, h, w)`` the normalised (``grid_sample``) flow that
    made it, target -> source, both in the frame of ``transform`` (transfer keeps the source's frame).
    With ``person`` ``(1, H, W)`` (1 - the target parsing's background probability) and a known ``backdrop``
    colour ``(3,)`` in [-1, 1] (``infer.background``), the result is ``backdrop + person * (out - backdrop)``:
    nothing of the source is copied where the target shows the backdrop (the frame picture is already
    flattened the same way, see :func:`glocal_cli.infer.pipeline.apply_backdrop`).

    Memory: the photo is held once as float; everything per pixel is computed in row bands of about
    ``band_pixels`` pixels (a 28-megapixel photo never has its coordinate and warp maps whole), with results
    identical to one pass.
    """
    import torch
    import torch.nn.functional as F

    orig = np.asarray(original, np.uint8)
    ch, cw = orig.shape[:2]
    out = orig.copy()
    x0, y0, x1, y1 = canvas_box(transform, (ch, cw))
    fh, fw = transform.frame_height, transform.frame_width
    kx, ky = cw / transform.resized_width, ch / transform.resized_height  # photo pixels per resized pixel
    fx = (np.arange(x0, x1) + 0.5) / kx - 0.5 + transform.offset_x  # frame x of the region's pixel centres
    photo = torch.tensor(orig.transpose(2, 0, 1), dtype=torch.float32)[None]  # the one full-size float copy
    flat = None
    if person is not None and backdrop is not None and np.isfinite(backdrop).all():
        flat = torch.as_tensor((np.asarray(backdrop, np.float32) + 1.0) * 127.5)[:, None, None]
    maps = {k: torch.as_tensor(np.asarray(v, np.float32))[None]
            for k, v in (("flow", flow), ("warped", warped), ("blend", blend), ("frame", frame_image.transpose(2, 0, 1)
                                                                                  if np.asarray(frame_image).ndim == 3
                                                                                  else frame_image))}
    if flat is not None:
        maps["person"] = torch.as_tensor(np.asarray(person, np.float32))[None]
    # row bands of ~1 megapixel: the per-pixel float maps (coordinates, warps, blend) of a phone-size photo never
    # exist whole (bounded memory); every pixel is computed exactly as in one pass
    band = max(1, band_pixels // max(1, x1 - x0))
    for r0 in range(y0, y1, band):
        r1 = min(y1, r0 + band)
        fy = (np.arange(r0, r1) + 0.5) / ky - 0.5 + transform.offset_y
        # the sampling grid is separable: each column's x and each row's y computed once (float64, as a meshgrid
        # would), then broadcast; gx, gy are views, not full-size arrays
        gx, gy = np.broadcast_to(fx[None, :], (r1 - r0, fx.size)), np.broadcast_to(fy[:, None], (r1 - r0, fx.size))
        grid = torch.stack([torch.from_numpy((fx + 0.5) / fw * 2 - 1).float().expand(r1 - r0, -1),
                            torch.from_numpy((fy + 0.5) / fh * 2 - 1).float()[:, None].expand(-1, fx.size)], -1)[None]

        def sample(key: str, g: torch.Tensor = grid) -> torch.Tensor:
            return F.grid_sample(maps[key], g, mode="bilinear", padding_mode="border", align_corners=False)[0]

        def detail(a0: int, a1: int, b0: int, b1: int, gx: np.ndarray = gx, gy: np.ndarray = gy,
                   grid: torch.Tensor = grid) -> torch.Tensor:
            """The result on rows a0:a1, columns b0:b1 of the band, before the backdrop."""
            grid = grid[:, a0:a1, b0:b1]
            res = sample("frame", grid)
            m = sample("blend", grid).clamp(0, 1)
            box = _nonzero_box(m[0])  # picture + 0 * (...) is the picture: the photo is warped where m > 0 only
            if box is None:
                return res
            c0, c1, e0, e1 = box
            sub = grid[:, c0:c1, e0:e1]
            d = sample("flow", sub)  # (2, rh, rw) normalised offsets
            sx = gx[a0 + c0:a0 + c1, b0 + e0:b0 + e1] + d[0].numpy() * fw / 2  # source frame coordinates
            sy = gy[a0 + c0:a0 + c1, b0 + e0:b0 + e1] + d[1].numpy() * fh / 2
            cx = (sx - transform.offset_x + 0.5) * kx - 0.5  # source photo coordinates
            cy = (sy - transform.offset_y + 0.5) * ky - 0.5
            del d, sx, sy
            photo_grid = torch.from_numpy(np.stack([(cx + 0.5) / cw * 2 - 1, (cy + 0.5) / ch * 2 - 1],
                                                   -1)).float()[None]
            del cx, cy
            warp_full = F.grid_sample(photo, photo_grid, mode="bilinear", padding_mode="border",
                                      align_corners=False)[0]  # (3, rh, rw) in 0..255
            warp_low = (sample("warped", sub) + 1.0) * 127.5
            # the model's picture and its own warp upsampled alike (bilinear), so that where m = 1 and the
            # picture is the warp, the result is exactly the photo warped at full resolution
            res[:, c0:c1, e0:e1] += m[:, c0:c1, e0:e1] * (warp_full - warp_low)
            return res

        rh, rw = gx.shape
        if flat is None:
            res = detail(0, rh, 0, rw)
        else:  # backdrop + 0 * (...) is the backdrop: the result is computed on the target person's box only
            res = flat.expand(3, rh, rw).clone()
            keep = person_mask(sample("person"))
            box = _nonzero_box(keep[0])
            if box is not None:
                a0, a1, b0, b1 = box
                res[:, a0:a1, b0:b1] = flat + keep[:, a0:a1, b0:b1] * (detail(a0, a1, b0, b1) - flat)
        del gx, gy
        out[r0:r1, x0:x1] = np.clip(np.rint(res.permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)
    return out
