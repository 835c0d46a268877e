"""Classical prefill of inpainting holes: the starting point the network refines (``model.inpaint_prefill``).

OpenCV's Telea inpainting (fast marching, 2004; ``cv2.inpaint(..., cv2.INPAINT_TELEA)``) continues the
colours and edges around a hole into it. On real photos it beats a network trained for minutes on a CPU
(``docs/results.md``), but it blurs texture deep inside large holes. With ``model.inpaint_prefill`` the
inpainting network sees the prefilled photo instead of a zeroed hole and its pixel blend starts from it
(the copy prior is 1 in the hole too), so what it learns is the correction (``docs/design.md``).

Images here are ``uint8 (H, W, 3)`` or tensors in [-1, 1]; holes are ``True``/1 where the pixel is missing.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["TELEA_RADIUS", "prefill_tensor", "telea_fill"]

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


def prefill_tensor(image: torch.Tensor, mask: torch.Tensor, radius: float = TELEA_RADIUS) -> torch.Tensor:
    """Telea-prefilled images ``(B, 3, H, W)`` (or one ``(3, H, W)``) in [-1, 1], from images in [-1, 1] and
    masks ``(B, 1, H, W)`` (``(1, H, W)``), 1 = hole. Runs on the CPU (OpenCV); the result is on the input's
    device and dtype. Known pixels keep their exact value; hole pixels are quantised to 8 bits, as a photo's."""
    single = image.dim() == 3
    img = image[None] if single else image
    m = mask[None] if single else mask
    u8 = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    holes = (m.detach().float().cpu()[:, 0] > 0.5).numpy()
    filled = np.stack([telea_fill(u8[i], holes[i], radius) for i in range(u8.shape[0])])
    out = torch.from_numpy(filled).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(image.device, image.dtype)
    keep = (m <= 0.5).to(image.dtype)
    out = out * (1 - keep) + img * keep
    return out[0] if single else out
