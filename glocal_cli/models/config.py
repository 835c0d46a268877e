"""Configuration of the GLocal networks and losses (owned by the model core).

Widths follow one rule everywhere: level ``l`` of an encoder/decoder has
``min(base * 2**l, max)`` channels, level 0 being the full image frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the GLocal generator and its sub-networks."""

    mode: Literal["transfer", "inpaint"] = "transfer"
    """Task: pose transfer, or texture inpainting (masked source, Pt = Ps, identity flow)."""
    base_channels: int = 32
    """Channel width of the full-resolution level of the generator encoders/decoder; deeper levels double it."""
    max_channels: int = 256
    """Upper bound on the channel width of any generator level (the width C of F_I, F_o, F_g)."""
    num_downsample: int = 3
    """Number of stride-2 levels in the generator encoders (the network stride is 2**num_downsample)."""
    res_blocks: int = 2
    """Residual blocks at the bottleneck of the generator (split between fusion and decoder)."""
    semantic_channels: int = 32
    """Width of the first level of the semantic-prediction U-Net (pix2pix style)."""
    semantic_max_channels: int = 256
    """Upper bound on the channel width of the semantic U-Net."""
    semantic_depth: int = 5
    """Stride-2 levels of the semantic U-Net (the input is padded internally to a multiple of 2**depth)."""
    flow: Literal["learned", "none"] = "learned"
    """Flow and visibility estimator: 'learned' (2D estimator) or 'none' (identity flow, all visible)."""
    flow_channels: int = 32
    """Width of the first level of the flow/visibility estimator."""
    flow_max_channels: int = 256
    """Upper bound on the channel width of the flow estimator."""
    flow_depth: int = 5
    """Stride-2 levels of the flow estimator encoder (padded internally; must be >= num_downsample)."""
    flow_levels: int = 2
    """Flow pyramid levels: strides 2**num_downsample, 2**(num_downsample-1), ... (coarsest first)."""
    style_channels: int = 256
    """Width of the per-region style codes ST (the paper uses 512)."""
    use_ggr: bool = True
    """Global Graph Reasoning on (ablation 'w/o GGR' when false: no graph, occluded = visible treatment)."""
    ggr_steps: int = 3
    """Graph-propagation steps of the spatial graph convolution (Eq. 2); the body graph's radius is 3."""
    ggr_centre: Literal["upper", "face", "lower"] = "upper"
    """Region used as the gravity centre; e_i is the hop distance to it on the body graph (docs/design.md)."""
    ggr_norm: Literal["batch", "instance"] = "batch"
    """Normalisation of F_I in Eq. 4: BatchNorm (the paper) or InstanceNorm (batch-size independent)."""
    use_lst: bool = True
    """Local Structure Transfer on (ablation 'w/o LST' when false: F_o is decoded directly)."""
    lst_pool: int = 1
    """Extra average-pooling factor of LST on top of the network stride (1: LST runs at the bottleneck)."""
    lst_corr_channels: int = 64
    """Channels of the 1x1 projection of F_s fed to the self-correlation layer."""
    lst_r: int = 1
    """Patch radius r of the self-correlation (Eq. 5): (2r+1)^2 patch."""
    lst_d: int = 3
    """Maximum displacement d of the self-correlation (Eq. 5): (2d+1)^2 output channels."""
    lst_k: int = 3
    """Kernel size k of LocConv (Eq. 8)."""
    lst_hidden: int = 64
    """Hidden width of the point-wise kernel/bias predictor (the transported features)."""
    sinkhorn_iters: int = 20
    """Fixed number of log-domain unbalanced Sinkhorn iterations (Eq. 6)."""
    sinkhorn_epsilon: float = 0.05
    """Entropic regularisation epsilon of the unbalanced optimal transport."""
    sinkhorn_tau: float = 1.0
    """KL marginal-relaxation weight tau (POT's reg_m) of the unbalanced optimal transport."""
    lst_plan_norm: Literal["mass", "received"] = "mass"
    """Eq. 7 with the unbalanced plan TP (masses 1/n per position): 'mass' f_hat_j = sum_i TP_ij f_i / beta_j,
    the paper's TP f, so a target that receives little mass gets a small filter and bias; 'received' divides
    by the mass received (a convex combination everywhere: the normalisation of glocal 0.1.0)."""
    disc_channels: int = 64
    """Width of the first level of the PatchGAN discriminator."""
    disc_layers: int = 3
    """Stride-2 layers of the PatchGAN discriminator."""

    def __post_init__(self) -> None:
        positive = (
            "base_channels", "max_channels", "num_downsample", "semantic_channels", "semantic_max_channels",
            "semantic_depth", "flow_channels", "flow_max_channels", "flow_depth", "flow_levels",
            "style_channels", "ggr_steps", "lst_pool", "lst_corr_channels", "lst_k", "lst_hidden",
            "sinkhorn_iters", "disc_channels", "disc_layers",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} must be >= 1")
        if self.res_blocks < 0 or self.lst_r < 0 or self.lst_d < 0:
            raise ValueError("res_blocks, lst_r and lst_d must be >= 0")
        if self.lst_k % 2 == 0:
            raise ValueError(f"lst_k = {self.lst_k} must be odd")
        if self.flow_levels > self.num_downsample + 1:
            raise ValueError(f"flow_levels = {self.flow_levels} must be <= num_downsample + 1")
        if self.flow_depth < self.num_downsample:
            raise ValueError(f"flow_depth = {self.flow_depth} must be >= num_downsample = {self.num_downsample}")
        if self.sinkhorn_epsilon <= 0 or self.sinkhorn_tau <= 0:
            raise ValueError("sinkhorn_epsilon and sinkhorn_tau must be positive")

    @property
    def stride(self) -> int:
        """Frame height and width must be multiples of this (generator stride times the LST pooling)."""
        return 2**self.num_downsample * self.lst_pool

    def width(self, level: int) -> int:
        """Channels of generator level ``level`` (0 = full resolution)."""
        return min(self.base_channels * 2**level, self.max_channels)


