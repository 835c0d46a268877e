"""VGG-19 features and the perceptual loss of Eq. 10.

Weights come from, in order: ``loss.vgg_weights`` (a local ``.pth``/``.safetensors`` file with
torchvision key names), the torch hub cache (torchvision's ``VGG19_Weights.IMAGENET1K_V1`` file),
a download into that cache (``loss.vgg_download``). With none of these the loss refuses to build
unless ``loss.allow_random_vgg`` is true (tests and smoke runs).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from glocal_cli.errors import WeightsError

VGG_LAYERS = {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13,
              "relu3_4": 17, "relu4_1": 20, "relu4_2": 22, "relu4_4": 26, "relu5_1": 29, "relu5_4": 35}
"""Index of each named ReLU in ``torchvision.models.vgg19().features``."""
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _hub_cache_file() -> Path:
    from torchvision.models import VGG19_Weights

    name = os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_vgg19_state(weights_path: str = "", download: bool = True, allow_random: bool = False) -> dict | None:
    """The VGG-19 state dict from a local file, the hub cache or a download; None means random (allowed)."""
    from torchvision.models import VGG19_Weights

    if weights_path:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: VGG-19 weights file not found (loss.vgg_weights)")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                return load_file(str(path))
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one user-facing error
            raise WeightsError(f"{path}: unreadable VGG-19 weights ({exc})") from exc
    cached = _hub_cache_file()
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    if allow_random:
        return None
    if download:
        try:
            return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as exc:  # noqa: BLE001 - network errors of every kind
            raise WeightsError(
                f"{cached}: VGG-19 ImageNet weights are not in the torch hub cache and the download failed "
                f"({type(exc).__name__}); set loss.vgg_weights to a local vgg19 file"
            ) from exc
    raise WeightsError(f"{cached}: VGG-19 ImageNet weights not found; set loss.vgg_weights, allow "
                       "loss.vgg_download, or (tests only) loss.allow_random_vgg")


class VGG19Features(nn.Module):
    """Frozen VGG-19 trunk returning the requested ReLU activations of images in [-1, 1]."""

    def __init__(self, layers: tuple[str, ...], weights_path: str = "", download: bool = True,
                 allow_random: bool = False) -> None:
        super().__init__()
        from torchvision.models import vgg19

        unknown = [name for name in layers if name not in VGG_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG-19 layers {unknown}; known: {', '.join(VGG_LAYERS)}")
        net = vgg19(weights=None)
        state = load_vgg19_state(weights_path, download, allow_random)
        self.pretrained = state is not None
        if state is not None:
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise WeightsError(f"{weights_path or _hub_cache_file()}: not a torchvision VGG-19 state dict") from exc
        self.layers = tuple(layers)
        last = max(VGG_LAYERS[name] for name in layers)
        self.trunk = net.features[: last + 1].eval()
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGG19Features:
        super().train(mode)
        self.trunk.eval()  # always frozen
        return self

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = ((image + 1) / 2 - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        wanted = {VGG_LAYERS[name]: name for name in self.layers}
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.trunk):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out


class PerceptualLoss(nn.Module):
    """Eq. 10: ``sum_k w_k * ||phi_k(I_g) - phi_k(I_t)||`` (mean squared, or L1) over VGG-19 layers."""

    def __init__(self, layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                 layer_weights: tuple[float, ...] | None = None, criterion: str = "l2",
                 weights_path: str = "", download: bool = True, allow_random: bool = False,
                 vgg: VGG19Features | None = None) -> None:
        super().__init__()
        self.vgg = vgg if vgg is not None else VGG19Features(layers, weights_path, download, allow_random)
        self.layers = tuple(layers)
        self.layer_weights = tuple(layer_weights) if layer_weights is not None else (1.0,) * len(layers)
        self.criterion = criterion

    @classmethod
    def from_config(cls, loss_cfg) -> PerceptualLoss:  # noqa: ANN001
        """Build from a :class:`~glocal_cli.models.config.LossConfig`."""
        return cls(loss_cfg.perceptual_layers, loss_cfg.perceptual_layer_weights, loss_cfg.perceptual_criterion,
                   loss_cfg.vgg_weights, loss_cfg.vgg_download, loss_cfg.allow_random_vgg)

    def forward(self, generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fg = self.vgg(generated)
        with torch.no_grad():
            ft = self.vgg(target)
        dist = F.mse_loss if self.criterion == "l2" else F.l1_loss
        return sum(w * dist(fg[n].float(), ft[n].float()) for n, w in zip(self.layers, self.layer_weights))
