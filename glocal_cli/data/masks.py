"""Inpainting masks: irregular free-form holes and semantic (whole-class) holes.

Convention everywhere in glocal: a mask is ``True`` (or ``1.0``) where the source is **missing**
(the hole the network fills) and ``False`` (``0.0``) where it is kept. Mask files on disk use the
same convention: white = hole.

* :func:`irregular_mask` draws free-form brush strokes (random walks of thick line segments with
  round joints) and then adjusts the hole to an exact pixel count drawn uniformly inside an
  area-ratio bin. The bins are those of the irregular-mask benchmark of Liu et al. 2018
  ("Image Inpainting for Irregular Holes Using Partial Convolutions"): hole-to-image ratios
  (0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]. Every mask is reproducible from its seed.
* :func:`semantic_mask` removes whole parsing classes (``hair``, ``upper`` ...), optionally grown
  by a few pixels so that the class border goes too.
* Torch helpers build ``(B, 1, H, W)`` float batches for training and the batched pipelines.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from glocal_cli.data.parsing import CLASS_NAMES
from glocal_cli.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "CLASS_NAMES",
    "MASK_RATIO_BINS",
    "apply_mask",
    "irregular_mask",
    "irregular_masks_torch",
    "load_mask",
    "mask_ratio",
    "ratio_bin_of",
    "resolve_class_ids",
    "sample_training_mask",
    "semantic_mask",
    "semantic_masks_torch",
]

MASK_RATIO_BINS: tuple[tuple[float, float], ...] = (
    (0.01, 0.1),
    (0.1, 0.2),
    (0.2, 0.3),
    (0.3, 0.4),
    (0.4, 0.5),
    (0.5, 0.6),
)
"""Hole-to-image area ratio bins ``(lo, hi]`` of Liu et al. 2018's irregular-mask benchmark."""

_CLASS_ALIASES = {
    "bg": "background", "hat": "hair", "upper-clothes": "upper", "upper_clothes": "upper", "top": "upper",
    "coat": "upper", "lower-clothes": "lower", "lower_clothes": "lower", "pants": "lower", "skirt": "lower",
    "dress": "lower", "shoe": "shoes", "arm": "arms", "leg": "legs", "socks": "legs", "skin": "arms",
}

RngLike = np.random.Generator | int | None


def _rng(rng: RngLike) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _bin_bounds(ratio_bin: int | tuple[float, float] | Sequence[float] | None, rng: np.random.Generator):
    if ratio_bin is None:
        return MASK_RATIO_BINS[int(rng.integers(len(MASK_RATIO_BINS)))]
    if isinstance(ratio_bin, (int, np.integer)) and not isinstance(ratio_bin, bool):
        if not 0 <= int(ratio_bin) < len(MASK_RATIO_BINS):
            raise ValueError(f"ratio_bin {ratio_bin} out of range 0..{len(MASK_RATIO_BINS) - 1}")
        return MASK_RATIO_BINS[int(ratio_bin)]
    lo, hi = (float(v) for v in ratio_bin)  # type: ignore[union-attr]
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"ratio range ({lo}, {hi}) must satisfy 0 <= lo < hi <= 1")
    return lo, hi


def mask_ratio(mask: Any) -> float:
    """Fraction of hole pixels of a mask (numpy or torch, any shape)."""
    arr = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    return float((arr > 0.5).mean()) if arr.size else 0.0


def ratio_bin_of(ratio: float) -> int | None:
    """Index of the Liu et al. bin ``(lo, hi]`` holding ``ratio``, ``None`` outside all bins."""
    for i, (lo, hi) in enumerate(MASK_RATIO_BINS):
        if lo < ratio <= hi:
            return i
    return None


def _draw_stroke(canvas: np.ndarray, rng: np.random.Generator, scale: float) -> None:
    """One free-form brush stroke: a random walk of 4-12 thick segments with round joints."""
    import cv2

    h, w = canvas.shape
    side = max(h, w)
    width_px = max(1, int(round(rng.uniform(0.04, 0.12) * min(h, w) * scale)))
    x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
    angle = float(rng.uniform(0, 2 * math.pi))
    for _ in range(int(rng.integers(4, 13))):
        angle += float(rng.uniform(-math.pi / 2.5, math.pi / 2.5))
        length = rng.uniform(0.05, 0.25) * side
        nx, ny = x + length * math.cos(angle), y + length * math.sin(angle)
        if not (0 <= nx < w and 0 <= ny < h):  # bounce off the border instead of running along it
            angle += math.pi
            nx, ny = x + length * math.cos(angle), y + length * math.sin(angle)
        nx, ny = float(np.clip(nx, 0, w - 1)), float(np.clip(ny, 0, h - 1))
        cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1, width_px, lineType=cv2.LINE_8)
        cv2.circle(canvas, (int(nx), int(ny)), max(1, width_px // 2), 1, -1)
        x, y = nx, ny


def _adjust_to_count(mask: np.ndarray, target: int, rng: np.random.Generator) -> np.ndarray:
    """Grow (pixels nearest the hole first) or shrink (pixels nearest the border first) to ``target``."""
    import cv2

    count = int(mask.sum())
    if count == target:
        return mask
    jitter = rng.random(mask.shape, dtype=np.float32) * 0.5  # breaks ties without visible noise
    if count < target:
        dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3) + jitter
        dist[mask] = np.inf
        order = np.argsort(dist, axis=None, kind="stable")[: target - count]
        out = mask.copy().reshape(-1)
        out[order] = True
        return out.reshape(mask.shape)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3) + jitter
    dist[~mask] = np.inf
    order = np.argsort(dist, axis=None, kind="stable")[: count - target]
    out = mask.copy().reshape(-1)
    out[order] = False
    return out.reshape(mask.shape)


