"""Losses of the flow/visibility estimator.

* :func:`sampling_correctness_loss`: self-supervised; VGG features of the source warped by the flow
  should match the target's features as well as the best-matching source feature does (GFLA's idea).
* :func:`flow_smoothness_loss`: second-order smoothness (penalises deviations from a locally affine flow).
* :func:`supervised_flow_loss`: L1 to ground-truth flow where visible + BCE on the visibility
  (data with ground-truth correspondences, e.g. SynthPeople).
* :func:`photometric_visibility_target` + :func:`visibility_loss`: self-supervised visibility where
  no ground truth exists: a target pixel counts as visible in the source when the source warped by the
  current flow reproduces its colour (docs/design.md, "Visibility without ground truth").
Flows follow :mod:`glocal_cli.models.flow`: normalised ``(dx, dy)`` offsets, target -> source.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glocal_cli.models.flow import resize_flow, warp


def sampling_correctness_loss(source_feat: torch.Tensor, target_feat: torch.Tensor, flow: torch.Tensor,
                              eps: float = 1e-6) -> torch.Tensor:
    """``mean_j (1 - cos(warp(Vs)_j, Vt_j) / max_i cos(Vs_i, Vt_j))`` on one VGG layer ``(B, C, h, w)``."""
    source_feat, target_feat = source_feat.float(), target_feat.float()
    warped = warp(source_feat, flow)
    sim = F.cosine_similarity(warped, target_feat, dim=1, eps=eps)  # (B, h, w)
    s = F.normalize(source_feat.flatten(2), dim=1, eps=eps)
    t = F.normalize(target_feat.flatten(2), dim=1, eps=eps)
    best = torch.bmm(s.transpose(1, 2), t).amax(dim=1).view_as(sim)  # (B, h, w)
    ratio = sim / best.clamp_min(eps)
    return (1 - ratio).clamp_min(0).mean()


def flow_smoothness_loss(flow: torch.Tensor) -> torch.Tensor:
    """Mean absolute second difference of the flow along x and y."""
    flow = flow.float()
    dxx = flow[..., :, 2:] - 2 * flow[..., :, 1:-1] + flow[..., :, :-2]
    dyy = flow[..., 2:, :] - 2 * flow[..., 1:-1, :] + flow[..., :-2, :]
    terms = [d.abs().mean() for d in (dxx, dyy) if d.numel()]
    return sum(terms) if terms else flow.sum() * 0


def supervised_flow_loss(flow: torch.Tensor, visibility: torch.Tensor, gt_flow: torch.Tensor,
                         gt_visibility: torch.Tensor, valid: torch.Tensor | None = None,
                         w_flow: float = 1.0, w_visibility: float = 0.5) -> torch.Tensor:
    """L1 to ``gt_flow (B,2,H,W)`` where ``gt_visibility`` is 1 (and ``valid``), plus BCE on visibility.

    Predictions are resized to the ground-truth size; ``valid (B,1,H,W)`` marks pixels with any
    ground truth (e.g. the person's pixels), default everywhere.
    """
    size = gt_flow.shape[-2:]
    flow = resize_flow(flow.float(), size)
    vis = F.interpolate(visibility.float(), size=size, mode="bilinear", align_corners=False)
    valid = torch.ones_like(gt_visibility, dtype=torch.float32) if valid is None else valid.float()
    gt_vis = gt_visibility.float()
    flow_mask = valid * gt_vis
    flow_term = ((flow - gt_flow.float()).abs() * flow_mask).sum() / (2 * flow_mask.sum()).clamp_min(1.0)
    bce = F.binary_cross_entropy(vis.clamp(1e-6, 1 - 1e-6), gt_vis, reduction="none")
    vis_term = (bce * valid).sum() / valid.sum().clamp_min(1.0)
    return w_flow * flow_term + w_visibility * vis_term


def photometric_visibility_target(source_image: torch.Tensor, target_image: torch.Tensor, flow: torch.Tensor,
                                  threshold: float) -> torch.Tensor:
    """``(B, 1, H, W)`` in {0, 1}: 1 where the source warped by ``flow`` matches the target's colour.

    The per-pixel error is the mean absolute RGB difference of images in [-1, 1]; a pixel is visible
    when it is below ``threshold``. Computed without gradient: it is a target for the visibility head,
    not a loss on the flow (the sampling-correctness loss trains the flow).
    """
    with torch.no_grad():
        warped = warp(source_image.float(), flow.detach().float())
        err = (warped - target_image.float()).abs().mean(dim=1, keepdim=True)
        return (err < threshold).float()


def visibility_loss(visibility: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of ``visibility (B,1,h,w)`` (resized to the target's size) against ``target
    (B,1,H,W)`` on the pixels where ``valid`` is 1 (everywhere by default); 0 when no pixel is valid."""
    vis = F.interpolate(visibility.float(), size=target.shape[-2:], mode="bilinear", align_corners=False)
    bce = F.binary_cross_entropy(vis.clamp(1e-6, 1 - 1e-6), target.float(), reduction="none")
    if valid is None:
        return bce.mean()
    valid = valid.float()
    return (bce * valid).sum() / valid.sum().clamp_min(1.0)
