"""What ``glocal info`` reports: versions, devices, weights, data and optional backends."""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from glocal_cli import __version__
from glocal_cli.errors import GLocalError
from glocal_cli.metrics.lpips import find_lpips_weights
from glocal_cli.paths import default_weights_dir, shared_data_dir, torch_hub_checkpoints

VGG19_FILE = "vgg19-dcbb9e9d.pth"
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


@dataclass(frozen=True)
class EnvironmentInfo:
    """A snapshot of the environment, rendered by ``glocal info``."""

    versions: dict[str, str]
    """Package name -> installed version (or 'not installed')."""
    device: dict[str, str]
    """Torch device facts: default device, CUDA availability, GPU names, bf16 support."""
    weights: dict[str, str]
    """What weights glocal can find (default weights, VGG-19, FID InceptionV3) -> location or 'missing'."""
    data: dict[str, str]
    """Data folders glocal can find -> location or 'missing'."""
    backends: dict[str, bool] = field(default_factory=dict)
    """Optional backend -> importable."""
    keypoint_backends: dict[str, tuple[bool, str]] = field(default_factory=dict)
    """Keypoint detector backend -> ``(usable, reason)`` (from :func:`~glocal_cli.data.backends.backend_status`)."""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def keypoint_backend_status() -> dict[str, tuple[bool, str]]:
    """``{backend: (usable, reason)}`` for the keypoint detectors; a probe that crashes counts as unusable."""
    try:
        from glocal_cli.data.backends import backend_status

        return backend_status()
    except Exception as e:  # a broken optional install must not break `glocal info`
        return {"detectors": (False, f"cannot probe the keypoint backends ({e.__class__.__name__}: {e})")}


def lpips_weights_status() -> dict[str, str]:
    """``{"LPIPS (<net>)": location or 'missing (...)'}`` for both LPIPS nets (file look-ups only)."""
    out: dict[str, str] = {}
    for net in ("alex", "vgg"):
        label = f"LPIPS {net} (eval)"
        try:
            found = find_lpips_weights(net)
        except GLocalError as e:
            out[label] = f"missing ({e})"
        except Exception as e:  # any other failure of the look-up is reported, not raised
            out[label] = f"missing (look-up failed: {e.__class__.__name__}: {e})"
        else:
            out[label] = f"{found.heads} + {found.backbone.name}"
    return out


def collect_info() -> EnvironmentInfo:
    """Collect the environment facts (cheap: imports torch, touches no network)."""
    import torch

    versions = {"glocal": __version__, "python": platform.python_version()}
    for dist in ("torch", "torchvision", "numpy", "opencv-python", "opencv-python-headless", "pillow",
                 "typer", "rich", "pytorch-fid", "scipy", "safetensors", "tensorboard", "smplx"):
        v = _version(dist)
        if dist == "opencv-python-headless" and v == "not installed":
            continue
        versions[dist] = v

    device: dict[str, str] = {"platform": f"{platform.system()} {platform.machine()}", "executable": sys.executable}
    cuda = torch.cuda.is_available()
    device["cuda"] = f"yes (CUDA {torch.version.cuda})" if cuda else "no"
    device["default device"] = "cuda" if cuda else "cpu"
    if cuda:
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        device["gpus"] = ", ".join(names)
        device["bf16"] = "yes" if torch.cuda.is_bf16_supported() else "no"
    device["cpu threads"] = str(torch.get_num_threads())

    hub = torch_hub_checkpoints()
    weights: dict[str, str] = {}
    dw = default_weights_dir()
    weights["default weights"] = str(dw) if dw else "missing (pass --weights DIR or set GLOCAL_WEIGHTS)"
    for label, fname in (("VGG-19 (perceptual loss)", VGG19_FILE), ("InceptionV3 (FID)", FID_INCEPTION_FILE)):
        p = hub / fname
        weights[label] = str(p) if p.is_file() else f"missing (put {fname} in {hub})"
    weights.update(lpips_weights_status())

    data: dict[str, str] = {}
    sd = shared_data_dir()
    data["community benchmark files"] = str(sd) if sd else "missing (set GLOCAL_SHARED_DATA)"
    examples = Path(__file__).resolve().parent.parent / "examples"
    data["examples"] = str(examples) if examples.is_dir() else "missing"

    backends = {
        "tensorboard (logging)": _importable("tensorboard"),
        "skimage (metric cross-checks)": _importable("skimage"),
    }
    return EnvironmentInfo(versions=versions, device=device, weights=weights, data=data, backends=backends,
                           keypoint_backends=keypoint_backend_status())
