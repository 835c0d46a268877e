"""Named evaluation protocols: which metrics, with which exact recipe, on which image frame.

Published numbers in pose transfer are computed in incompatible ways (white padding raises SSIM, a
uint8 wrap-around inflates PSNR to ~31 dB, FID moves with the resize method). Each protocol here
pins one recipe down and names the peer script it follows; docs/metrics.md gives the full text.

Metric keys (the same in the rich table, metrics.json and per_image.csv):

* ``ssim`` (the protocol's headline SSIM), ``ssim_256`` (GFLA's second SSIM), ``ssim_win51``
  (GFLA's uniform 51x51 SSIM reported next to PIDM's): per image;
* ``psnr`` (float) or ``psnr_uint8_wraparound`` (the PISE-lineage bug, labelled as such): per image;
* ``lpips`` (per image), ``fid`` and ``is`` (per set).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from glocal_cli.errors import ConfigError, InputError
from glocal_cli.metrics.psnr import WRAPAROUND_LABEL
from glocal_cli.metrics.ssim import SSIMSpec

PER_IMAGE_METRICS = ("ssim", "ssim_256", "ssim_win51", "psnr", "psnr_uint8_wraparound", "lpips")
"""Metrics with one value per image pair (written to per_image.csv)."""
SET_METRICS = ("fid", "is")
"""Metrics of the whole generated set."""
PATN_PAD = (176, 256)
"""PATN's fashion script pads 176-wide DeepFashion images to 256 with white (40 px each side); other
frames (Market-1501's 64-wide crops) are evaluated unpadded, as in its market script."""


def needs_patn_pad(width: int) -> bool:
    """True for the 176-wide frame that the PATN lineage pads to 256."""
    return width == PATN_PAD[0]


HIGHER_IS_BETTER = {
    "ssim": True, "ssim_256": True, "ssim_win51": True, "psnr": True, "psnr_uint8_wraparound": True,
    "lpips": False, "fid": False, "is": True,
}
"""Direction of each metric (for arrows in reports and the worst-k ordering)."""


@dataclass(frozen=True)
class SSIMRecipe:
    """An SSIM spec plus the frame it runs on."""

    spec: SSIMSpec
    """scikit-image parameters."""
    patn_pad: bool = False
    """Pad 176-wide images with white (255) to 256 first, 40 px left and right (PATN's addBounding)."""

    def describe(self) -> str:
        pad = "; 176-wide images padded with white to 256 (40 px each side)" if self.patn_pad else ""
        return self.spec.describe() + pad


@dataclass(frozen=True)
class FIDRecipe:
    """How generated and real images reach the InceptionV3."""

    real_set: Literal["reference", "train"] = "reference"
    """What the recipe compares against: the ground-truth images, or the training set (--fid-real)."""
    resize: Literal["none", "to-generated", "bilinear-256x176"] = "none"
    """none: images as read (the network resizes to 299); to-generated: real images resized to the
    generated frame (antialiased bicubic) when they differ; bilinear-256x176: every image resized to
    256x176 first (cv2.resize INTER_LINEAR in PIDM, torch bilinear here)."""

    def describe(self) -> str:
        real = "the training set (--fid-real)" if self.real_set == "train" else "the reference images"
        resize = {
            "none": "images as read",
            "to-generated": "real images resized to the generated frame (bicubic, antialiased) if they differ",
            "bilinear-256x176": "all images resized to 256x176 (bilinear, no antialias) first",
        }[self.resize]
        return (
            f"pytorch-fid InceptionV3 pool3 (2048-d), bilinear resize to 299x299, [0,1] -> [-1,1]; "
            f"real set = {real}; {resize}"
        )


@dataclass(frozen=True)
class Protocol:
    """One named recipe for every metric."""

    name: str
    """Name used with --protocol."""
    title: str
    """One-line title."""
    follows: str
    """The peer script the recipe follows."""
    metrics: tuple[str, ...]
    """Metric keys in report order."""
    ssim: dict[str, SSIMRecipe] = field(default_factory=dict)
    """SSIM recipes by metric key."""
    psnr_data_range: float = 255.0
    """PSNR data range on the 0..255 scale (float PSNR only)."""
    lpips_resize: tuple[int, int] | None = None
    """(H, W) both LPIPS inputs are resized to first (bilinear), or None."""
    fid: FIDRecipe = field(default_factory=FIDRecipe)
    """FID recipe."""
    is_patn_pad: bool = False
    """Pad 176-wide generated images with white to 256 before the Inception Score (PATN)."""
    png_only: bool = False
    """Refuse generated images that are not PNG (lossless)."""
    unpad_reference: bool = True
    """Crop a reference wider than the generated image (e.g. 256-wide padded) to its centre."""

    def label(self, key: str, lpips_net: str = "alex") -> str:
        """Human label of a metric key under this protocol."""
        if key in self.ssim:
            return {"ssim": "SSIM", "ssim_256": "SSIM-256 (GFLA)", "ssim_win51": "SSIM win51 (GFLA)"}[key]
        return {
            "psnr": "PSNR (dB)",
            "psnr_uint8_wraparound": WRAPAROUND_LABEL,
            "lpips": f"LPIPS ({'AlexNet' if lpips_net == 'alex' else 'VGG16'})",
            "fid": "FID",
            "is": "IS",
        }[key]

    def recipe(self, key: str, lpips_net: str = "alex", is_splits: int = 10) -> str:
        """Exact recipe of a metric key under this protocol (one line)."""
        if key in self.ssim:
            return "skimage structural_similarity: " + self.ssim[key].describe() + ", channel mean"
        if key == "psnr":
            return f"10 log10({self.psnr_data_range:g}^2 / MSE), float64 MSE (= skimage peak_signal_noise_ratio)"
        if key == "psnr_uint8_wraparound":
            return (
                "20 log10(255) - 10 log10(((a - b) ** 2).mean()) on uint8 arrays: difference and square "
                "wrap modulo 256 (PISE util/psnr.py); not a true PSNR"
            )
        if key == "lpips":
            size = f", inputs resized to {self.lpips_resize[0]}x{self.lpips_resize[1]}" if self.lpips_resize else ""
            return f"lpips v0.1 net-lin {lpips_net}, inputs in [-1, 1]{size}"
        if key == "fid":
            return self.fid.describe()
        if key == "is":
            pad = "; 176-wide images padded with white to 256" if self.is_patn_pad else ""
            return (
                f"{is_splits} splits, softmax of pool3 x fc weights (no bias) of the FID InceptionV3{pad}"
            )
        raise ConfigError(f"unknown metric {key!r}")


_PATN_PADDED = SSIMRecipe(SSIMSpec(data_range="generated", sigma=1.5), patn_pad=True)
_GFLA_51 = SSIMRecipe(
    SSIMSpec(data_range=255.0, gaussian_weights=False, win_size=51, use_sample_covariance=True)
)
_GFLA_256 = SSIMRecipe(SSIMSpec(data_range="generated", sigma=1.5))

PROTOCOLS: dict[str, Protocol] = {
    "clean": Protocol(
        name="clean",
        title="clean: no padding, float PSNR, fixed data range, PNG outputs only",
        follows="glocal's own recipe (Wang et al. 2004 SSIM constants; pytorch-fid FID)",
        metrics=("ssim", "psnr", "lpips", "fid", "is"),
        ssim={"ssim": SSIMRecipe(SSIMSpec(data_range=255.0, sigma=1.5))},
        fid=FIDRecipe(real_set="reference", resize="to-generated"),
        png_only=True,
        unpad_reference=False,
    ),
    "paper": Protocol(
        name="paper",
        title="paper: the GLocal Table 1 recipe, as far as it can be inferred",
        follows=(
            "FID: GFLA script/metrics.py against the training set at 256x176; IS and SSIM: PATN "
            "tool/getMetrics_fashion.py (images padded to 256x256 with white); PSNR: PISE util/psnr.py"
        ),
        metrics=("fid", "is", "ssim", "psnr_uint8_wraparound"),
        ssim={"ssim": _PATN_PADDED},
        fid=FIDRecipe(real_set="train", resize="none"),
        is_patn_pad=True,
    ),
    "gfla": Protocol(
        name="gfla",
        title="gfla: GFLA's script/metrics.py",
        follows="RenYurui/Global-Flow-Local-Attention script/metrics.py (FID, LPIPS, Reconstruction_Metrics)",
        metrics=("fid", "lpips", "ssim", "ssim_256", "psnr"),
        ssim={"ssim": _GFLA_51, "ssim_256": _GFLA_256},
        fid=FIDRecipe(real_set="train", resize="none"),
    ),
    "pise": Protocol(
        name="pise",
        title="pise: PISE's numbers (GFLA's FID/LPIPS, PATN-style SSIM, wrap-around PSNR)",
        follows=(
            "Zhangjinso/PISE util/psnr.py (PSNR) on top of GFLA script/metrics.py (FID, LPIPS); SSIM as the "
            "PATN/XingGAN lineage computes it (padded to 256x256 with white)"
        ),
        metrics=("fid", "lpips", "ssim", "psnr_uint8_wraparound"),
        ssim={"ssim": _PATN_PADDED},
        fid=FIDRecipe(real_set="train", resize="none"),
    ),
    "pidm": Protocol(
        name="pidm",
        title="pidm: PIDM's utils/metrics.py",
        follows="ankanbhunia/PIDM utils/metrics.py (FID and LPIPS on 256x176 resizes, SSIM sigma=1.2)",
        metrics=("fid", "lpips", "ssim", "ssim_win51", "psnr"),
        ssim={"ssim": SSIMRecipe(SSIMSpec(data_range="generated", sigma=1.2)), "ssim_win51": _GFLA_51},
        lpips_resize=(256, 176),
        fid=FIDRecipe(real_set="train", resize="bilinear-256x176"),
    ),
}
"""Every protocol by name."""


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; ConfigError with a did-you-mean otherwise."""
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    close = difflib.get_close_matches(name, list(PROTOCOLS), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"--protocol {name}: unknown protocol (choose from {', '.join(PROTOCOLS)}){hint}")


def select_metrics(protocol: Protocol, wanted: tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """The protocol's metrics, restricted to ``wanted`` (in protocol order) when given."""
    if not wanted:
        return protocol.metrics
    unknown = [m for m in wanted if m not in protocol.metrics]
    if unknown:
        raise ConfigError(
            f"--metrics {','.join(wanted)}: {', '.join(unknown)} not in protocol '{protocol.name}' "
            f"(its metrics: {', '.join(protocol.metrics)})"
        )
    return tuple(m for m in protocol.metrics if m in wanted)


def align_pair(
    generated: np.ndarray, reference: np.ndarray, protocol: Protocol, name: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Bring a (generated, reference) pair of HxWx3 uint8 arrays to one frame, as the protocol allows.

    Equal sizes pass unchanged. With ``unpad_reference`` a reference of the same height that is wider
    by an even number of pixels (a 176-wide image padded to 256) is cropped to its centre, as PISE's
    script does. Anything else is an InputError: protocols never resize silently.
    """
    if generated.shape == reference.shape:
        return generated, reference
    gh, gw = generated.shape[:2]
    rh, rw = reference.shape[:2]
    if protocol.unpad_reference and gh == rh and rw > gw and (rw - gw) % 2 == 0:
        left = (rw - gw) // 2
        return generated, reference[:, left : left + gw]
    hint = (
        "; the clean protocol compares equal frames only" if not protocol.unpad_reference
        else "; bring both to one frame first"
    )
    raise InputError(
        f"{name}: generated image is {gh}x{gw} but its reference is {rh}x{rw}{hint}"
    )
