"""Configuration of training (owned by the trainer).

One :class:`TrainConfig` drives every stage of ``glocal train``: the stage schedule (steps per
stage), optimisation (Adam, learning rates, schedule, accumulation), speed switches (bf16 autocast,
channels-last, ``torch.compile``, SyncBatchNorm), what the generator stage does with the networks
trained before it, checkpointing (interval, keep-last, best by validation) and observability (log,
image and validation intervals). ``batch_size`` is per process: the global batch of a run on N
processes with accumulation A is ``N * A * batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

STAGES: tuple[str, ...] = ("semantic", "flow", "generator", "inpaint")
"""Every training stage, in the order ``--stage all`` runs them."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, checkpointing and logging of ``glocal train``."""

    stages: tuple[str, ...] = ("semantic", "flow", "generator", "inpaint")
    """Stages run by ``--stage all``, in order (a subset of semantic, flow, generator, inpaint)."""
    steps_semantic: int = 20000
    """Optimiser steps of the semantic stage (target parsing, focal loss Eq. 1)."""
    steps_flow: int = 20000
    """Optimiser steps of the flow stage (flow + visibility estimator)."""
    steps_generator: int = 80000
    """Optimiser steps of the generator stage (end to end, Eq. 12)."""
    steps_inpaint: int = 20000
    """Optimiser steps of the inpaint stage (masked source, Pt = Ps), fine-tuned from the generator."""
    batch_size: int = 8
    """Images per process (per GPU) per micro-step."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimiser step (global batch = processes x grad_accum x batch_size)."""
    lr: float = 1e-4
    """Adam learning rate of the generator networks."""
    d_lr_factor: float = 0.1
    """Discriminator learning rate = lr x d_lr_factor (PISE uses 0.1)."""
    betas: tuple[float, ...] = (0.5, 0.999)
    """Adam (beta1, beta2) for every optimiser (two numbers)."""
    weight_decay: float = 0.0
    """Adam weight decay (decoupled, AdamW) for every optimiser."""
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    """Learning-rate decay over each stage's steps after the warm-up: none, cosine or linear to 0."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up (optimiser steps) at the start of each stage."""
    grad_clip: float = 0.0
    """Clip the global gradient norm of each optimiser to this value; 0 disables clipping."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Autocast precision: 'auto' = bf16 on CUDA and fp32 on CPU; 'bf16' forces bf16 autocast (also on CPU)."""
    channels_last: bool = True
    """Use the channels-last memory format for models and image batches on CUDA (ignored on CPU)."""
    compile: bool = False
    """Wrap the trained networks with torch.compile (CUDA; slower start, faster steps)."""
    sync_bn: bool = False
    """Convert BatchNorm layers to SyncBatchNorm under DDP (batch statistics over all processes)."""
    ddp_find_unused: bool = True
    """DistributedDataParallel(find_unused_parameters=...): needed when some parameters get no gradient in a stage."""
    semantic_in_generator: Literal["frozen", "finetune"] = "frozen"
    """Generator/inpaint stages: keep the semantic network frozen, or fine-tune it with the focal loss term."""
    allow_untrained_semantic: bool = False
    """Let the generator/inpaint stages run on a semantic network that no stage and no --weights trained (its
    target parsings are random maps). Off: such a run stops with the options (parsing maps, --weights).
    Smoke runs and tests only."""
    flow_in_generator: Literal["frozen", "finetune"] = "frozen"
    """Generator/inpaint stages: keep the flow estimator frozen, or fine-tune it end to end."""
    generator_flow: Literal["learned", "given", "mixed"] = "learned"
    """Flow the generator stage trains with: 'learned' = the flow estimator's; 'given' = the dataset's
    ground-truth correspondence (surface maps or correspondence/ files from fitted 3D bodies), passed to the
    model as an external flow and visibility, as ``--flow body3d`` does at inference; 'mixed' = given for
    half of the batches, learned for the other half (a model that serves both modes)."""
    finetune_lr_factor: float = 0.1
    """Learning rate of fine-tuned earlier-stage networks = lr x finetune_lr_factor."""
    semantic_self_fraction: float = 0.25
    """Semantic stage: fraction of each batch trained with Pt = Ps (so the network also estimates source parsings)."""
    semantic_holes: float = 0.0
    """Semantic stage: fraction of each batch whose source photo gets an irregular hole (strokes of 1-60%),
    Telea-filled, while the target stays the whole parsing: the network learns the layout under a hole, as
    inpainting asks it (``infer.inpaint_fill: semantic`` estimates the parsing from the photo with its hole
    filled). 0 = clean photos only."""
    flow_supervision: Literal["auto", "self", "supervised", "both"] = "auto"
    """Flow stage losses: 'auto' = supervised with surface maps (SynthPeople), supervised + self-supervised
    with correspondence/ files of fitted 3D bodies (they cover no hair, loose clothes or background), else
    self-supervised; 'self' = sampling correctness + smoothness (+ visibility_self) only; 'supervised' =
    GT flow/visibility only; 'both'."""
    visibility_self: Literal["photometric", "none"] = "photometric"
    """Visibility head where no ground truth labels a pixel (self-supervised flow losses on): 'photometric' =
    BCE towards 1 where the source warped by the current flow reproduces the target's colour (see
    visibility_threshold) and 0 elsewhere; 'none' leaves the head untrained there (it stays at 0.5)."""
    visibility_threshold: float = 0.2
    """visibility_self 'photometric': a target pixel is visible when the mean absolute RGB difference between
    the warped source and the target (images in [-1, 1]) is below this (0.2 = 25 of 255 levels)."""
    flow_background_weight: float = 0.1
    """Supervised flow on background pixels, relative to the body term: the camera and backdrop do not
    move (true for SynthPeople), so a background pixel maps to itself and is visible where the source
    shows background there. Averaged separately from the body so the (larger) background cannot drown
    the body's flow; 0 leaves the background unsupervised."""
    inpaint_mask: Literal["irregular", "semantic", "mixed"] = "mixed"
    """Inpaint stage masks: free-form strokes, whole semantic classes, or a random mix of both."""
    inpaint_semantic_prob: float = 0.5
    """With inpaint_mask = 'mixed': probability that a sample gets a semantic (class) mask."""
    log_every: int = 50
    """Log losses (console, TensorBoard, text log) every N optimiser steps; the only host sync of a step."""
    image_every: int = 500
    """Write an image grid to TensorBoard every N steps (source | target pose | parsing | warped | output | GT)."""
    val_every: int = 2000
    """Validate (SSIM, PSNR, L1, FID if available) every N steps and at the end of a stage; 0 disables."""
    val_pairs: int = 64
    """Validation pairs used by periodic validation and the best-checkpoint choice (the first N of the
    dataset's pairs-val.csv, which cover N different people); pairs-test.csv is left to `glocal eval`."""
    val_fraction: float = 0.05
    """Share of the training people carved out as the validation split when the dataset has no
    val.lst + pairs-val.csv yet (written into the dataset folder; an existing split is reused). 0: none."""
    val_fid: bool = True
    """Compute FID during validation when the Inception weights are available locally."""
    ckpt_every: int = 2000
    """Save a full checkpoint every N optimiser steps (and always at the end of a stage)."""
    keep_last: int = 3
    """Keep the last K periodic checkpoints of a stage (the best-by-validation one is kept besides)."""
    export_discriminator: bool = True
    """Include the discriminator in the exported weights folder (needed to fine-tune adversarially later)."""
    run_name: str = ""
    """Run folder name under the runs directory; empty: <preset or config stem>-<date>-<time>."""
    max_nan_skips: int = 0
    """Non-finite losses: 0 = check at log intervals and stop on the first; N > 0 = check every step (one
    host sync), skip up to N bad steps without updating, then stop."""
    seed: int = 0
    """Random seed (model initialisation, pair sampling, augmentation, masks)."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown or not self.stages:
            raise ValueError(f"stages = {list(self.stages)}: each must be one of {', '.join(STAGES)}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages = {list(self.stages)} lists a stage twice")
        order = [STAGES.index(s) for s in self.stages]
        if order != sorted(order):
            raise ValueError(f"stages = {list(self.stages)} must follow the order {', '.join(STAGES)}")
        for name in ("steps_semantic", "steps_flow", "steps_generator", "steps_inpaint", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)} must be >= 0")
        for name in ("batch_size", "grad_accum", "log_every", "image_every", "ckpt_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)} must be >= 1")
        if self.val_every < 0 or self.val_pairs < 0 or self.max_nan_skips < 0:
            raise ValueError("val_every, val_pairs and max_nan_skips must be >= 0")
        if self.lr <= 0 or self.d_lr_factor <= 0 or self.finetune_lr_factor < 0:
            raise ValueError("lr and d_lr_factor must be > 0, finetune_lr_factor >= 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas = {list(self.betas)} must be in [0, 1)")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction = {self.val_fraction} must be in [0, 1)")
        if not 0.0 <= self.semantic_self_fraction <= 1.0:
            raise ValueError("semantic_self_fraction must be in [0, 1]")
        if not 0.0 <= self.semantic_holes <= 1.0:
            raise ValueError(f"semantic_holes = {self.semantic_holes} must be in [0, 1]")
        if not 0.0 <= self.inpaint_semantic_prob <= 1.0:
            raise ValueError("inpaint_semantic_prob must be in [0, 1]")
        if self.visibility_threshold <= 0:
            raise ValueError(f"visibility_threshold = {self.visibility_threshold} must be > 0")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0")

    def steps_for(self, stage: str) -> int:
        """Optimiser steps of ``stage``."""
        return int(getattr(self, f"steps_{stage}"))
