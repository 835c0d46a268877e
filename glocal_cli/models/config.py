"""Configuration of the GLocal networks and losses (owned by the model core)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the GLocal generator and its sub-networks."""

    mode: Literal["transfer", "inpaint"] = "transfer"
    """Task: pose transfer, or texture inpainting (masked source, Pt = Ps, identity flow)."""
    base_channels: int = 64
    """Channel width of the first encoder level; deeper levels double it up to max_channels."""
    max_channels: int = 256
    """Upper bound on the channel width of any level."""
    num_downsample: int = 3
    """Number of stride-2 levels in the encoders (the network stride is 2**num_downsample)."""
    flow: Literal["learned", "none"] = "learned"
    """Flow and visibility estimator: 'learned' (2D estimator) or 'none' (identity flow)."""
    use_ggr: bool = True
    """Global Graph Reasoning on (ablation 'w/o GGR' when false)."""
    use_lst: bool = True
    """Local Structure Transfer on (ablation 'w/o LST' when false)."""


@dataclass(frozen=True)
class LossConfig:
    """Loss weights of Eq. 12 and loss options."""

    focal_eta: float = 2.0
    """Focusing parameter eta of the focal loss (Eq. 1); 0 gives cross-entropy."""
    semantic_loss: Literal["focal", "ce"] = "focal"
    """Semantic loss: focal (Eq. 1) or plain cross-entropy (ablation 'w/o FL')."""
    w_semantic: float = 1.0
    """alpha_Sg: weight of the semantic loss."""
    w_l1: float = 5.0
    """alpha_L1: weight of the pixel L1 loss (Eq. 9)."""
    w_perceptual: float = 1.0
    """alpha_perc: weight of the VGG-19 perceptual loss (Eq. 10)."""
    w_adv: float = 2.0
    """alpha_adv: weight of the adversarial loss (Eq. 11)."""