@dataclass(frozen=True)
class LossConfig:
    """Loss weights of Eq. 12 and loss options."""

    focal_eta: float = 2.0
    """Focusing parameter eta of the focal loss (Eq. 1); 0 gives cross-entropy."""
    semantic_loss: Literal["focal", "ce"] = "focal"
    """Semantic loss: focal (Eq. 1) or plain cross-entropy (ablation 'w/o FL')."""
    focal_form: Literal["softmax", "binary"] = "softmax"
    """Focal loss over the softmax of the true class (Lin et al.), or Eq. 1 literally per class (one-vs-rest)."""
    w_semantic: float = 1.0
    """alpha_Sg: weight of the semantic loss."""
    w_l1: float = 5.0
    """alpha_L1: weight of the pixel L1 loss (Eq. 9)."""
    w_perceptual: float = 1.0
    """alpha_perc: weight of the VGG-19 perceptual loss (Eq. 10)."""
    w_adv: float = 2.0
    """alpha_adv: weight of the adversarial loss (Eq. 11)."""
    adversarial: Literal["log", "lsgan", "hinge"] = "log"
    """Adversarial objective: the log form of Eq. 11 (non-saturating for G), least squares, or hinge."""
    perceptual_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    """VGG-19 layers phi_k of the perceptual loss (names reluX_Y)."""
    perceptual_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    """Weight of each perceptual layer (same length as perceptual_layers)."""
    perceptual_criterion: Literal["l2", "l1"] = "l2"
    """Distance between VGG features: squared L2 as in Eq. 10, or L1 (GFLA/PISE)."""
    vgg_weights: str = ""
    """Local VGG-19 weights file (.pth/.safetensors, torchvision key names); empty: torchvision/torch-hub cache."""
    vgg_download: bool = True
    """Allow torchvision to download the ImageNet VGG-19 weights into the torch hub cache when missing."""
    allow_random_vgg: bool = False
    """Use a randomly initialised VGG-19 when no weights are found (tests and smoke runs only)."""
    w_flow_correctness: float = 1.0
    """Weight of the sampling-correctness loss of the flow estimator (VGG relu3_1/relu4_1)."""
    w_flow_smooth: float = 0.01
    """Weight of the second-order smoothness regulariser of the flow."""
    w_flow_supervised: float = 1.0
    """Weight of the supervised flow L1 loss (data with ground-truth correspondences)."""
    w_visibility: float = 0.5
    """Weight of the supervised visibility BCE loss (data with ground-truth visibility)."""

    def __post_init__(self) -> None:
        if self.focal_eta < 0:
            raise ValueError(f"focal_eta = {self.focal_eta} must be >= 0")
        if len(self.perceptual_layers) != len(self.perceptual_layer_weights):
            raise ValueError("perceptual_layers and perceptual_layer_weights must have the same length")
