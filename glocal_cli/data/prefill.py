"""Classical prefill of inpainting holes: the starting point the network refines (``model.inpaint_prefill``).

OpenCV's Telea inpainting (fast marching, 2004; ``cv2.inpaint(..., cv2.INPAINT_TELEA)``) continues the
colours and edges around a hole into it. On real photos it beats a network trained for minutes on a CPU
(``docs/results.md``), but it blurs texture deep inside large holes. With ``model.inpaint_prefill`` the
inpainting network sees the prefilled photo instead of a zeroed hole and its pixel blend starts from it
(the copy prior is 1 in the hole too), so what it learns is the correction (``docs/design.md``).

Telea mixes whatever surrounds the hole: a stroke across a shirt's edge is filled with a blend of shirt, skin
and background. :func:`semantic_fill` uses the person's parsing instead (the semantic network's class
probabilities, estimated without looking under the hole): each class's part of the hole is filled by Telea from
that class's known pixels only, and the per-class fills are mixed by the class probabilities
(``infer.inpaint_fill: semantic``, the default). Both are smooth: stripes and prints stop at the hole.
:func:`texture_fill` adds the detail of an exemplar synthesis (patches copied from known pixels of the same class,
``glocal_cli.data.patchmatch``) near the hole's rim (``infer.inpaint_fill: texture``, opt-in).

Images here are ``uint8 (H, W, 3)`` or tensors in [-1, 1]; holes are ``True``/1 where the pixel is missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["SEMANTIC_MAX_PIXELS", "SEMANTIC_RADIUS", "SEMANTIC_SHARPEN", "TELEA_RADIUS", "TEXTURE_MAX_PIXELS", "TEXTURE_SIGMA",
           "TEXTURE_TAPER", "TEXTURE_WEIGHT", "prefill_tensor", "semantic_fill", "telea_fill", "texture_fill"]

TELEA_RADIUS = 5.0
"""Neighbourhood radius (pixels) of the Telea fill: the reference scores in ``../shared/data`` use 5."""


def telea_fill(image: np.ndarray, hole: np.ndarray, radius: float = TELEA_RADIUS) -> np.ndarray:
    """``image`` (``uint8 (H, W, 3)``) with the ``hole`` (``bool (H, W)``) filled by Telea's method; known
    pixels are returned unchanged. A hole covering every pixel is filled with mid-grey (nothing to continue)."""
    import cv2

    img = np.ascontiguousarray(image, dtype=np.uint8)
    hole = np.asarray(hole, bool)
    if hole.shape != img.shape[:2]:
        raise ValueError(f"hole is {hole.shape[0]}x{hole.shape[1]}, the image {img.shape[0]}x{img.shape[1]}")
    if not hole.any():
        return img.copy()
    if hole.all():
        return np.full_like(img, 128)
    out = cv2.inpaint(img, hole.astype(np.uint8) * 255, float(radius), cv2.INPAINT_TELEA)
    out[~hole] = img[~hole]
    return out


SEMANTIC_RADIUS = 3.0
"""Telea's radius inside :func:`semantic_fill` (each class continues from its own pixels; 3 beat 5 on the CCP
validation photos, ``docs/results.md``)."""
SEMANTIC_SHARPEN = 2.0
"""Exponent on the class probabilities before they mix the per-class fills (``p**2``, renormalised): a pixel the
network is fairly sure of takes its class's fill nearly alone. Chosen on the CCP validation photos (best SSIM,
within 0.1 dB of the best PSNR; ``docs/results.md``)."""
SEMANTIC_MAX_PIXELS = 2_000_000
""":func:`semantic_fill` works on the hole's window at most this many pixels large; a larger window is filled
per class at a reduced size and that fill's difference to Telea's is added, resized, to Telea's full-size fill."""


