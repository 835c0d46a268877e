"""Small building blocks shared by the GLocal networks (convolution units, residual blocks, U-Net)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_norm_act(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, norm: bool = True, act: str = "lrelu"
) -> nn.Sequential:
    """``Conv2d -> InstanceNorm2d(affine) -> activation`` with 'same'-style padding."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2 if stride == 1 else 1,
                  bias=not norm)
    ]
    if norm:
        layers.append(nn.InstanceNorm2d(out_ch, affine=True))
    if act == "lrelu":
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    elif act == "relu":
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Pre-activation-free residual block: ``x + conv(IN(lrelu(conv(x))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, 3),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom/right of ``x`` so that H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


class UNet(nn.Module):
    """pix2pix-style U-Net: stride-2 4x4 convs down, 4x4 transposed convs up, skip concatenation.

    The input is padded (bottom/right) to a multiple of ``2**depth`` and every output is cropped
    back, so any frame size works. ``forward`` returns the decoder features from stride
    ``2**(depth-1)`` down to ``2**stop`` (coarsest first), each cropped to the unpadded frame.
    """

    def __init__(self, in_ch: int, base: int, max_ch: int, depth: int, stop: int = 0) -> None:
        super().__init__()
        self.depth, self.stop = depth, stop
        widths = [min(base * 2**i, max_ch) for i in range(depth)]  # output of down level i (stride 2**(i+1))
        self.down = nn.ModuleList()
        prev = in_ch
        for i, w in enumerate(widths):
            outer, inner = i == 0, i == depth - 1
            layers: list[nn.Module] = [] if outer else [nn.LeakyReLU(0.2, inplace=False)]
            layers.append(nn.Conv2d(prev, w, 4, stride=2, padding=1, bias=outer or inner))
            if not outer and not inner:
                layers.append(nn.InstanceNorm2d(w, affine=True))
            self.down.append(nn.Sequential(*layers))
            prev = w
        self.up = nn.ModuleList()
        self.out_channels: list[int] = []
        for i in reversed(range(stop, depth)):  # up level i: stride 2**(i+1) -> 2**i
            in_up = widths[i] if i == depth - 1 else 2 * widths[i]
            out_up = widths[i - 1] if i > 0 else base
            self.up.append(
                nn.Sequential(
                    nn.ReLU(inplace=False),
                    nn.ConvTranspose2d(in_up, out_up, 4, stride=2, padding=1, bias=False),
                    nn.InstanceNorm2d(out_up, affine=True),
                )
            )
            self.out_channels.append(out_up if i == 0 else 2 * out_up)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, 2**self.depth)
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        outs: list[torch.Tensor] = []
        y = skips[-1]
        for j, i in enumerate(reversed(range(self.stop, self.depth))):
            y = self.up[j](y)
            if i > 0:
                y = torch.cat([y, skips[i - 1]], dim=1)
            s = 2**i
            outs.append(y[..., : -(-h // s), : -(-w // s)])
        return outs
