"""Conditional PatchGAN discriminator ``D(I | Is, Pt)`` with spectral normalisation (Eq. 11)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from glocal_cli.models.config import ModelConfig


class Discriminator(nn.Module):
    """PatchGAN on ``cat(I, Is, Pt)`` (3 + 3 + 18 channels); returns patch logits ``(B,1,h,w)``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = 3 + 3 + 18
        for i in range(cfg.disc_layers):
            width = min(cfg.disc_channels * 2**i, 8 * cfg.disc_channels)
            layers += [spectral_norm(nn.Conv2d(prev, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
            prev = width
        layers += [spectral_norm(nn.Conv2d(prev, prev, 3, padding=1)), nn.LeakyReLU(0.2, True),
                   spectral_norm(nn.Conv2d(prev, 1, 3, padding=1))]
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, source_image: torch.Tensor, target_pose: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([image, source_image, target_pose.to(image.dtype)], dim=1))
