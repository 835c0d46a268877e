"""Frechet Inception Distance with pytorch-fid's InceptionV3 (the TF 2015-12-05 FID weights).

* :class:`FIDInceptionV3` is torchvision's Inception3 patched into the TF FID graph (pytorch-fid's
  ``FIDInceptionA/C/E_1/E_2`` blocks), loaded strictly from ``pt_inception-2015-12-05-*.pth`` with
  ``torch.load(weights_only=True)``. Input: RGB in [0, 1]; it resizes to 299x299 (bilinear,
  ``align_corners=False``) and maps to [-1, 1] like pytorch-fid, and returns the 2048-d pool3
  features plus the 1008-way logits used by the Inception Score.
* :class:`FeatureStats` accumulates the mean and covariance (float64, unbiased) batch by batch.
* :func:`frechet_distance` computes ``|mu1-mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` through the
  symmetric form ``Tr((S1^(1/2) S2 S1^(1/2))^(1/2))`` (eigen-decompositions in float64 on the
  evaluation device, no complex parts), or exactly through an n x n matrix when the generated set
  has n <= 2048 images.
* Real-set statistics are cached as .npz, keyed by a hash of the file list (names and sizes), the
  protocol's FID recipe and the weights file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glocal_cli.errors import InputError, NotAvailableError, WeightsError

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
"""File name of pytorch-fid's FID Inception weights."""
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME
)
"""Where pytorch-fid publishes them."""
FID_WEIGHTS_GLOB = "pt_inception-2015-12-05-*.pth"
"""Any file of this pattern in the torch hub checkpoint folder is accepted."""
FEATURE_DIM = 2048
"""Dimension of the pool3 features."""
NUM_CLASSES = 1008
"""Classes of the TF Inception softmax (used by the Inception Score)."""


def hub_checkpoint_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where torch (and pytorch-fid) cache downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_inception_message() -> str:
    """One line telling the user which file to put where."""
    return (
        f"FID/IS need pytorch-fid's InceptionV3 weights: put {FID_WEIGHTS_NAME} ({FID_WEIGHTS_URL}) "
        f"in {hub_checkpoint_dir()}/ or pass --inception-weights PATH"
    )


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The FID Inception weights file: ``path`` (a file, or a folder holding one), else the hub cache."""
    if path is not None and str(path) != "":
        p = Path(path).expanduser()
        if p.is_dir():
            found = sorted(p.glob(FID_WEIGHTS_GLOB))
            if not found:
                raise WeightsError(f"{p}: no {FID_WEIGHTS_GLOB} in this folder; {missing_inception_message()}")
            return found[0]
        if not p.is_file():
            raise WeightsError(f"{p}: no such weights file; {missing_inception_message()}")
        return p
    found = sorted(hub_checkpoint_dir().glob(FID_WEIGHTS_GLOB))
    if not found:
        raise WeightsError(missing_inception_message())
    return found[0]


def _fid_blocks():
    try:
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise NotAvailableError("FID/IS need the pytorch-fid package (pip install pytorch-fid)") from exc
    return FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2


class FIDInceptionV3(nn.Module):
    """The TF FID InceptionV3: pool3 features (B, 2048) and softmax logits (B, 1008) of RGB in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        block_a, block_c, block_e1, block_e2 = _fid_blocks()
        net = torchvision.models.inception_v3(
            weights=None, aux_logits=False, num_classes=NUM_CLASSES, init_weights=False
        )
        net.Mixed_5b = block_a(192, pool_features=32)
        net.Mixed_5c = block_a(256, pool_features=64)
        net.Mixed_5d = block_a(288, pool_features=64)
        net.Mixed_6b = block_c(768, channels_7x7=128)
        net.Mixed_6c = block_c(768, channels_7x7=160)
        net.Mixed_6d = block_c(768, channels_7x7=160)
        net.Mixed_6e = block_c(768, channels_7x7=192)
        net.Mixed_7b = block_e1(1280)
        net.Mixed_7c = block_e2(2048)
        self.net = net
        self.eval()
        for param in self.parameters():
            param.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path) -> FIDInceptionV3:
        """Build and load ``pt_inception-2015-12-05-*.pth`` strictly (``weights_only=True``)."""
        path = Path(path)
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            model = cls()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a weights problem
            raise WeightsError(f"{path}: cannot read Inception weights ({type(exc).__name__}: {exc})") from exc
        if not isinstance(state, dict):
            raise WeightsError(f"{path}: not a state dict of the FID InceptionV3")
        try:
            model.net.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise WeightsError(f"{path}: not pytorch-fid's FID InceptionV3 weights ({first})") from exc
        for param in model.parameters():
            param.requires_grad_(False)
        return model.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images`` (B, 3, H, W) in [0, 1] -> (pool3 (B, 2048), logits (B, 1008))."""
        net = self.net
        x = images
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = net.Conv2d_1a_3x3(x)
        x = net.Conv2d_2a_3x3(x)
        x = net.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = net.Conv2d_3b_1x1(x)
        x = net.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c,
                      net.Mixed_6d, net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c):
            x = block(x)
        pool = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)  # (B, 2048)
        logits = pool @ net.fc.weight.t()  # (B, 1008): the original IS script omits the bias
        return pool, logits


def random_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of the FID InceptionV3 with random (He-normal) convolutions, for tests and
    benchmarks that run without the real weights. FID/IS values computed with it are not meaningful."""
    gen = torch.Generator().manual_seed(seed)
    model = FIDInceptionV3()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
        model.net.fc.weight.copy_(torch.randn(model.net.fc.weight.shape, generator=gen) * 0.02)
    return model.net.state_dict()


