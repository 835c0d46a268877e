"""LPIPS (Zhang et al. 2018, "net-lin", version 0.1) in plain torch, without the ``lpips`` package.

The network: a fixed input scaling, five ReLU feature stages of a torchvision backbone (AlexNet:
relu1..relu5; VGG16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3), unit-normalisation of every
feature vector along channels, squared differences, one learned 1x1 convolution (no bias) per
stage, a spatial mean, and the sum over stages. Inputs are RGB in [-1, 1].

Two weight files are needed and read with ``torch.load(weights_only=True)``:

* the linear heads of lpips v0.1 (``alex.pth`` / ``vgg.pth``, shipped inside the ``lpips``
  package as ``lpips/weights/v0.1/<net>.pth``; keys ``lin0.model.1.weight`` ...);
* the torchvision ImageNet backbone (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``), as
  torchvision caches it in ``torch.hub.get_dir()/checkpoints``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from glocal_cli.errors import NotAvailableError, WeightsError
from glocal_cli.metrics.fid import hub_checkpoint_dir

LPIPSNet = Literal["alex", "vgg"]

CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
"""Channels of the five compared feature stages."""
STAGE_ENDS = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}
"""Exclusive end index of each stage in torchvision's ``features`` Sequential."""
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
"""torchvision's ImageNet weights of each backbone (file names in the hub cache)."""
BACKBONE_GLOBS = {"alex": "alexnet-*.pth", "vgg": "vgg16-*.pth"}
LIN_CACHE_NAMES = {"alex": "lpips_v0.1_alex.pth", "vgg": "lpips_v0.1_vgg.pth"}
"""Where glocal looks for the linear heads in the hub cache when ``--lpips-weights`` is not given."""

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _backbone(net: LPIPSNet) -> nn.Sequential:
    import torchvision

    if net == "alex":
        return torchvision.models.alexnet(weights=None).features
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["D"], batch_norm=False)


class _LinearHead(nn.Module):
    """Dropout + 1x1 convolution to one channel (key layout of the published heads: ``model.1``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """Learned perceptual distance; ``forward(a, b)`` returns one distance per image pair, shape (B,)."""

    def __init__(self, net: LPIPSNet = "alex") -> None:
        super().__init__()
        if net not in CHANNELS:
            raise ValueError(f"unknown LPIPS net {net!r} (alex or vgg)")
        self.net_name = net
        self.features = _backbone(net)
        self.stage_ends = STAGE_ENDS[net]
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        for i, ch in enumerate(CHANNELS[net]):
            self.add_module(f"lin{i}", _LinearHead(ch))
        self.eval()
        for param in self.parameters():
            param.requires_grad_(False)

    def heads(self) -> list[_LinearHead]:
        return [getattr(self, f"lin{i}") for i in range(len(self.stage_ends))]

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five compared feature maps of an input in [-1, 1]."""
        x = (x - self.shift) / self.scale
        out = []
        start = 0
        for end in self.stage_ends:
            for layer in self.features[start:end]:
                x = layer(x)
            out.append(x)
            start = end
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self.stages(a), self.stages(b)
        total = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        for head, xa, xb in zip(self.heads(), fa, fb):
            na = xa / (torch.sqrt((xa * xa).sum(dim=1, keepdim=True)) + 1e-10)
            nb = xb / (torch.sqrt((xb * xb).sum(dim=1, keepdim=True)) + 1e-10)
            total = total + head((na - nb) ** 2).mean(dim=(1, 2, 3))
        return total

    @classmethod
    def from_files(cls, net: LPIPSNet, heads: str | Path, backbone: str | Path) -> LPIPS:
        """Build and load the linear heads and the torchvision backbone strictly."""
        with torch.device("meta"):  # no random initialisation: every tensor comes from the files
            model = cls(net)
        model.shift = torch.tensor(_SHIFT).view(1, 3, 1, 1)
        model.scale = torch.tensor(_SCALE).view(1, 3, 1, 1)
        head_state = _load(Path(heads), "LPIPS linear heads")
        try:
            missing = [k for k in head_state if not k.startswith("lin")]
            if missing:
                raise RuntimeError(f"unexpected keys {missing[:3]}")
            heads_module = nn.ModuleDict({f"lin{i}": h for i, h in enumerate(model.heads())})
            heads_module.load_state_dict(head_state, strict=True, assign=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"{heads}: not lpips v0.1 '{net}' linear heads ({str(exc).splitlines()[0]})"
            ) from exc
        bb_state = _load(Path(backbone), f"{net} backbone")
        feats = {k[len("features."):]: v for k, v in bb_state.items() if k.startswith("features.")}
        try:
            model.features.load_state_dict(feats, strict=True, assign=True)
        except RuntimeError as exc:
            raise WeightsError(
                f"{backbone}: not torchvision's {net} ImageNet weights ({str(exc).splitlines()[0]})"
            ) from exc
        for param in model.parameters():
            param.requires_grad_(False)
        return model.eval()


def _load(path: Path, what: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a weights problem
        raise WeightsError(f"{path}: cannot read {what} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: {what} must be a state dict")
    return state


@dataclass(frozen=True)
class LPIPSWeights:
    """The two files LPIPS needs."""

    heads: Path
    """lpips v0.1 linear heads (``alex.pth`` / ``vgg.pth``)."""
    backbone: Path
    """torchvision ImageNet backbone weights."""


def _package_heads(net: LPIPSNet) -> Path | None:
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "weights" / "v0.1" / f"{net}.pth"
        if p.is_file():
            return p
    return None


def missing_lpips_message(net: LPIPSNet) -> str:
    """One line telling the user which files to put where."""
    hub = hub_checkpoint_dir()
    return (
        f"LPIPS ({net}) needs lpips v0.1 linear heads ({net}.pth from the lpips package, "
        f"lpips/weights/v0.1/{net}.pth) at {hub / LIN_CACHE_NAMES[net]} or via --lpips-weights PATH, "
        f"and torchvision's {BACKBONE_FILES[net]} in {hub}/ (or in the --lpips-weights folder)"
    )


def find_lpips_weights(net: LPIPSNet, path: str | Path | None = None) -> LPIPSWeights:
    """Locate the heads and backbone files; raises NotAvailableError (one line) when absent.

    ``path`` may be the heads file itself or a folder holding ``<net>.pth`` (or
    ``lpips_v0.1_<net>.pth``) and optionally the backbone file. Otherwise the heads are looked up in
    the hub cache (``lpips_v0.1_<net>.pth``) and in an installed ``lpips`` package.
    """
    hub = hub_checkpoint_dir()
    heads: Path | None = None
    folders: list[Path] = []
    if path is not None and str(path) != "":
        p = Path(path).expanduser()
        if p.is_dir():
            folders.append(p)
            for name in (f"{net}.pth", LIN_CACHE_NAMES[net]):
                if (p / name).is_file():
                    heads = p / name
                    break
        elif p.is_file():
            heads = p
            folders.append(p.parent)
        else:
            raise WeightsError(f"{p}: no such LPIPS weights file or folder")
        if heads is None:
            raise NotAvailableError(f"{p}: no {net}.pth in this folder; {missing_lpips_message(net)}")
    else:
        cached = hub / LIN_CACHE_NAMES[net]
        heads = cached if cached.is_file() else _package_heads(net)
    if heads is None:
        raise NotAvailableError(missing_lpips_message(net))
    for folder in [*folders, hub]:
        found = sorted(folder.glob(BACKBONE_GLOBS[net])) if folder.is_dir() else []
        if found:
            return LPIPSWeights(heads=heads, backbone=found[0])
    raise NotAvailableError(missing_lpips_message(net))
