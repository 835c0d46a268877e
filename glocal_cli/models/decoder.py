"""Decoder: generation features (F_g, or F_o without LST) -> image in [-1, 1], and the texture path.

The paper decodes the bottleneck alone. With ``texture_skips`` every finer decoder scale also receives the
source encoder's features of the same stride, warped into the target frame by the flow, through a
:class:`SkipGate`; with ``pixel_blend`` a :class:`PixelBlend` mixes the decoded image with the source pixels
warped at full resolution. Both gates start at the *copy prior* (``m_vis`` times the agreement of the target
parsing with the warped source parsing, see :func:`glocal_cli.models.generator.copy_prior`): the source is
copied where it shows the target, and GGR/LST generate the rest. docs/design.md, "Texture path".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from glocal_cli.models.blocks import ResBlock, conv_norm_act
from glocal_cli.models.config import ModelConfig
from glocal_cli.models.flow import probability_logit


class SkipGate(nn.Module):
    """One decoder scale of the texture path: ``x + g * (P(warped) - x)``, a convex blend per position.

    ``P`` is a 1x1 conv (identity at init) that maps the warped encoder features into the decoder's feature
    space; ``g = sigmoid(logit(prior) + conv1x1([x, P(warped)]))`` with the conv at zero, so at init the gate
    *is* the copy prior: where it is 1 the warped source features replace the generated ones, where it is 0 the
    decoder keeps what GGR/LST generated. The learned term lets training correct a wrong visibility.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Conv2d(2 * channels, 1, 1)  # per position: x and the warped features carry the context
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
            self.proj.bias.zero_()
            self.gate.weight.zero_()
            self.gate.bias.zero_()

    def forward(self, x: torch.Tensor, warped: torch.Tensor, prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x, warped (B, C, h, w)``, ``prior (B, 1, h, w)`` in [0, 1] -> blended features and the gate (float32)."""
        src = self.proj(warped.to(x.dtype)).to(x.dtype)  # one dtype for lerp, whatever autocast did to x
        c = x.shape[1]
        w = self.gate.weight.to(x.dtype)  # conv1x1 of [x, src] without materialising the concatenation
        delta = F.conv2d(x, w[:, :c]) + F.conv2d(src, w[:, c:], self.gate.bias.to(x.dtype))
        g = torch.sigmoid(probability_logit(prior) + delta.float())
        return torch.lerp(x, src, g.to(x.dtype)), g


class PixelBlend(nn.Module):
    """``out = m * warp(Is) + (1 - m) * generated``, plus a residual bounded so that ``out`` stays in [-1, 1].

    One zero-initialised 1x1 conv reads the decoder's last features, the warped source pixels, the copy prior
    and the target parsing, and returns a mask logit correction ``dm`` and a residual ``r`` (3 channels):
    ``m = sigmoid(logit(prior) + dm)``, ``base = m * warp(Is) + (1 - m) * generated`` and
    ``out = base + (1 - |base|) * tanh(r)``. At init ``m`` is the prior and ``r = 0``, so what the source shows
    leaves the model at the source's own sharpness. Computed in float32 (copied pixels keep their precision
    under bf16 autocast).
    """

    def __init__(self, feature_channels: int, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(feature_channels + 3 + 1 + num_classes, 4, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, generated: torch.Tensor, features: torch.Tensor, warped_image: torch.Tensor,
                prior: torch.Tensor, target_parsing: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the blended image ``(B, 3, H, W)`` in [-1, 1] and the mask ``m (B, 1, H, W)`` (float32)."""
        dtype = features.dtype
        out = self.head(torch.cat([features, warped_image.to(dtype), prior.to(dtype), target_parsing.to(dtype)], 1))
        out = out.float()
        m = torch.sigmoid(probability_logit(prior) + out[:, :1])
        base = torch.lerp(generated.float(), warped_image.float(), m)  # m * warp(Is) + (1 - m) * generated
        return base + (1 - base.abs()) * torch.tanh(out[:, 1:]), m


class Decoder(nn.Module):
    """Residual blocks, then nearest x2 upsampling + 3x3 conv units per level, a 7x7 conv and tanh.

    With ``texture_skips`` a :class:`SkipGate` follows the conv unit of every level (strides
    ``2**(num_downsample-1)`` ... 1); ``body`` keeps the layout (and the parameter names) of the plain decoder.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        nd = cfg.num_downsample
        n_res = cfg.res_blocks - cfg.res_blocks // 2
        layers: list[nn.Module] = [ResBlock(cfg.width(nd)) for _ in range(n_res)]
        self._level_after: dict[int, int] = {}  # body index of a level's conv unit -> the level
        for level in reversed(range(nd)):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv_norm_act(cfg.width(level + 1), cfg.width(level))]
            self._level_after[len(layers) - 1] = level
        layers += [nn.Conv2d(cfg.width(0), 3, 7, padding=3), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.skips = nn.ModuleList(SkipGate(cfg.width(level)) for level in range(nd)) if cfg.texture_skips else None

    def forward(self, features: torch.Tensor, warped: list[torch.Tensor] | None = None,
                priors: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``(image, last features (B, width(0), H, W), skip gates finest first)``.

        ``warped[l]`` / ``priors[l]``: the warped source features and the copy prior at level ``l`` (stride
        ``2**l``); needed when the decoder has skips, ignored otherwise.
        """
        if self.skips is not None and (warped is None or priors is None):
            raise ValueError("texture_skips: the decoder needs the warped source features and the copy priors")
        x = features
        gates: dict[int, torch.Tensor] = {}
        head = len(self.body) - 2
        for i, layer in enumerate(self.body):
            if i == head:
                last = x
            x = layer(x)
            level = self._level_after.get(i)
            if self.skips is not None and level is not None:
                x, gates[level] = self.skips[level](x, warped[level], priors[level])  # type: ignore[index]
        return x, last, [gates[level] for level in sorted(gates)]
