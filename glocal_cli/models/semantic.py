"""Semantic prediction (paper Sec. "Semantic Prediction"): a pix2pix U-Net ``(Is, Ps, Pt) -> Sg`` logits."""

from __future__ import annotations

import torch
from torch import nn

from glocal_cli.models.blocks import UNet
from glocal_cli.models.config import ModelConfig

POSE_CHANNELS = 18
"""Channels of a pose map (18 OpenPose-COCO keypoint heatmaps)."""


class SemanticPredictor(nn.Module):
    """pix2pix U-Net predicting the target parsing logits from the source image and both poses.

    With ``Pt = Ps`` the same network estimates a source parsing (see
    :meth:`glocal_cli.models.generator.GLocalModel.estimate_source_parsing`).
    """

    def __init__(self, cfg: ModelConfig, num_classes: int = 8) -> None:
        super().__init__()
        self.unet = UNet(3 + 2 * POSE_CHANNELS, cfg.semantic_channels, cfg.semantic_max_channels,
                         cfg.semantic_depth, stop=0)
        self.head = nn.Sequential(nn.ReLU(inplace=False),
                                  nn.Conv2d(self.unet.out_channels[-1], num_classes, 3, padding=1))

    def forward(self, image: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor) -> torch.Tensor:
        """``image (B,3,H,W)``, poses ``(B,18,H,W)`` -> logits ``(B,num_classes,H,W)``."""
        feats = self.unet(torch.cat([image, source_pose, target_pose], dim=1))
        return self.head(feats[-1])
