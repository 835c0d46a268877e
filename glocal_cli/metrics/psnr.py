"""Peak signal-to-noise ratio: the correct float PSNR and the PISE-lineage ``uint8-wraparound`` variant.

``psnr`` equals ``skimage.metrics.peak_signal_noise_ratio`` (float64 mean squared error; for uint8
inputs the squared differences are exact in float32 and summed in float64, the same number).

``psnr_uint8_wraparound`` reproduces the ~31 dB numbers of the PISE lineage: their script evaluates
``((a - b) ** 2).mean()`` on uint8 arrays without a float cast, so NumPy wraps both the difference
and its square modulo 256 before averaging. The result is *not* a PSNR of the images; it exists
only so that published tables can be reproduced, and it is labelled ``uint8-wraparound`` wherever it
appears.
"""

from __future__ import annotations

import functools

import torch

from glocal_cli.errors import InputError
from glocal_cli.metrics.ssim import COMPILE_MIN_IMAGES

WRAPAROUND_LABEL = "PSNR (uint8-wraparound: PISE-lineage bug, not a true PSNR)"
"""Label shown wherever the wrap-around variant appears."""


def _check(generated: torch.Tensor, reference: torch.Tensor) -> None:
    if generated.shape != reference.shape:
        raise InputError(
            f"PSNR needs images of equal size, got {tuple(generated.shape)} and {tuple(reference.shape)}"
        )
    if generated.ndim < 2:
        raise InputError(f"PSNR expects (B, ...) batches, got shape {tuple(generated.shape)}")


_compile_failed: set[tuple] = set()


@functools.cache
def _compiled_sse():
    """``torch.compile``'d per-image sum of squared uint8 differences: one fused pass, float64 sum."""

    def fn(gen: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        diff = gen.to(torch.float32) - ref.to(torch.float32)
        return (diff * diff).sum(dim=tuple(range(1, diff.ndim)), dtype=torch.float64)

    return torch.compile(fn, dynamic=False)


def mse(generated: torch.Tensor, reference: torch.Tensor, *, compile: bool | None = None) -> torch.Tensor:
    """Per-image mean squared error in float64, shape (B,).

    ``compile`` (uint8 on CPU): True uses a ``torch.compile``'d single pass (the first call per shape
    compiles for a few seconds), None only from ``COMPILE_MIN_IMAGES`` images up, False never.
    """
    _check(generated, reference)
    key = (tuple(generated.shape), tuple(generated.stride()), tuple(reference.stride()))
    if (
        generated.dtype == torch.uint8
        and reference.dtype == torch.uint8
        and generated.device.type == "cpu"
        and compile is not False
        and (compile is True or generated.shape[0] >= COMPILE_MIN_IMAGES)
        and key not in _compile_failed
    ):
        try:
            return _compiled_sse()(generated, reference) / generated[0].numel()
        except Exception as exc:  # noqa: BLE001 - any Inductor/compiler failure: fall back to eager
            _compile_failed.add(key)
            from glocal_cli.console import warn

            warn(f"compiled PSNR unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); using eager")
    if generated.dtype == torch.uint8 and reference.dtype == torch.uint8:
        # exact and ~10x faster than float64: differences (|d| <= 255) and squares (<= 65025) are
        # exact in float32, and the sum accumulates in float64 (integers below 2^53: exact)
        diff = generated.to(torch.float32).sub_(reference)
        total = diff.mul_(diff).sum(dim=tuple(range(1, diff.ndim)), dtype=torch.float64)
        return total / diff[0].numel()
    diff = generated.to(torch.float64) - reference.to(torch.float64)
    return (diff * diff).flatten(1).mean(dim=1)


def psnr(generated: torch.Tensor, reference: torch.Tensor, data_range: float = 255.0, *,
         compile: bool | None = None) -> torch.Tensor:
    """Per-image PSNR in dB (float64, shape (B,)): ``10 log10(data_range^2 / mse)``; inf when equal.

    ``compile``: see :func:`mse`.
    """
    err = mse(generated, reference, compile=compile)
    return 10.0 * torch.log10(torch.as_tensor(data_range, dtype=torch.float64) ** 2 / err)


def wraparound_mse(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-image ``((a - b) ** 2).mean()`` evaluated the way NumPy does on uint8 arrays (mod 256)."""
    _check(generated, reference)
    if generated.dtype != torch.uint8 or reference.dtype != torch.uint8:
        raise InputError("the uint8-wraparound PSNR is defined on uint8 images only")
    diff = (generated.to(torch.int32) - reference.to(torch.int32)) % 256
    square = (diff * diff) % 256
    return square.to(torch.float64).flatten(1).mean(dim=1)


def psnr_uint8_wraparound(generated: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The PISE-lineage "PSNR": ``20 log10(255) - 10 log10(wraparound_mse)`` per image (float64, (B,)).

    Not a valid PSNR (see the module docstring); use :func:`psnr` for a correct value.
    """
    err = wraparound_mse(generated, reference)
    return 20.0 * torch.log10(torch.tensor(255.0, dtype=torch.float64)) - 10.0 * torch.log10(err)
