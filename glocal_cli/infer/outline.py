"""The estimated parsing's person outline snapped to the photo's edges (``infer.parsing_refine``).

The semantic network draws the person's outline at the frame's resolution from what it learned; the photo itself
says where the edges are. A colour guided filter (He, Sun and Tang, *Guided Image Filtering*, ECCV 2010) of the
person probability ``1 - p(background)``, guided by the framed photo, moves the outline onto them: locally the
filtered map is an affine function of the photo's colours, fitted to the probability in a ``(2r+1)^2`` window.
A pixel is the person where the filtered map exceeds one half; its class is then the most probable person class
(:func:`parsing_labels`). Pure tensor operations, batched, on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["REFINE_EPS", "guided_filter", "parsing_labels", "refine_radius", "snap_person"]

REFINE_EPS = 1e-3
"""Regularisation of the guided filter (colours in [0, 1]): chosen on the 45 CCP validation photos."""


def refine_radius(frame_height: int) -> int:
    """The filter's window radius at a frame: 2 pixels at 128 rows, 4 at 256 (chosen on the CCP validation
    photos at both frames)."""
    return max(1, round(frame_height / 64))


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a ``(2r+1)^2`` window, the border reflected (OpenCV's ``blur``)."""
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), 2 * r + 1, stride=1)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float = REFINE_EPS) -> torch.Tensor:
    """The colour guided filter of ``src`` ``(B, 1, H, W)`` by ``guide`` ``(B, 3, H, W)`` (values in [0, 1]);
    float32 ``(B, 1, H, W)``."""
    g, p = guide.float(), src.float()
    b, _, h, w = g.shape
    r = min(radius, h - 1, w - 1)
    mean_g, mean_p = _box(g, r), _box(p, r)
    cov = _box(g * p, r) - mean_g * mean_p  # (B, 3, H, W)
    outer = (g[:, :, None] * g[:, None]).reshape(b, 9, h, w)
    var = (_box(outer, r).reshape(b, 3, 3, h, w) - mean_g[:, :, None] * mean_g[:, None]).permute(0, 3, 4, 1, 2)
    var = var + eps * torch.eye(3, dtype=var.dtype, device=var.device)
    a = torch.linalg.solve(var, cov.permute(0, 2, 3, 1)[..., None])[..., 0].permute(0, 3, 1, 2)
    offset = mean_p - (a * mean_g).sum(1, keepdim=True)
    return (_box(a, r) * g).sum(1, keepdim=True) + _box(offset, r)


def snap_person(probs: torch.Tensor, image: torch.Tensor, radius: int, eps: float = REFINE_EPS) -> torch.Tensor:
    """Class probabilities ``(B, K, H, W)`` (class 0 the background) whose person probability is the guided
    filter's of ``1 - probs[:, 0]`` by ``image`` (``(B, 3, H, W)`` in [-1, 1]), clamped to [0, 1]; the person
    classes share it in their own proportions (alike where the network gave them none)."""
    person = guided_filter((image.float() + 1) * 0.5, 1 - probs[:, :1].float(), radius, eps).clamp(0, 1)
    parts = probs[:, 1:].float()
    total = parts.sum(1, keepdim=True)
    parts = torch.where(total > 1e-6, parts / total.clamp_min(1e-12), 1.0 / parts.shape[1])  # none: shared alike
    return torch.cat([1 - person, parts * person], 1)


def parsing_labels(probs: torch.Tensor, person_first: bool = False) -> torch.Tensor:
    """Labels ``(B, H, W)``: the most probable class; with ``person_first`` a pixel is the person when its
    background probability is under one half, then its most probable person class (:func:`snap_person`'s rule)."""
    if not person_first:
        return probs.argmax(1)
    return torch.where(probs[:, 0] < 0.5, probs[:, 1:].argmax(1) + 1, torch.zeros_like(probs[:, 0], dtype=torch.long))
