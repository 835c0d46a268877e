"""Inception Score (Salimans et al. 2016) from Inception class logits.

IS = exp(E_x KL(p(y|x) || p(y))), computed on ``splits`` consecutive, equal-sized parts of the
images (part ``i`` = rows ``i*N//splits`` to ``(i+1)*N//splits``, the split rule of the original
OpenAI script that the PATN lineage runs); the score is the mean over parts and the spread their
standard deviation. The logits come from the FID InceptionV3 (``glocal_cli.metrics.fid``): pool3
features times the 1008-way softmax weights *without* the bias, as the original script does.
"""

from __future__ import annotations

import numpy as np
import torch

from glocal_cli.errors import InputError


def inception_score_from_probs(probs: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score of class probabilities ``probs`` (N, K)."""
    p = torch.as_tensor(probs).to(torch.float64)
    if p.ndim != 2:
        raise InputError(f"Inception Score expects (N, classes) probabilities, got shape {tuple(p.shape)}")
    n = p.shape[0]
    if n < splits:
        raise InputError(f"Inception Score with {splits} splits needs at least {splits} images, got {n}")
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(dim=0, keepdim=True)
        kl = part * (torch.log(part) - torch.log(marginal))
        kl = torch.nan_to_num(kl, nan=0.0)  # 0 * log 0 = 0
        scores.append(torch.exp(kl.sum(dim=1).mean()).item())
    arr = np.asarray(scores)
    return float(arr.mean()), float(arr.std())


def inception_score(logits: np.ndarray | torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of the Inception Score of class ``logits`` (N, K) (softmax taken here, float64)."""
    z = torch.as_tensor(logits).to(torch.float64)
    return inception_score_from_probs(torch.softmax(z, dim=1), splits)
