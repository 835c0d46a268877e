"""Structural similarity (SSIM), batched in torch, equal to scikit-image's ``structural_similarity``.

scikit-image filters each channel with a Gaussian (``sigma``, truncated at 3.5 sigma) or a uniform
``win_size`` window, builds the SSIM map and averages it after cropping ``(win_size - 1) // 2``
pixels from every border; a colour image's SSIM is the mean of its per-channel SSIMs. Because the
crop removes exactly the pixels whose window leaves the image, a *valid* convolution gives the same
numbers without any padding. When a caller asks for a crop smaller than the filter radius, the
missing border is filled the way SciPy's ``mode='reflect'`` does (half-sample symmetric), so the
result stays equal to scikit-image in that case too.

The filters run as depthwise convolutions in channels-last layout (fast on CPU with oneDNN and on
CUDA). In ``float32`` the data are first scaled by ``data_range`` and centred per image and channel:
SSIM is unchanged by a common scale of images and data range, and variances are unchanged by a
shift, so only the luminance term needs the mean added back. This keeps float32 within 1e-5 of the
float64 result on real images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from glocal_cli.errors import InputError

DataRange = float | Literal["generated"]
"""A fixed data range, or ``"generated"``: per image ``generated.max() - generated.min()`` (PATN rule)."""

TRUNCATE = 3.5
"""scikit-image truncates its Gaussian SSIM window at 3.5 sigma (an 11-tap window for sigma 1.5)."""


@dataclass(frozen=True)
class SSIMSpec:
    """One SSIM recipe: the parameters scikit-image's ``structural_similarity`` is called with."""

    data_range: DataRange = 255.0
    """Data range L (C1 = (K1 L)^2, C2 = (K2 L)^2) on the 0..255 scale, or "generated" (PATN rule)."""
    gaussian_weights: bool = True
    """Gaussian window (True) or uniform window (False)."""
    sigma: float = 1.5
    """Standard deviation of the Gaussian window."""
    win_size: int | None = None
    """Window size; None = 2 * int(3.5 sigma + 0.5) + 1 for Gaussian windows, 7 for uniform ones."""
    use_sample_covariance: bool = False
    """Normalise covariances by N - 1 (scikit-image's default) instead of N (Wang et al. 2004)."""
    k1: float = 0.01
    """Constant K1."""
    k2: float = 0.03
    """Constant K2."""

    def describe(self) -> str:
        """One-line description of the recipe (used in labels and reports)."""
        window = (
            f"Gaussian sigma={self.sigma:g} {self.effective_win_size}x{self.effective_win_size}"
            if self.gaussian_weights
            else f"uniform {self.effective_win_size}x{self.effective_win_size}"
        )
        rng = (
            "generated.max()-generated.min()"
            if self.data_range == "generated"
            else f"{float(self.data_range):g} (0..255 scale)"
        )
        cov = "sample" if self.use_sample_covariance else "population"
        return f"{window}, data_range={rng}, {cov} covariance"

    @property
    def effective_win_size(self) -> int:
        """The window size scikit-image uses for this spec."""
        if self.win_size is not None:
            return self.win_size
        if self.gaussian_weights:
            return 2 * int(TRUNCATE * self.sigma + 0.5) + 1
        return 7


