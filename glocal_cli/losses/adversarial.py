"""Adversarial objectives for ``D(I | Is, Pt)``: the log form of Eq. 11, least squares, hinge.

For the log form the discriminator maximises ``log D(It) + log(1 - D(G))`` (binary cross-entropy on
logits) and the generator uses the usual non-saturating ``-log D(G)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class AdversarialLoss:
    """``kind`` in {'log', 'lsgan', 'hinge'}; inputs are raw discriminator outputs (logits)."""

    def __init__(self, kind: str = "log") -> None:
        if kind not in ("log", "lsgan", "hinge"):
            raise ValueError(f"adversarial loss {kind!r}: expected 'log', 'lsgan' or 'hinge'")
        self.kind = kind

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Loss minimised by D (``fake`` must be detached from G by the caller)."""
        real, fake = real.float(), fake.float()
        if self.kind == "log":
            return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if self.kind == "lsgan":
            return ((real - 1) ** 2).mean() + (fake**2).mean()
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def generator(self, fake: torch.Tensor) -> torch.Tensor:
        """Loss minimised by G."""
        fake = fake.float()
        if self.kind == "log":
            return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        if self.kind == "lsgan":
            return ((fake - 1) ** 2).mean()
        return -fake.mean()