def irregular_mask(
    height: int,
    width: int,
    ratio_bin: int | tuple[float, float] | None = None,
    rng: RngLike = None,
) -> np.ndarray:
    """A free-form irregular hole mask, ``bool (height, width)``, ``True`` = hole.

    ``ratio_bin``: an index into :data:`MASK_RATIO_BINS` (0 = 1-10% ... 5 = 50-60%), an explicit
    ``(lo, hi)`` ratio range, or ``None`` for a bin drawn at random. The hole covers exactly
    ``round(u * H * W)`` pixels, ``u`` uniform in the range (clamped so that the ratio lies in
    ``(lo, hi]``). ``rng``: a ``numpy.random.Generator`` or an int seed; the same seed gives the
    same mask.
    """
    if height < 1 or width < 1:
        raise ValueError(f"mask size {height}x{width} must be positive")
    gen = _rng(rng)
    lo, hi = _bin_bounds(ratio_bin, gen)
    n = height * width
    low_count = math.floor(lo * n) + 1
    high_count = math.floor(hi * n + 1e-9)
    if low_count > high_count:  # a frame too small for this bin: take the nearest count
        low_count = high_count = max(0, min(n, round((lo + hi) / 2 * n)))
    target = int(gen.integers(low_count, high_count + 1))
    canvas = np.zeros((height, width), np.uint8)
    # strokes thick enough to reach the target in a few of them; the exact count is set afterwards
    scale = 0.6 + 2.0 * target / n
    for _ in range(200):
        if int(canvas.sum()) >= 0.85 * target:
            break
        _draw_stroke(canvas, gen, scale)
    return _adjust_to_count(canvas.astype(bool), target, gen)