def _window_1d(spec: SSIMSpec, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """1-D filter taps, exactly SciPy's ``gaussian_filter1d`` / ``uniform_filter1d`` weights."""
    if spec.gaussian_weights:
        radius = int(TRUNCATE * spec.sigma + 0.5)
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        taps = torch.exp(-0.5 * (x / spec.sigma) ** 2)
        taps = taps / taps.sum()
    else:
        size = spec.effective_win_size
        taps = torch.full((size,), 1.0 / size, dtype=torch.float64)
    return taps.to(device=device, dtype=dtype)


def _symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad dims 1 and 2 (H, W of a B x H x W x C tensor) by ``pad`` with SciPy's 'reflect' rule."""
    if pad <= 0:
        return x
    h, w = x.shape[1], x.shape[2]

    def index(n: int) -> torch.Tensor:
        i = torch.arange(-pad, n + pad, device=x.device)
        i = torch.where(i < 0, -i - 1, i)
        i = torch.where(i >= n, 2 * n - i - 1, i)
        return i.clamp(0, n - 1)

    return x.index_select(1, index(h)).index_select(2, index(w))


@functools.lru_cache(maxsize=32)
def _weights(spec: SSIMSpec, planes: int, dtype: torch.dtype, device: torch.device):
    taps = _window_1d(spec, dtype, device)
    k = taps.numel()
    w_row = taps.view(1, 1, 1, k).expand(planes, 1, 1, k).contiguous()
    w_col = taps.view(1, 1, k, 1).expand(planes, 1, k, 1).contiguous()
    return w_row, w_col, (k - 1) // 2


def _data_range(generated: torch.Tensor, data_range: DataRange) -> torch.Tensor:
    if data_range == "generated":
        flat = generated.flatten(1)
        return (flat.amax(dim=1).to(torch.float64) - flat.amin(dim=1).to(torch.float64))
    return torch.full((generated.shape[0],), float(data_range), dtype=torch.float64, device=generated.device)


def ssim(
    generated: torch.Tensor,
    reference: torch.Tensor,
    spec: SSIMSpec | None = None,
    *,
    precision: Literal["float32", "float64"] = "float32",
    chunk: int | None = None,
) -> torch.Tensor:
    """Per-image SSIM of two batches, equal to ``skimage.metrics.structural_similarity``.

    ``generated`` and ``reference`` are (B, C, H, W) tensors (uint8 or float, any memory layout;
    channels-last is fastest) on the scale the spec's data range refers to (0..255 for the recipes
    in this package). Colour images get the mean of their per-channel SSIMs (scikit-image's
    ``channel_axis``). Returns a float64 tensor (B,) on the input's device. ``chunk`` images are
    processed at a time (default: 1 on CPU, keeping the working set in cache; 32 on CUDA).
    """
    spec = spec or SSIMSpec()
    if generated.shape != reference.shape:
        raise InputError(
            f"SSIM needs images of equal size, got {tuple(generated.shape)} and {tuple(reference.shape)}"
        )
    if generated.ndim != 4:
        raise InputError(f"SSIM expects (B, C, H, W) batches, got shape {tuple(generated.shape)}")
    win = spec.effective_win_size
    if win % 2 != 1:
        raise InputError(f"SSIM window size must be odd, got {win}")
    n, c, h, w = generated.shape
    if h < win or w < win:
        raise InputError(f"SSIM window {win}x{win} exceeds the image size {h}x{w}")

    device = generated.device
    dtype = torch.float64 if precision == "float64" else torch.float32
    chunk = chunk or (32 if device.type == "cuda" else 1)
    planes = -(-5 * c // 8) * 8  # 5C maps, padded to a multiple of 8 (vector width of the filters)
    w_row, w_col, radius = _weights(spec, planes, dtype, device)
    crop = (win - 1) // 2
    n_window = win * win
    cov_norm = n_window / (n_window - 1) if spec.use_sample_covariance else 1.0
    ranges = _data_range(generated, spec.data_range)
    # B x H x W x C views: free for channels-last inputs (images decoded as H x W x C)
    gen_hwc = generated.permute(0, 2, 3, 1)
    ref_hwc = reference.permute(0, 2, 3, 1)
    out = torch.empty(n, dtype=torch.float64, device=device)

    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        b = stop - start
        rng = ranges[start:stop]
        # SSIM is unchanged by a common scale of images and data range, and the (co)variances by a
        # shift: scale by 1 / L and centre per image and channel, so float32 keeps full accuracy.
        scale = torch.where(rng > 0, rng, torch.ones_like(rng)).to(dtype)
        pixels = torch.cat([gen_hwc[start:stop], ref_hwc[start:stop]], dim=3).to(dtype)  # b, H, W, 2C
        pixels = pixels * (1.0 / scale).view(b, 1, 1, 1)
        means = pixels.mean(dim=(1, 2))  # b, 2C
        shift = 0.5 * (means[:, :c] + means[:, c:])  # b, C
        pixels -= shift.repeat(1, 2).view(b, 1, 1, 2 * c)
        if crop < radius:
            pixels = _symmetric_pad(pixels, radius - crop)
        hp, wp = pixels.shape[1], pixels.shape[2]
        xy = pixels.reshape(b, hp * wp, 2 * c).transpose(1, 2).contiguous()  # b, 2C, HW (planar)
        planar = torch.empty(b, planes, hp * wp, dtype=dtype, device=device)
        planar[:, : 2 * c] = xy
        torch.mul(xy[:, :c], xy[:, :c], out=planar[:, 2 * c : 3 * c])
        torch.mul(xy[:, c:], xy[:, c:], out=planar[:, 3 * c : 4 * c])
        torch.mul(xy[:, :c], xy[:, c:], out=planar[:, 4 * c : 5 * c])
        planar[:, 5 * c :] = 0
        # channels-last b x planes x H x W (what the depthwise filters run fastest on)
        maps = planar.transpose(1, 2).contiguous().view(b, hp, wp, planes).permute(0, 3, 1, 2)
        filt = F.conv2d(F.conv2d(maps, w_row, groups=planes), w_col, groups=planes)
        if crop > radius:
            extra = crop - radius
            filt = filt[..., extra : filt.shape[-2] - extra, extra : filt.shape[-1] - extra]
        ho, wo = filt.shape[-2:]
        filt = filt.permute(0, 2, 3, 1).reshape(b, ho * wo, planes).transpose(1, 2).contiguous()  # b, planes, M
        ux, uy = filt[:, :c], filt[:, c : 2 * c]
        uxx, uyy, uxy = filt[:, 2 * c : 3 * c], filt[:, 3 * c : 4 * c], filt[:, 4 * c : 5 * c]
        c1 = ((spec.k1 * rng / scale) ** 2).to(dtype).view(b, 1, 1)
        c2 = ((spec.k2 * rng / scale) ** 2).to(dtype).view(b, 1, 1)
        sh = shift.view(b, c, 1)
        cross = ux * uy
        var_sum = torch.add(uxx, uyy).sub_(ux * ux).sub_(uy * uy)
        covar = torch.sub(uxy, cross)
        if cov_norm != 1.0:
            var_sum.mul_(cov_norm)
            covar.mul_(cov_norm)
        mx = ux.add(sh)
        my = uy.add(sh)
        num = (mx * my).mul_(2).add_(c1)
        den = mx.mul_(mx).addcmul_(my, my).add_(c1)
        num.mul_(covar.mul_(2).add_(c2))
        den.mul_(var_sum.add_(c2))
        out[start:stop] = num.div_(den).sum(dim=(1, 2), dtype=torch.float64) / (c * ho * wo)
    return out