def _hole_window(hole: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the hole's box grown by a quarter of its size, at least ``margin`` pixels."""
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    grow = max(margin, round(0.25 * max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)))
    return (max(0, int(ys.min()) - grow), min(h, int(ys.max()) + 1 + grow),
            max(0, int(xs.min()) - grow), min(w, int(xs.max()) + 1 + grow))


def _window_probs(probs: np.ndarray, size: tuple[int, int], window: tuple[int, int, int, int],
                  out_size: tuple[int, int]) -> np.ndarray:
    """``float32 (K, sh, sw)``: the probabilities (covering an image of ``size``) over ``window`` ``(y0, y1, x0,
    x1)`` sampled at the pixel centres of an ``out_size`` ``(sh, sw)`` grid (bilinear, clipped at 0)."""
    import cv2

    (h, w), (y0, y1, x0, x1), (sh, sw) = size, window, out_size
    k, ph, pw = probs.shape
    gx = ((x0 + (np.arange(sw, dtype=np.float32) + 0.5) * (x1 - x0) / sw) * pw / w - 0.5).astype(np.float32)
    gy = ((y0 + (np.arange(sh, dtype=np.float32) + 0.5) * (y1 - y0) / sh) * ph / h - 0.5).astype(np.float32)
    mx, my = np.meshgrid(gx, gy)
    p = np.stack([cv2.remap(probs[c], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for c in range(k)])
    return np.clip(p, 0, None)


def semantic_fill(image: np.ndarray, hole: np.ndarray, probs: np.ndarray, radius: float = SEMANTIC_RADIUS,
                  sharpen: float = SEMANTIC_SHARPEN, min_known: int = 16, min_prob: float = 0.02,
                  max_pixels: int = SEMANTIC_MAX_PIXELS) -> np.ndarray:
    """``image`` (``uint8 (H, W, 3)``) with the ``hole`` (``bool (H, W)``) filled class by class.

    ``probs``: ``float (K, h, w)`` class probabilities covering the whole image at any resolution (resized
    bilinearly here, only over the hole's window). Known pixels take their most probable class. In the window
    around the hole (the hole's box grown by a quarter of its size, at least ``2 * radius + 2`` pixels), each
    class with at least ``min_known`` known pixels there and a probability of at least ``min_prob`` somewhere in
    the hole is filled by Telea from its own known pixels; a hole pixel is the mix of these fills weighted by its
    class probabilities, and the weight of classes that cannot be filled (too few known pixels: a garment the hole
    removes whole) goes to the plain Telea fill. The mixing weights are the probabilities raised to ``sharpen``
    and renormalised. Known pixels are returned unchanged; with one class this is :func:`telea_fill`."""
    import cv2

    img = np.ascontiguousarray(image, dtype=np.uint8)
    hole = np.asarray(hole, bool)
    probs = np.asarray(probs, np.float32)
    if hole.shape != img.shape[:2]:
        raise ValueError(f"hole is {hole.shape[0]}x{hole.shape[1]}, the image {img.shape[0]}x{img.shape[1]}")
    if probs.ndim != 3:
        raise ValueError(f"probs must be (K, h, w), got shape {probs.shape}")
    base = telea_fill(img, hole, radius)
    if not hole.any() or hole.all():
        return base
    h, w = hole.shape
    y0, y1, x0, x1 = _hole_window(hole, int(2 * radius + 2))
    wh, ww = y1 - y0, x1 - x0
    shrink = min(1.0, (max_pixels / (wh * ww)) ** 0.5)
    sh, sw = max(1, round(wh * shrink)), max(1, round(ww * shrink))
    win_img, win_hole, win_base = img[y0:y1, x0:x1], hole[y0:y1, x0:x1], base[y0:y1, x0:x1]
    if shrink < 1.0:
        win_img = cv2.resize(win_img, (sw, sh), interpolation=cv2.INTER_AREA)
        win_hole = cv2.resize(win_hole.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST) > 0
        win_base = telea_fill(win_img, win_hole, radius)
    p = _window_probs(probs, (h, w), (y0, y1, x0, x1), (sh, sw))
    k = p.shape[0]
    labels = p.argmax(0)
    p = p**sharpen
    p /= np.maximum(p.sum(0, keepdims=True), 1e-12)
    acc = np.zeros((int(win_hole.sum()), 3), np.float64)
    used = np.zeros(acc.shape[0], np.float64)
    for c in range(k):
        pc = p[c][win_hole]
        known_c = ~win_hole & (labels == c)
        if pc.max() < min_prob or int(known_c.sum()) < min_known:
            continue
        fill = cv2.inpaint(win_img, (~known_c).astype(np.uint8) * 255, float(radius), cv2.INPAINT_TELEA)
        acc += pc[:, None] * fill[win_hole]
        used += pc
    mixed = acc + (1.0 - used)[:, None] * win_base[win_hole]  # what no class could fill: the plain Telea fill
    out = base.copy()
    if shrink == 1.0:
        out[y0:y1, x0:x1][win_hole] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
        return out
    delta = np.zeros((sh, sw, 3), np.float32)
    delta[win_hole] = mixed - win_base[win_hole]
    delta = cv2.resize(delta, (ww, wh), interpolation=cv2.INTER_LINEAR)
    region = out[y0:y1, x0:x1]
    hw = hole[y0:y1, x0:x1]
    region[hw] = np.clip(np.rint(region[hw].astype(np.float32) + delta[hw]), 0, 255).astype(np.uint8)
    return out


TEXTURE_WEIGHT = 1.0
"""Weight of the exemplar synthesis's detail added to the semantic fill at the hole's rim in :func:`texture_fill`.
Chosen with :data:`TEXTURE_TAPER` (and, since, :data:`TEXTURE_CLIP`) on the 45 CCP validation photos at 128x88 and at
256x176 (``data/ccp-256``): the most detail at which no score falls below the semantic fill's (``docs/results.md``,
"Texture fill" and "Texture fill with the class's own texture level"; 0.5 before the clip)."""
TEXTURE_TAPER = 8.0
"""Pixels (at the synthesis's working size) over which :func:`texture_fill`'s detail fades to nothing into the
hole: the copied detail agrees with the truth near the known pixels and not deeper (measured, ``docs/results.md``)."""
TEXTURE_SIGMA = 2.0
"""Gaussian sigma (pixels at the working size) that splits the synthesis into its smooth part (dropped) and its
detail (added to the semantic fill) in :func:`texture_fill`."""
TEXTURE_MAX_PIXELS = 1_000_000
""":func:`texture_fill` synthesises the hole's window at most this many pixels large; the detail of a larger
window is synthesised at a reduced size and resized to the photo's."""
TEXTURE_CLIP = 1.0
"""In :func:`texture_fill` the detail added to a class is clipped to this many times the class's own texture level
next to the hole (the root of the median local mean square of the known pixels' detail, taken on the class's
pixels at least 3 px inside it within :data:`TEXTURE_RING` px of the hole): a fill never adds more texture than
the class shows, so a smooth class (skin, a plain wall) gets none of the dark or bright patches a stray match
brings. Chosen on the 45 CCP validation photos at 128x88 and 256x176 (SSIM; 0.75, 1, 1.5, 2.5 and no clip
measured, ``docs/results.md``, "Texture fill with the class's own texture level")."""
TEXTURE_RING = 8
"""Width (pixels at the working size) of the ring of known pixels around the hole whose texture level bounds
:func:`texture_fill`'s detail (:data:`TEXTURE_CLIP`)."""


def _class_blur(img: np.ndarray, labels: np.ndarray, classes: np.ndarray, sigma: float) -> np.ndarray:
    """``img`` blurred by a Gaussian of ``sigma`` within each of ``classes`` (pixels of other labels neither give
    nor take; they stay 0)."""
    import cv2

    low = np.zeros_like(img)
    for c in classes:
        m = (labels == c).astype(np.float32)
        num = cv2.GaussianBlur(img * m[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(m, (0, 0), sigma)
        sel = labels == c
        low[sel] = num[sel] / np.maximum(den[sel], 1e-6)[:, None]
    return low


def _texture_levels(img: np.ndarray, hole: np.ndarray, labels: np.ndarray, classes: np.ndarray, sigma: float,
                    ring: int, inset: int = 3, min_pixels: int = 32) -> dict[int, float]:
    """Each class's texture level next to the hole (:data:`TEXTURE_CLIP`): 0 where fewer than ``min_pixels`` of
    its known pixels lie ``inset`` px inside it within ``ring`` px of the hole."""
    import cv2

    known_labels = np.where(hole, -1, labels)
    detail = img - _class_blur(np.where(hole[..., None], 0.0, img), known_labels, classes, sigma)
    local = cv2.blur((detail**2).mean(-1), (5, 5))
    k = 2 * ring + 1
    band = (cv2.dilate(hole.astype(np.uint8), np.ones((k, k), np.uint8)) > 0) & ~hole
    square = np.ones((2 * inset + 1, 2 * inset + 1), np.uint8)
    levels = {}
    for c in classes:
        core = band & (cv2.erode((known_labels == c).astype(np.uint8), square) > 0)
        levels[int(c)] = float(np.sqrt(np.median(local[core]))) if core.sum() >= min_pixels else 0.0
    return levels


def texture_fill(image: np.ndarray, hole: np.ndarray, probs: np.ndarray, *, weight: float = TEXTURE_WEIGHT,
                 sigma: float = TEXTURE_SIGMA, max_pixels: int = TEXTURE_MAX_PIXELS, seed: int = 0,
                 taper: float | None = TEXTURE_TAPER, clip: float | None = TEXTURE_CLIP, ring: int = TEXTURE_RING,
                 smooth: np.ndarray | None = None, **synthesis: Any) -> np.ndarray:
    """``image`` (``uint8 (H, W, 3)``) with the ``hole`` (``bool (H, W)``) filled by the semantic fill plus the
    detail of an exemplar texture synthesis (:func:`glocal_cli.data.patchmatch.synthesize_texture`).

    ``probs`` as in :func:`semantic_fill` (its fill is the start, ``smooth`` when given). Each hole pixel takes its
    most probable class; the hole's window (at most ``max_pixels``) is re-synthesised from known patches of the
    same class, coarse to fine, starting from the semantic fill, and ``weight`` times the synthesis's detail
    (the synthesis minus its Gaussian blur of ``sigma`` taken within each class) is added to the semantic fill,
    fading to nothing over ``taper`` pixels into the hole (None: the same weight everywhere), each class's detail
    clipped to ``clip`` times its own texture level in the ``ring`` px of known pixels around the hole (None: not
    clipped; :data:`TEXTURE_CLIP`). Classes with too few known patches keep the semantic fill; a window larger
    than ``max_pixels`` is synthesised at a reduced size and its detail resized. ``synthesis``: options of :func:`~glocal_cli.data.patchmatch.
    synthesize_texture` (``patch``, ``levels``, ...). Known pixels are returned unchanged; deterministic given
    ``seed``."""
    import cv2

    from glocal_cli.data.patchmatch import synthesize_texture

    img = np.ascontiguousarray(image, dtype=np.uint8)
    hole = np.asarray(hole, bool)
    probs = np.asarray(probs, np.float32)
    base = semantic_fill(img, hole, probs) if smooth is None else np.asarray(smooth, np.uint8)
    if not hole.any() or hole.all() or weight == 0:
        return base
    h, w = hole.shape
    y0, y1, x0, x1 = _hole_window(hole, 16)
    wh, ww = y1 - y0, x1 - x0
    shrink = min(1.0, (max_pixels / (wh * ww)) ** 0.5)
    sh, sw = max(1, round(wh * shrink)), max(1, round(ww * shrink))
    win_img = img[y0:y1, x0:x1].astype(np.float32)
    win_hole = hole[y0:y1, x0:x1]
    win_base = base[y0:y1, x0:x1].astype(np.float32)
    if shrink < 1.0:
        win_img = cv2.resize(win_img, (sw, sh), interpolation=cv2.INTER_AREA)
        win_base = cv2.resize(win_base, (sw, sh), interpolation=cv2.INTER_AREA)
        win_hole = cv2.resize(win_hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
    labels = _window_probs(probs, (h, w), (y0, y1, x0, x1), (sh, sw)).argmax(0)
    synth, textured = synthesize_texture(win_img, win_hole, labels, win_base, seed=seed, **synthesis)
    # the detail: the synthesis minus its smooth part, blurred within each class (a class edge is not sharpened:
    # where the estimated edge is off, sharpening it costs more than the texture gains, docs/design.md)
    classes = np.unique(labels[win_hole])
    add = synth - _class_blur(synth, labels, classes, sigma)
    if clip is not None:  # never more texture than the class shows next to the hole
        for c, level in _texture_levels(win_img, win_hole, labels, classes, sigma, ring).items():
            sel = labels == c
            add[sel] = np.clip(add[sel], -clip * level, clip * level)
    gain = weight * textured.astype(np.float32)
    if taper:  # the detail fades out over ``taper`` pixels into the hole (deeper, the phase is a guess)
        depth = cv2.distanceTransform(win_hole.astype(np.uint8), cv2.DIST_L2, 3)
        gain *= np.clip(1.0 - (depth - 1.0) / taper, 0.0, 1.0)
    add *= gain[..., None]
    if shrink < 1.0:
        add = cv2.resize(add, (ww, wh), interpolation=cv2.INTER_LINEAR)
    out = base.copy()
    region, hw = out[y0:y1, x0:x1], hole[y0:y1, x0:x1]
    region[hw] = np.clip(np.rint(region[hw].astype(np.float32) + add[hw]), 0, 255).astype(np.uint8)
    return out


def prefill_tensor(image: torch.Tensor, mask: torch.Tensor, radius: float = TELEA_RADIUS,
                   probs: torch.Tensor | None = None, texture: bool = False,
                   texture_options: dict[str, Any] | None = None) -> torch.Tensor:
    """Telea-prefilled images ``(B, 3, H, W)`` (or one ``(3, H, W)``) in [-1, 1], from images in [-1, 1] and
    masks ``(B, 1, H, W)`` (``(1, H, W)``), 1 = hole; with class probabilities ``probs`` ``(B, K, h, w)``
    (``(K, h, w)``) :func:`semantic_fill` instead, or with ``texture`` as well :func:`texture_fill` (with
    ``texture_options``, e.g. ``weight`` and ``taper``). Runs on the CPU (OpenCV); the result is on the input's
    device and dtype. Known pixels keep their exact value; hole pixels are quantised to 8 bits, as a photo's."""
    single = image.dim() == 3
    img = image[None] if single else image
    m = mask[None] if single else mask
    u8 = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    holes = (m.detach().float().cpu()[:, 0] > 0.5).numpy()
    if probs is None:
        filled = np.stack([telea_fill(u8[i], holes[i], radius) for i in range(u8.shape[0])])
    else:
        pr = (probs[None] if single else probs).detach().float().cpu().numpy()
        fills = [semantic_fill(u8[i], holes[i], pr[i], radius) for i in range(u8.shape[0])]
        if texture:
            fills = [texture_fill(u8[i], holes[i], pr[i], smooth=f, **(texture_options or {}))
                     for i, f in enumerate(fills)]
        filled = np.stack(fills)
    out = torch.from_numpy(filled).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(image.device, image.dtype)
    keep = (m <= 0.5).to(image.dtype)
    out = out * (1 - keep) + img * keep
    return out[0] if single else out
