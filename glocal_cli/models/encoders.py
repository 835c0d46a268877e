"""Encoders of the generator: source image, target (pose + parsing), per-region style, and fusion (F_I)."""

from __future__ import annotations

import torch
from torch import nn

from glocal_cli.models.blocks import ResBlock, conv_norm_act
from glocal_cli.models.config import ModelConfig


class DownEncoder(nn.Module):
    """3x3 stem at full resolution, then ``num_downsample`` stride-2 4x4 conv units (widths per level)."""

    def __init__(self, in_ch: int, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_norm_act(in_ch, cfg.width(0), 3)]
        for level in range(cfg.num_downsample):
            layers.append(conv_norm_act(cfg.width(level), cfg.width(level + 1), 4, stride=2))
        self.body = nn.Sequential(*layers)
        self.out_channels = cfg.width(cfg.num_downsample)

    def forward(self, x: torch.Tensor, all_levels: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """The features at the network stride; with ``all_levels`` those of every level, ``[stride 1, stride 2,
        ..., stride 2**num_downsample]`` (the texture path warps each into the decoder scale of the same stride)."""
        if not all_levels:
            return self.body(x)
        outs = []
        for layer in self.body:
            x = layer(x)
            outs.append(x)
        return outs


class SourceEncoder(DownEncoder):
    """``(Is, Ps, Ss) -> F_s`` at the network stride."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__(3 + 18 + num_classes, cfg)


class TargetEncoder(DownEncoder):
    """``(Pt, Sg) -> F_t`` at the network stride (Sg: target parsing probabilities)."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__(18 + num_classes, cfg)


class StyleEncoder(nn.Module):
    """Source features -> style features (``style_channels``) for per-region average pooling (GGR)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.width(cfg.num_downsample)
        self.body = nn.Sequential(conv_norm_act(c, cfg.style_channels, 3),
                                  nn.Conv2d(cfg.style_channels, cfg.style_channels, 1))

    def forward(self, source_feat: torch.Tensor) -> torch.Tensor:
        return self.body(source_feat)


class FeatureFusion(nn.Module):
    """Fuse encoded target and warped source features (+ visibility) into ``F_I``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.width(cfg.num_downsample)
        self.body = nn.Sequential(conv_norm_act(2 * c + 1, c, 3),
                                  *[ResBlock(c) for _ in range(cfg.res_blocks // 2)])

    def forward(self, target_feat: torch.Tensor, warped_source_feat: torch.Tensor,
                visibility: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([target_feat, warped_source_feat, visibility.to(target_feat.dtype)], 1))