class FeatureStats:
    """Running mean and (unbiased) covariance of feature vectors, accumulated in float64.

    While no more than ``dim`` vectors have been seen, the vectors themselves are kept too, so that
    :func:`frechet_distance` can use the exact low-rank form (much faster for small sets).
    """

    def __init__(self, dim: int = FEATURE_DIM) -> None:
        self.dim = dim
        self.count = 0
        self._sum: torch.Tensor | None = None
        self._outer: torch.Tensor | None = None
        self._rows: list[torch.Tensor] | None = []

    def update(self, features: torch.Tensor) -> None:
        """Add a batch of features (B, dim)."""
        f = features.detach().to(torch.float64).reshape(features.shape[0], -1)
        if f.shape[1] != self.dim:
            raise InputError(f"expected {self.dim}-d features, got {f.shape[1]}")
        if self._sum is None:
            self._sum = torch.zeros(self.dim, dtype=torch.float64, device=f.device)
            self._outer = torch.zeros(self.dim, self.dim, dtype=torch.float64, device=f.device)
        self._sum += f.sum(dim=0)
        self._outer += f.t() @ f
        self.count += f.shape[0]
        if self._rows is not None:
            self._rows.append(f.cpu())
            if self.count > self.dim:
                self._rows = None

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu (dim,), sigma (dim, dim)) as float64 NumPy arrays; needs at least two samples."""
        if self.count < 2 or self._sum is None or self._outer is None:
            raise InputError(f"FID statistics need at least 2 images, got {self.count}")
        n = self.count
        mu = self._sum / n
        cov = (self._outer - n * torch.outer(mu, mu)) / (n - 1)
        return mu.cpu().numpy(), cov.cpu().numpy()

    def factor(self) -> np.ndarray | None:
        """F (n, dim) with sigma = F^T F (centred features / sqrt(n - 1)), or None once n > dim."""
        if self._rows is None or self.count < 2:
            return None
        rows = torch.cat(self._rows)
        centred = rows - rows.mean(dim=0, keepdim=True)
        return (centred / (self.count - 1) ** 0.5).numpy()


def _as_t(x: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)


def _trace_sqrt_product(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Tr((S1 S2)^(1/2)) = Tr((S1^(1/2) S2 S1^(1/2))^(1/2)) for symmetric PSD S1, S2."""
    vals, vecs = torch.linalg.eigh(0.5 * (s1 + s1.T))
    root = (vecs * vals.clamp_min(0).sqrt()) @ vecs.T
    middle = root @ s2 @ root
    return torch.linalg.eigvalsh(0.5 * (middle + middle.T)).clamp_min(0).sqrt().sum()


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    *,
    factor1: np.ndarray | None = None,
    device: torch.device | str = "cpu",
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``|mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))``, with the trace of the matrix square
    root taken through the symmetric form ``S1^(1/2) S2 S1^(1/2)`` (no complex parts). When
    ``factor1`` (F with sigma1 = F^T F, n rows) is given, the same trace is computed exactly from the
    n x n matrix ``F S2 F^T`` (the non-zero eigenvalues of S1 S2), which is much faster for n < dim.
    ``device`` runs the eigen-decompositions there (CUDA for 2048-d statistics of large sets).
    """
    mu1_t, mu2_t = _as_t(np.atleast_1d(mu1), device), _as_t(np.atleast_1d(mu2), device)
    s1, s2 = _as_t(np.atleast_2d(sigma1), device), _as_t(np.atleast_2d(sigma2), device)
    if mu1_t.shape != mu2_t.shape or s1.shape != s2.shape or s1.shape != (mu1_t.numel(), mu1_t.numel()):
        raise InputError(
            f"FID statistics of different shapes: mu {tuple(mu1_t.shape)} vs {tuple(mu2_t.shape)}, "
            f"sigma {tuple(s1.shape)} vs {tuple(s2.shape)}"
        )
    s2 = 0.5 * (s2 + s2.T)
    if factor1 is not None:
        f = _as_t(factor1, device)
        small = f @ s2 @ f.T
        tr_covmean = torch.linalg.eigvalsh(0.5 * (small + small.T)).clamp_min(0).sqrt().sum()
    else:
        tr_covmean = _trace_sqrt_product(s1, s2)
    diff = mu1_t - mu2_t
    return float(diff @ diff + torch.trace(s1) + torch.trace(s2) - 2.0 * tr_covmean)


def default_stats_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/glocal/fid-stats`` (``~/.cache/glocal/fid-stats``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "glocal" / "fid-stats"


def stats_cache_key(entries: Iterable[str], recipe: str, weights: Path | None) -> str:
    """SHA-256 of the sorted file list (one entry per image: name, size, panel box), the FID recipe
    (protocol and resize) and the weights file (name and size)."""
    h = hashlib.sha256()
    h.update(f"recipe={recipe}\n".encode())
    if weights is not None:
        h.update(f"weights={weights.name}:{weights.stat().st_size}\n".encode())
    for entry in sorted(entries):
        h.update(f"{entry}\n".encode())
    return h.hexdigest()


def load_cached_stats(cache_dir: Path, key: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(mu, sigma, count) cached under ``key``, or None."""
    path = cache_dir / f"fid-stats-{key[:24]}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            return data["mu"], data["sigma"], int(data["count"])
    except (OSError, KeyError, ValueError):
        return None


def save_cached_stats(cache_dir: Path, key: str, mu: np.ndarray, sigma: np.ndarray, count: int,
                      meta: dict) -> Path:
    """Write the statistics as ``fid-stats-<key>.npz`` (atomically) and return the path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"fid-stats-{key[:24]}.npz"
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, mu=mu, sigma=sigma, count=np.int64(count), key=np.str_(key), meta=np.str_(json.dumps(meta)))
    tmp.replace(path)
    return path