def resolve_class_ids(classes: Iterable[int | str] | str) -> list[int]:
    """Class ids from ids or names (``"hair,upper"``, ``["face", 3]``); unknown names raise ``InputError``."""
    if isinstance(classes, str):
        classes = [c for c in classes.split(",") if c.strip()]
    out: list[int] = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            cid = int(c)
        else:
            key = str(c).strip().lower()
            if key.isdigit():
                cid = int(key)
            else:
                key = _CLASS_ALIASES.get(key, key)
                if key not in CLASS_NAMES:
                    import difflib

                    close = difflib.get_close_matches(key, CLASS_NAMES, n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else ""
                    raise InputError(f"unknown parsing class {c!r} (classes: {', '.join(CLASS_NAMES)}){hint}")
                cid = CLASS_NAMES.index(key)
        if not 0 <= cid < len(CLASS_NAMES):
            raise InputError(f"parsing class id {cid} out of range 0..{len(CLASS_NAMES) - 1}")
        if cid not in out:
            out.append(cid)
    if not out:
        raise InputError("no parsing classes given for a semantic mask (e.g. --classes hair,upper)")
    return out


def semantic_mask(parsing: Any, class_ids: Iterable[int | str] | str, dilate: int = 0) -> np.ndarray:
    """``bool (H, W)`` hole covering the given classes of a parsing.

    ``parsing``: an ``(H, W)`` label map, or a ``(C, H, W)`` one-hot / probability map (argmax is
    taken). ``class_ids``: ids or names (see :func:`resolve_class_ids`). ``dilate``: grow the hole
    by this many pixels (removes the class border too).
    """
    arr = parsing.detach().cpu().numpy() if hasattr(parsing, "detach") else np.asarray(parsing)
    if arr.ndim == 3:
        arr = arr.argmax(axis=0)
    if arr.ndim != 2:
        raise ValueError(f"parsing must be (H, W) labels or (C, H, W) one-hot, got shape {arr.shape}")
    mask = np.isin(arr, resolve_class_ids(class_ids))
    if dilate > 0 and mask.any():
        import cv2

        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        mask = cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
    return mask


def sample_training_mask(
    height: int,
    width: int,
    rng: RngLike = None,
    parsing: Any = None,
    semantic_prob: float = 0.3,
    ratio_bins: Sequence[int] | None = None,
) -> np.ndarray:
    """One random training hole: semantic (1-2 random non-background classes present in ``parsing``)
    with probability ``semantic_prob`` when a parsing is given, else irregular in a random bin of
    ``ratio_bins`` (default: all six). ``bool (H, W)``; an empty semantic draw falls back to irregular.
    """
    gen = _rng(rng)
    if parsing is not None and gen.random() < semantic_prob:
        arr = parsing.detach().cpu().numpy() if hasattr(parsing, "detach") else np.asarray(parsing)
        labels = arr.argmax(axis=0) if arr.ndim == 3 else arr
        present = [int(c) for c in np.unique(labels) if 0 < int(c) < len(CLASS_NAMES)]
        if present:
            k = int(gen.integers(1, min(2, len(present)) + 1))
            chosen = [int(c) for c in gen.choice(present, size=k, replace=False)]
            mask = semantic_mask(labels, chosen)
            if mask.shape == (height, width) and mask.any():
                return mask
    bins = list(ratio_bins) if ratio_bins is not None else list(range(len(MASK_RATIO_BINS)))
    return irregular_mask(height, width, int(gen.choice(bins)), gen)


# ------------------------------------------------------------------------------------ torch batches


def irregular_masks_torch(
    batch: int,
    height: int,
    width: int,
    ratio_bin: int | tuple[float, float] | None = None,
    seed: int | None = None,
    device: Any = "cpu",
) -> torch.Tensor:
    """``float32 (B, 1, H, W)`` irregular masks (1 = hole); mask ``i`` uses seed ``seed + i`` when a
    seed is given, so batches are reproducible and independent of the batch size."""
    import torch

    base = np.random.default_rng() if seed is None else None
    masks = [
        irregular_mask(height, width, ratio_bin, base if seed is None else seed + i) for i in range(batch)
    ]
    return torch.from_numpy(np.stack(masks)[:, None].astype(np.float32)).to(device)


def semantic_masks_torch(parsing: torch.Tensor, class_ids: Iterable[int | str] | str) -> torch.Tensor:
    """``(B, 1, H, W)`` masks (1 = hole) from ``(B, H, W)`` labels or ``(B, C, H, W)`` one-hot/probabilities,
    on the parsing's device, in float32."""
    import torch

    labels = parsing.argmax(dim=1) if parsing.dim() == 4 else parsing
    if labels.dim() != 3:
        raise ValueError(f"parsing must be (B, H, W) or (B, C, H, W), got shape {tuple(parsing.shape)}")
    ids = torch.tensor(resolve_class_ids(class_ids), device=labels.device)
    return torch.isin(labels.long(), ids)[:, None].to(torch.float32)


def apply_mask(image: Any, mask: Any, fill: float = 0.0) -> Any:
    """``image * (1 - mask) + fill * mask`` for numpy or torch; ``mask`` broadcasts (1 = hole).

    A numpy ``uint8`` ``(H, W, 3)`` image with an ``(H, W)`` mask keeps its dtype (``fill`` is then a
    0-255 grey level).
    """
    if hasattr(image, "detach"):
        m = mask.to(image.dtype) if hasattr(mask, "to") else mask
        return image * (1 - m) + fill * m
    img = np.asarray(image)
    m = np.asarray(mask).astype(bool)
    if img.ndim == 3 and m.ndim == 2:
        m = m[:, :, None] if img.shape[:2] == m.shape else m[None]
    out = img.copy()
    np.copyto(out, np.asarray(fill, dtype=img.dtype), where=np.broadcast_to(m, img.shape))
    return out


# ------------------------------------------------------------------------------------ mask files


def load_mask(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    invert: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Read a mask image (white = hole) as ``bool (H, W)``; returns ``(mask, warnings)``.

    Colour / alpha / 16-bit images are reduced to one channel (alpha when the colour channels are
    constant and the alpha is not). A mask that is not binary is thresholded at half range (warned).
    With ``size = (H, W)`` a mask of another size is resized with nearest-neighbour (warned).
    ``invert`` flips the convention (black = hole). Unreadable files raise :class:`InputError`.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    notes: list[str] = []
    try:
        with Image.open(p) as im:
            im.load()
            arr = np.asarray(im)
            mode = im.mode
    except FileNotFoundError:
        raise InputError(f"{p}: mask file not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{p}: cannot read mask image ({exc.__class__.__name__})") from None
    if mode == "P":
        arr = np.asarray(Image.open(p).convert("L"))
    arr = arr.astype(np.float64)
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        peak = 65535.0 if arr.max() > 255 else 255.0
    elif mode == "F":
        peak = 1.0 if arr.max() <= 1.0 else 255.0
    elif mode == "1":
        peak = 1.0
    else:
        peak = 255.0
    if arr.ndim == 3:
        colour = arr[..., :3].mean(axis=2) if arr.shape[2] >= 3 else arr[..., 0]
        if arr.shape[2] in (2, 4) and np.ptp(colour) == 0 and np.ptp(arr[..., -1]) > 0:
            colour = arr[..., -1]
        arr = colour
    norm = arr / peak
    if not np.isin(norm, (0.0, 1.0)).all():
        notes.append(f"{p}: mask is not binary; thresholded at 0.5")
    mask = norm >= 0.5
    if invert:
        mask = ~mask
    if size is not None and mask.shape != tuple(size):
        import cv2

        notes.append(f"{p}: mask is {mask.shape[0]}x{mask.shape[1]}, resized to {size[0]}x{size[1]}")
        mask = cv2.resize(mask.astype(np.uint8), (int(size[1]), int(size[0])),
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask, notes
