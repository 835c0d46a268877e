"""Decoder: generation features (F_g, or F_o without LST) -> image in [-1, 1]."""

from __future__ import annotations

import torch
from torch import nn

from glocal_cli.models.blocks import ResBlock, conv_norm_act
from glocal_cli.models.config import ModelConfig


class Decoder(nn.Module):
    """Residual blocks, then nearest x2 upsampling + 3x3 conv units per level, a 7x7 conv and tanh."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        nd = cfg.num_downsample
        layers: list[nn.Module] = [ResBlock(cfg.width(nd)) for _ in range(cfg.res_blocks - cfg.res_blocks // 2)]
        for level in reversed(range(nd)):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv_norm_act(cfg.width(level + 1), cfg.width(level))]
        layers += [nn.Conv2d(cfg.width(0), 3, 7, padding=3), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(features)
