"""Flow and visibility estimation (the paper's "Preliminary"; Intr-Flow is replaced by a 2D estimator).

Flow convention (docs/design.md): a flow is ``(B, 2, h, w)`` holding ``(dx, dy)`` offsets in the
normalised coordinates of ``grid_sample`` (``align_corners=False``, the frame spans [-1, 1]).
For each *target* position it says where to sample the *source*; it is resolution independent, so a
flow at any pyramid level can warp features of any size. The zero flow is the identity. The
visibility map ``m_vis`` lives in the target frame: 1 where the target position's correspondence is
visible in the source, 0 where it is occluded (or masked out, in inpainting).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from glocal_cli.models.blocks import UNet
from glocal_cli.models.config import ModelConfig
from glocal_cli.models.semantic import POSE_CHANNELS


def base_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Identity sampling grid ``(1, H, W, 2)`` (x, y) in normalised ``align_corners=False`` coordinates."""
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) * 2 + 1) / width - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a (normalised, hence scale-free) flow to ``size``."""
    if tuple(flow.shape[-2:]) == tuple(size):
        return flow
    return F.interpolate(flow, size=size, mode="bilinear", align_corners=False)


def resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a flow or visibility map to ``size``: area average when shrinking, bilinear when growing.

    Normalised flows are scale-free, so resizing is all a flow needs to move between resolutions. Area
    averaging (not bilinear point sampling) keeps a fine flow or a sharp visibility map (e.g. from a 3D body
    fit at the image frame) from aliasing when it is taken down to a feature scale.
    """
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if size[0] <= h and size[1] <= w:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def probability_logit(p: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``log(p / (1 - p))`` in float32 with ``p`` clamped to ``[eps, 1 - eps]`` (a gate's starting logit)."""
    p = p.float().clamp(eps, 1 - eps)
    return torch.log(p) - torch.log1p(-p)


def warp(features: torch.Tensor, flow: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Backward-warp ``features (B,C,H,W)`` with ``flow (B,2,h,w)`` (resized to H x W) via ``grid_sample``."""
    h, w = features.shape[-2:]
    flow = resize_flow(flow, (h, w)).to(features.dtype)
    grid = base_grid(h, w, flow) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def identity_flow(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """The zero flow ``(B, 2, H, W)`` (used for ``flow: none`` and inpainting)."""
    return like.new_zeros(batch, 2, height, width)


class FlowEstimator(nn.Module):
    """GFLA-style estimator: ``(Is, Ps, Pt)`` -> flow pyramid (coarsest first) + sigmoid visibility.

    A U-Net of depth ``flow_depth`` whose decoder stops at the finest pyramid stride; level ``l``
    adds a residual to the upsampled flow of level ``l-1``. Heads start at zero, so an untrained
    estimator is the identity flow with visibility 0.5.

    Hybrid mode (``flow_refine``): the U-Net also sees an initial flow ``W0`` and visibility ``v0`` at the image
    frame (the source warped by ``W0``, ``W0`` itself and ``v0``: 6 more input channels); every pyramid level
    is ``resample(W0) + learned residual`` and the visibility is ``sigmoid(logit(v0) + head)``. Untrained, it
    returns the given flow and visibility; with no initial flow it starts from the identity and 0.5, like the
    plain estimator.
    """

    REFINE_CHANNELS = 6
    """Extra input channels of the hybrid mode: warped source (3), initial flow (2), initial visibility (1)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        finest = cfg.num_downsample - cfg.flow_levels + 1
        self.refine = cfg.flow_refine
        extra = self.REFINE_CHANNELS if self.refine else 0
        self.unet = UNet(3 + 2 * POSE_CHANNELS + extra, cfg.flow_channels, cfg.flow_max_channels, cfg.flow_depth,
                         stop=finest)
        self.levels = cfg.flow_levels
        chans = self.unet.out_channels[-cfg.flow_levels:]
        self.flow_heads = nn.ModuleList(nn.Conv2d(c, 2, 3, padding=1) for c in chans)
        self.vis_head = nn.Conv2d(chans[-1], 1, 3, padding=1)
        for head in [*self.flow_heads, self.vis_head]:
            nn.init.normal_(head.weight, std=1e-3)
            nn.init.zeros_(head.bias)

    def forward(
        self, image: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor,
        init_flow: torch.Tensor | None = None, init_visibility: torch.Tensor | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Returns ``(flows, visibility)``: flows ``[(B,2,H/s,W/s) ...]`` coarsest first, visibility at the finest.

        ``init_flow (B, 2, h, w)`` / ``init_visibility (B, 1, h, w)`` (any size, hybrid mode only): the flow to
        refine and its visibility; a missing visibility is 1 with a given flow, 0.5 without one.
        """
        inputs = [image, source_pose, target_pose]
        if not self.refine and (init_flow is not None or init_visibility is not None):
            raise ValueError("init_flow/init_visibility need model.flow_refine = true")
        if self.refine:
            b, _, h, w = image.shape
            flow0 = (image.new_zeros(b, 2, h, w) if init_flow is None
                     else resample(init_flow.to(image.dtype), (h, w)))
            if init_visibility is None:
                vis0 = image.new_full((b, 1, h, w), 0.5 if init_flow is None else 1.0)
            else:
                vis0 = resample(init_visibility.to(image.dtype), (h, w))
            inputs += [warp(image, flow0), flow0, vis0]
        feats = self.unet(torch.cat(inputs, dim=1))[-self.levels:]
        flows: list[torch.Tensor] = []
        for head, feat in zip(self.flow_heads, feats):
            delta = head(feat)
            flows.append(delta if not flows else resize_flow(flows[-1], feat.shape[-2:]) + delta)
        logit = self.vis_head(feats[-1])
        if self.refine:
            # the residuals sit on the initial flow at each level's own resolution (area-averaged from the given one)
            given = flow0 if init_flow is None else init_flow.to(flows[0].dtype)
            flows = [resample(given, f.shape[-2:]).to(f.dtype) + f for f in flows]
            given_vis = vis0 if init_visibility is None else init_visibility
            logit = logit.float() + probability_logit(resample(given_vis, logit.shape[-2:]))
        visibility = torch.sigmoid(logit)
        return flows, visibility


def flow_to_rgb(flow: torch.Tensor) -> torch.Tensor:
    """``(B, 2, h, w)`` normalised flow -> ``uint8 (B, h, w, 3)``: hue = direction, saturation = length."""
    dx, dy = flow[:, 0].float(), flow[:, 1].float()
    mag = torch.sqrt(dx * dx + dy * dy)
    mag = mag / mag.flatten(1).amax(1).clamp_min(1e-6)[:, None, None]
    hue = (torch.atan2(dy, dx) / (2 * torch.pi)) % 1.0 * 6.0
    c = mag
    x = c * (1 - ((hue % 2) - 1).abs())
    zeros = torch.zeros_like(c)
    sector = hue.floor().long().clamp(0, 5)
    r = torch.stack([c, x, zeros, zeros, x, c])
    g = torch.stack([x, c, c, x, zeros, zeros])
    b = torch.stack([zeros, zeros, x, c, c, x])
    idx = sector[None]
    rgb = torch.stack([r.gather(0, idx)[0], g.gather(0, idx)[0], b.gather(0, idx)[0]], dim=-1)
    rgb = rgb + (1 - c)[..., None]  # white = no motion
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8)
