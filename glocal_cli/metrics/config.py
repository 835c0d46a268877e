"""Configuration of evaluation (``glocal eval`` and :func:`glocal_cli.metrics.evaluate.evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProtocolName = Literal["clean", "paper", "gfla", "pise", "pidm"]


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings of ``glocal eval``."""

    protocol: ProtocolName = "clean"
    """Named metric protocol (see docs/metrics.md): clean, paper, gfla, pise or pidm."""
    metrics: tuple[str, ...] = ()
    """Subset of the protocol's metrics to compute (e.g. [ssim, psnr]); empty = every metric of the protocol."""
    batch_size: int = 32
    """Image pairs per batch (SSIM, PSNR, LPIPS and Inception features)."""
    workers: int = 2
    """DataLoader worker processes that decode images while metrics run (0: in the main process)."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto (CUDA when available)."""
    worst_k: int = 16
    """Number of pairs with the lowest SSIM shown in the worst-results grid (0: no grid)."""
    is_splits: int = 10
    """Number of splits of the Inception Score (10 in every published recipe)."""
    lpips_net: Literal["alex", "vgg"] = "alex"
    """LPIPS backbone: alex (what every peer reports) or vgg."""
    stats_cache_dir: str = ""
    """Folder of cached real-set FID statistics (.npz); empty = $XDG_CACHE_HOME/glocal/fid-stats
    (~/.cache/glocal/fid-stats)."""
    ssim_precision: Literal["float32", "float64"] = "float32"
    """Arithmetic of the SSIM filters: float32 (centred data, within 1e-5 of float64, several times
    faster on CPU) or float64."""
    compile: Literal["auto", "on", "off"] = "auto"
    """Fused (torch.compile) SSIM/PSNR kernels on CPU: 'auto' = when at least 256 pairs are evaluated
    (the first batch then compiles for a few seconds; 8-17x faster than scikit-image afterwards, see
    docs/metrics.md), 'on' = always, 'off' = never. Needs a C++ compiler; falls back when it fails."""
    histogram_bins: int = 30
    """Number of bins of each per-image histogram in histogram.png."""

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.worst_k < 0:
            raise ValueError("worst_k must be >= 0")
        if self.is_splits <= 0:
            raise ValueError("is_splits must be positive")
        if self.histogram_bins <= 0:
            raise ValueError("histogram_bins must be positive")
