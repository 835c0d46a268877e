"""Semantic-prediction loss: focal loss (Eq. 1) and plain cross-entropy (ablation "w/o FL")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _labels(target: torch.Tensor) -> torch.Tensor:
    """Label map ``(B, H, W)`` from a label map or a one-hot/soft ``(B, N, H, W)`` map."""
    return target.argmax(1) if target.dim() == 4 else target.long()


class FocalLoss(nn.Module):
    """Eq. 1: ``-(1 - p_t)^eta log p_t``, averaged over pixels.

    ``form='softmax'`` (default): ``p_t`` is the softmax probability of the true class (Lin et al.'s
    multi-class focal loss; equals cross-entropy at ``eta = 0``). ``form='binary'``: Eq. 1 read
    literally per class (one-vs-rest on the softmax probabilities ``Sg``: ``p_t = Sg`` where
    ``St = 1``, ``1 - Sg`` where ``St = 0``), summed over classes.
    """

    def __init__(self, eta: float = 2.0, form: str = "softmax") -> None:
        super().__init__()
        self.eta, self.form = eta, form

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``logits (B, N, H, W)``, ``target`` label map ``(B, H, W)`` or one-hot ``(B, N, H, W)``."""
        logits = logits.float()
        labels = _labels(target)
        log_p = F.log_softmax(logits, dim=1)
        if self.form == "binary":
            onehot = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
            p = log_p.exp()
            log_pt = torch.where(onehot > 0, log_p, torch.log1p(-p.clamp(max=1 - 1e-6)))
            pt = torch.where(onehot > 0, p, 1 - p)
            return (-(1 - pt).pow(self.eta) * log_pt).sum(1).mean()
        log_pt = log_p.gather(1, labels.unsqueeze(1)).squeeze(1)
        weight = (1 - log_pt.exp()).pow(self.eta) if self.eta else torch.ones_like(log_pt)
        return (-weight * log_pt).mean()


def semantic_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "focal", eta: float = 2.0,
                  form: str = "softmax") -> torch.Tensor:
    """``loss.semantic_loss``: 'focal' (Eq. 1) or 'ce' (the "w/o FL" ablation)."""
    if kind == "ce":
        return F.cross_entropy(logits.float(), _labels(target))
    return FocalLoss(eta, form)(logits, target)
