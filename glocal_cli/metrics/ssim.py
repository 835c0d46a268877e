"""Structural similarity (SSIM), batched in torch, equal to scikit-image's ``structural_similarity``.

scikit-image filters each channel with a Gaussian (``sigma``, truncated at 3.5 sigma) or a uniform
``win_size`` window, builds the SSIM map and averages it after cropping ``(win_size - 1) // 2``
pixels from every border; a colour image's SSIM is the mean of its per-channel SSIMs. Because the
crop removes exactly the pixels whose window leaves the image, a *valid* convolution gives the same
numbers without any padding. When a caller asks for a crop smaller than the filter radius, the
missing border is filled the way SciPy's ``mode='reflect'`` does (half-sample symmetric), so the
result stays equal to scikit-image in that case too.

Per channel the filters run on four maps of ``s = x + y`` and ``d = x - y`` (``s, d, s^2, d^2``),
which give every SSIM term exactly (see :func:`ssim`), as ONE grouped depthwise convolution per
direction over all maps of a chunk of images, channels-last, *valid* (Gaussian: separable 1 x k and
k x 1; uniform: a box factored into q taps and p dilated taps). In ``float32`` the data are scaled
by ``1 / data_range`` and ``s`` is centred per image and channel (SSIM is unchanged by a common
scale of images and data range, variances by a shift; the mean is added back for the luminance
term), which keeps float32 within 1e-6 of scikit-image's float64 result on real images.
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
    return w_row, w_col


def _box_factors(k: int) -> tuple[int, int]:
    """``(p, q)`` with ``p * q == k`` and p the largest divisor <= sqrt(k) (51 -> (3, 17); a prime -> (1, k))."""
    p = 1
    for d in range(2, int(k**0.5) + 1):
        if k % d == 0:
            p = d
    return p, k // p


def _box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """Valid k x k box means of ``x`` (b x P x H x W, channels-last), as depthwise convolutions.

    A box of ``k = p * q`` taps is a box of q taps followed by p taps ``q`` apart (a dilated
    convolution): 17 + 3 = 20 multiply-adds per pixel and direction for the 51-pixel GFLA window
    instead of 51. The taps are ones (exact), the sums are scaled once at the end.
    """
    planes = x.shape[1]
    p, q = _box_factors(k)
    ones = functools.partial(torch.ones, dtype=x.dtype, device=x.device)
    x = F.conv2d(x, ones(planes, 1, 1, q), groups=planes)
    if p > 1:
        x = F.conv2d(x, ones(planes, 1, 1, p), groups=planes, dilation=(1, q))
    x = F.conv2d(x, ones(planes, 1, q, 1), groups=planes)
    if p > 1:
        x = F.conv2d(x, ones(planes, 1, p, 1), groups=planes, dilation=(q, 1))
    return x.mul_(1.0 / (k * k))


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the heap (no ``munmap`` / trim of the multi-MB SSIM buffers).

    By default glibc hands every freed block above a (dynamic) threshold back to the kernel, so each
    chunk's temporaries are page-faulted and zeroed again: measured here, that made the two depthwise
    convolutions of a 256x176 image 3.3 ms instead of 0.55 ms. Raising ``M_MMAP_THRESHOLD`` and
    ``M_TRIM_THRESHOLD`` to 256 MiB keeps up to that much freed memory for reuse. This is
    process-wide, so the library never applies it implicitly: the ``glocal eval`` command (a process
    of its own) and the benchmark call it; a library user may. A no-op (False) outside glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    size = 256 * 1024 * 1024
    return bool(mallopt(m_mmap_threshold, size)) and bool(mallopt(m_trim_threshold, size))


def _data_range(generated: torch.Tensor, data_range: DataRange) -> torch.Tensor:
    if data_range == "generated":
        flat = generated.flatten(1)
        return (flat.amax(dim=1).to(torch.float64) - flat.amin(dim=1).to(torch.float64))
    return torch.full((generated.shape[0],), float(data_range), dtype=torch.float64, device=generated.device)


COMPILE_MIN_IMAGES = 256
"""``ssim(..., compile=None)`` (and ``psnr``) use the compiled CPU path from this many images of one call up."""

_compile_failed: set[tuple] = set()


def _filter_stages(spec: SSIMSpec) -> tuple[tuple[tuple[float, ...], int], ...]:
    """The 1-D filter as stages of (taps, dilation): Gaussian = one stage; box = q ones + p dilated ones."""
    if spec.gaussian_weights:
        return ((tuple(float(t) for t in _window_1d(spec, torch.float64, torch.device("cpu"))), 1),)
    p, q = _box_factors(spec.effective_win_size)
    stages = [((1.0,) * q, 1)]
    if p > 1:
        stages.append(((1.0,) * p, q))
    return tuple(stages)


@functools.lru_cache(maxsize=16)
def _compiled_ssim(stages: tuple, scale: float, half_cov: float):
    """A ``torch.compile``'d SSIM of ONE image (1, C, H, W), contiguous: returns the SSIM-map sum (float64).

    The filters are written as sums of shifted slices, so Inductor fuses building the maps from the
    pixels with the horizontal pass, and the vertical pass with the SSIM formula and the mean: two
    or three C++ loops per image instead of ~30 passes over multi-MB maps.
    """

    def filt1d(m: torch.Tensor, dim: int) -> torch.Tensor:
        for taps, dil in stages:
            n = m.shape[dim] - dil * (len(taps) - 1)
            m = sum(t * m.narrow(dim, i * dil, n) for i, t in enumerate(taps))
        return m

    def filt(m: torch.Tensor) -> torch.Tensor:
        out = filt1d(filt1d(m, 3), 2)
        return out * scale if scale != 1.0 else out

    def fn(gen, ref, inv, c1, c2):
        x = gen.to(torch.float32)
        y = ref.to(torch.float32)
        s = (x + y) * inv
        d = (x - y) * inv
        s_mean = s.mean(dim=(2, 3), keepdim=True)
        s = s - s_mean
        mu_s = filt(s)
        mu_d = filt(d)
        var_s = filt(s * s) - mu_s * mu_s
        var_d = filt(d * d) - mu_d * mu_d
        ms = mu_s + s_mean
        mu_s2 = ms * ms
        mu_d2 = mu_d * mu_d
        num = ((mu_s2 - mu_d2) * 0.5 + c1) * ((var_s - var_d) * half_cov + c2)
        den = ((mu_s2 + mu_d2) * 0.5 + c1) * ((var_s + var_d) * half_cov + c2)
        return (num / den).sum(dtype=torch.float64)

    # every recipe and image size is one more compiled version of the same code object; Dynamo runs
    # the (slow, unfused) Python function once a code object has ``recompile_limit`` (8) versions
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    return torch.compile(fn, dynamic=False)


def _use_compiled(compile: bool | None, n: int, device: torch.device, key: tuple) -> bool:
    if compile is False or device.type != "cpu" or key in _compile_failed:
        return False
    return compile is True or n >= COMPILE_MIN_IMAGES


def _ssim_compiled(generated: torch.Tensor, reference: torch.Tensor, spec: SSIMSpec,
                   ranges: torch.Tensor) -> torch.Tensor:
    n, c, h, w = generated.shape
    win = spec.effective_win_size
    n_window = win * win
    cov_norm = n_window / (n_window - 1) if spec.use_sample_covariance else 1.0
    scale = 1.0 if spec.gaussian_weights else 1.0 / n_window
    fn = _compiled_ssim(_filter_stages(spec), scale, 0.5 * cov_norm)
    crop = (win - 1) // 2
    count = c * (h - 2 * crop) * (w - 2 * crop)
    safe = torch.where(ranges > 0, ranges, torch.ones_like(ranges))
    inv = (1.0 / safe).to(torch.float32)
    c1 = (spec.k1**2 * (ranges / safe) ** 2).to(torch.float32)
    c2 = (spec.k2**2 * (ranges / safe) ** 2).to(torch.float32)
    out = torch.empty(n, dtype=torch.float64)
    for i in range(n):
        total = fn(generated[i : i + 1].contiguous(), reference[i : i + 1].contiguous(),
                   inv[i].view(1, 1, 1, 1), c1[i].view(1, 1, 1, 1), c2[i].view(1, 1, 1, 1))
        out[i] = total / count
    return out


def ssim(
    generated: torch.Tensor,
    reference: torch.Tensor,
    spec: SSIMSpec | None = None,
    *,
    precision: Literal["float32", "float64"] = "float32",
    chunk: int | None = None,
    compile: bool | None = None,
) -> torch.Tensor:
    """Per-image SSIM of two batches, equal to ``skimage.metrics.structural_similarity``.

    ``generated`` and ``reference`` are (B, C, H, W) tensors (uint8 or float, any memory layout;
    channels-last, i.e. decoded H x W x C images permuted, is fastest) on the scale the spec's data
    range refers to (0..255 for the recipes in this package). Colour images get the mean of their
    per-channel SSIMs (scikit-image's ``channel_axis``). Returns a float64 tensor (B,) on the input's
    device. ``chunk`` images are processed at a time (default: 2 on CPU, keeping the working set in
    cache; 32 on CUDA).

    Per image and channel the filters run on four maps of the sum ``s = x + y`` and difference
    ``d = x - y`` (scaled by 1 / L and ``s`` centred): ``s, d, s^2, d^2``. They give every SSIM term
    exactly: ``2 mu_x mu_y = (mu_s^2 - mu_d^2) / 2``, ``mu_x^2 + mu_y^2 = (mu_s^2 + mu_d^2) / 2``,
    ``2 cov_xy = (var_s - var_d) / 2`` and ``var_x + var_y = (var_s + var_d) / 2``: four filtered maps
    per channel instead of five. All maps of a chunk (channels-last, zero-padded to a multiple of 8
    planes) go through one depthwise convolution per direction (Gaussian window), or through
    a box of ``p * q`` taps factored into q taps and p dilated taps (uniform window: 17 + 3 instead of
    51 multiply-adds per pixel and direction for GFLA's 51x51).

    ``compile`` (CPU, float32): True runs a ``torch.compile``'d (Inductor) kernel per image that
    fuses the maps, filters, formula and mean (several times faster; the first call per image size
    and recipe compiles C++ for several seconds); None (default) does so only from
    ``COMPILE_MIN_IMAGES`` images per call up; False never. Any compile error falls back to eager.
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
    chunk = chunk or (32 if device.type == "cuda" else 2)
    # 4C maps; for the convolutions zero-padded to a multiple of 8 planes (vector width of the filters)
    planes = -(-4 * c // 8) * 8
    if spec.gaussian_weights:
        w_row, w_col = _weights(spec, planes, dtype, device)
        radius = (w_row.shape[-1] - 1) // 2
    else:
        radius = (win - 1) // 2
    crop = (win - 1) // 2
    n_window = win * win
    cov_norm = n_window / (n_window - 1) if spec.use_sample_covariance else 1.0
    ranges = _data_range(generated, spec.data_range)
    key = (spec, h, w, generated.dtype)
    radius_ok = not spec.gaussian_weights or int(TRUNCATE * spec.sigma + 0.5) == (win - 1) // 2
    if precision == "float32" and radius_ok and _use_compiled(compile, n, device, key):
        try:
            return _ssim_compiled(generated, reference, spec, ranges)
        except Exception as exc:  # noqa: BLE001 - any Inductor/compiler failure: fall back to eager
            _compile_failed.add(key)
            from glocal_cli.console import warn

            warn(f"compiled SSIM unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); using eager")
    # B x H x W x C views: free for channels-last inputs (images decoded as H x W x C)
    gen_hwc = generated.permute(0, 2, 3, 1)
    ref_hwc = reference.permute(0, 2, 3, 1)
    out = torch.empty(n, dtype=torch.float64, device=device)

    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        b = stop - start
        rng = ranges[start:stop]
        # SSIM is unchanged by a common scale of images and data range: scale by 1 / L (float32 keeps
        # full accuracy on values near 1). Variances are unchanged by a shift: s is centred per image
        # and channel (its mean is added back for the luminance term).
        inv = (1.0 / torch.where(rng > 0, rng, torch.ones_like(rng))).to(dtype).view(b, 1, 1, 1)
        x = gen_hwc[start:stop].to(dtype)
        y = ref_hwc[start:stop].to(dtype)
        s = torch.add(x, y).mul_(inv)
        d = torch.sub(x, y).mul_(inv)
        s_mean = s.mean(dim=(1, 2), keepdim=True)  # b, 1, 1, C
        s.sub_(s_mean)
        parts = [s, d, s * s, d * d]
        if planes > 4 * c:
            parts.append(torch.zeros(b, h, w, planes - 4 * c, dtype=dtype, device=device))
        maps = torch.cat(parts, dim=3)  # b, H, W, planes (contiguous = channels-last b, planes, H, W)
        if crop < radius:
            maps = _symmetric_pad(maps, radius - crop)
        nchw = maps.permute(0, 3, 1, 2)  # channels-last view
        if spec.gaussian_weights:
            filt = F.conv2d(F.conv2d(nchw, w_row, groups=planes), w_col, groups=planes).permute(0, 2, 3, 1)
            if crop > radius:
                extra = crop - radius
                filt = filt[:, extra : filt.shape[1] - extra, extra : filt.shape[2] - extra]
        else:
            filt = _box_mean(nchw, win).permute(0, 2, 3, 1)
        ho, wo = filt.shape[1], filt.shape[2]
        # filt: b, Ho, Wo, planes = [mu_s, mu_d, E s^2, E d^2, 0...] per channel
        mu = filt[..., : 2 * c]  # mu_s (of the centred s), mu_d
        var = torch.mul(mu, mu).neg_().add_(filt[..., 2 * c : 4 * c])  # var_s, var_d (population)
        sq = mu.add(torch.cat([s_mean, torch.zeros_like(s_mean)], dim=3)).square_()  # true mu_s^2, mu_d^2
        c1 = (spec.k1**2 * (rng * inv.view(b).to(torch.float64)) ** 2).to(dtype).view(b, 1, 1, 1)
        c2 = (spec.k2**2 * (rng * inv.view(b).to(torch.float64)) ** 2).to(dtype).view(b, 1, 1, 1)
        half_cov = 0.5 * cov_norm
        mu_s2, mu_d2 = sq[..., :c], sq[..., c:]
        var_s, var_d = var[..., :c], var[..., c:]
        num = torch.sub(mu_s2, mu_d2).mul_(0.5).add_(c1)  # 2 mu_x mu_y + C1
        num.mul_(torch.sub(var_s, var_d).mul_(half_cov).add_(c2))  # x (2 cov_xy + C2)
        den = torch.add(mu_s2, mu_d2).mul_(0.5).add_(c1)  # mu_x^2 + mu_y^2 + C1
        den.mul_(torch.add(var_s, var_d).mul_(half_cov).add_(c2))  # x (var_x + var_y + C2)
        out[start:stop] = num.div_(den).sum(dim=(1, 2, 3), dtype=torch.float64) / (c * ho * wo)
    return out
