"""The four training stages: what each trains, its losses, its validation and its pictures.

* ``semantic``: the semantic predictor ``(Is, Ps, Pt) -> Sg`` with the focal loss (Eq. 1). A
  fraction of every batch uses ``Pt = Ps`` (target = source) so that the same network can estimate a
  source parsing for users who have none.
* ``flow``: the flow/visibility estimator, self-supervised (sampling correctness on VGG-19
  relu3_1/relu4_1 + second-order smoothness; visibility from the warp's photometric error) and/or
  supervised by ground-truth correspondences (SynthPeople surface maps, per-pair files of fitted 3D
  bodies), per ``train.flow_supervision``.
* ``generator``: the whole model end to end with Eq. 12 (L1, perceptual, adversarial, focal) and
  the conditional PatchGAN; the semantic and flow networks are frozen or fine-tuned per config.
* ``inpaint``: the same objective on masked sources (``Pt = Ps``, identity flow, ``m_vis = 1 - mask``)
  with irregular and semantic holes.

A stage's :meth:`Stage.train_step` runs forward and backward of one micro-batch and returns the
*unweighted* losses as detached device tensors (no host synchronisation); the trainer owns the
optimiser steps.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glocal_cli.config.schema import GLocalConfig
from glocal_cli.data.keypoints import KEYPOINT_COLORS
from glocal_cli.data.parsing import PALETTE
from glocal_cli.errors import DataError
from glocal_cli.losses import (
    AdversarialLoss,
    PerceptualLoss,
    VGG19Features,
    flow_smoothness_loss,
    sampling_correctness_loss,
    semantic_loss,
    supervised_flow_loss,
)
from glocal_cli.losses.flow import photometric_visibility_target, visibility_loss
from glocal_cli.models.discriminator import Discriminator
from glocal_cli.models.flow import resize_flow, warp
from glocal_cli.models.generator import GLocalModel
from glocal_cli.train.distributed import DistInfo, unwrap, wrap_ddp

__all__ = ["STAGE_CLASSES", "Stage", "StageContext", "make_stage", "visual_grid"]

FLOW_VGG_LAYERS = ("relu3_1", "relu4_1")
"""VGG-19 layers of the sampling-correctness loss (GFLA)."""

Backward = Callable[[torch.Tensor], None]


@dataclass
class StageContext:
    """Everything a stage needs from the trainer."""

    cfg: GLocalConfig
    model: GLocalModel
    discriminator: Discriminator
    dist: DistInfo
    has_parsing: bool
    has_surface: bool
    autocast: Callable[[], AbstractContextManager]
    vgg_cache: dict[str, VGG19Features] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    semantic_origin: str | None = None
    """Where the semantic network's weights come from (None: nothing trained it, its parsings are random)."""
    dataset_root: str = ""
    """The dataset folder (for messages)."""
    has_correspondence: bool = False
    """Whether the dataset has per-pair correspondence files (fitted 3D bodies)."""

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def vgg(self, layers: tuple[str, ...]) -> VGG19Features:
        """A frozen VGG-19 trunk with (at least) ``layers``, shared between the losses of a stage."""
        lc = self.cfg.loss
        key = ",".join(sorted(set(layers)))
        if key not in self.vgg_cache:
            # a random VGG (smoke runs) must be the same in every process and on every resume: build it
            # from a fixed seed without touching the global RNG stream
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                net = VGG19Features(tuple(sorted(set(layers), key=layers.index)), lc.vgg_weights,
                                    lc.vgg_download, lc.allow_random_vgg).to(self.device)
            if not net.pretrained:
                self.messages.append(
                    "VGG-19 weights not found: perceptual and sampling-correctness losses use a RANDOMLY "
                    "initialised VGG-19 (loss.allow_random_vgg = true); fine for smoke runs, not for real training"
                )
            self.vgg_cache[key] = net
        return self.vgg_cache[key]


PARSING_OPTIONS = (
    "prepare the data with parsing maps (glocal prepare-data ... --parsing DIR: your own or the "
    "community's parsing for the benchmark; then --stage all trains the semantic stage first)",
    "render parsing maps from fitted 3D bodies (glocal prepare-data ... --parsing body3d)",
    "start from weights whose semantic network is trained (--weights DIR)",
)
"""What a user can do when the generator would read parsings from an untrained semantic network."""


def untrained_semantic_message(stage: str, has_parsing: bool, dataset: Any) -> str:
    """The one-line error of a generator/inpaint stage whose semantic network nothing trained."""
    if has_parsing:
        why = ("the semantic network was never trained in this run; run the semantic stage first (--stage semantic, "
               "or semantic in train.stages), or start from weights whose semantic network is trained (--weights DIR)")
    else:
        why = (f"{Path(str(dataset)) / 'manifest.json'} has no parsing maps (has_parsing is false), so no stage can "
               "train the semantic network; " + "; or ".join(PARSING_OPTIONS))
    return (f"the {stage} stage would read target parsings from an untrained semantic network (random maps): {why} "
            "(train.allow_untrained_semantic = true forces it, for smoke runs only)")


def _set_trainable(module: nn.Module | None, flag: bool) -> None:
    if module is not None:
        for p in module.parameters():
            p.requires_grad_(flag)


def _labels(batch: dict[str, torch.Tensor], role: str) -> torch.Tensor | None:
    return batch.get(f"{role}_labels")


class Stage(ABC):
    """Base class: the trainable modules, optimiser groups, data needs, step, validation, pictures."""

    name = ""
    adversarial = False
    score_name = "l1"
    """Validation metric that selects the best checkpoint (lower is better)."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.model = ctx.model
        self.D = ctx.discriminator
        self.modules: dict[str, nn.Module] = {}

    # -- set-up

    def check_data(self) -> None:  # noqa: B027 - optional hook, most stages need no check
        """Raise :class:`DataError` when the dataset cannot train this stage."""

    def dataset_options(self) -> dict[str, Any]:
        """Extra :class:`~glocal_cli.data.datasets.PairDataset` options (flow GT, masks)."""
        return {}

    @abstractmethod
    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        """``{optimiser name: [param group, ...]}``; also sets ``requires_grad`` of every network."""

    def wrap(self) -> None:
        """Wrap the trained modules for DDP (and torch.compile) after the optimisers exist."""
        t = self.cfg.train
        for key, module in list(self.modules.items()):
            wrapped = wrap_ddp(module, self.ctx.dist, find_unused=t.ddp_find_unused)
            if t.compile and self.ctx.device.type == "cuda":
                wrapped = torch.compile(wrapped)
            self.modules[key] = wrapped

    def ddp_modules(self) -> list[nn.Module]:
        """Modules whose gradient all-reduce is skipped on non-final micro-steps."""
        return list(self.modules.values())

    def train_mode(self) -> None:
        self.model.train()
        self.D.train()

    # -- step

    @abstractmethod
    def train_step(self, batch: dict[str, torch.Tensor], backward: Backward) -> dict[str, torch.Tensor]:
        """Forward + backward of one micro-batch; the unweighted losses (detached) and 'total'."""

    # -- validation

    @abstractmethod
    def val_outputs(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """``{'pred': ..., 'gt': ..., 'copy': ...}`` images in [-1, 1] for the image metrics, or
        parsing/flow quantities for the stages that do not make images (called under no_grad)."""

    @abstractmethod
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        """Columns of the picture grid, each ``(B, 3, H, W)`` in [0, 1] (called under no_grad)."""


# ------------------------------------------------------------------------------------ semantic


class SemanticStage(Stage):
    name = "semantic"
    score_name = "parsing_error"

    def check_data(self) -> None:
        if not self.ctx.has_parsing:
            raise DataError("the semantic stage needs parsing maps; this dataset has none (manifest has_parsing "
                            "is false): train the flow/generator stages, or prepare the data with parsing")

    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        _set_trainable(self.model, False)
        _set_trainable(self.D, False)
        _set_trainable(self.model.semantic, True)
        self.modules = {"semantic": self.model.semantic}
        return {"semantic": [{"params": list(self.model.semantic.parameters()), "lr": self.cfg.train.lr}]}

    def dataset_options(self) -> dict[str, Any]:
        """With ``train.semantic_holes`` the items carry an irregular hole and the photo Telea-filled there."""
        return {"mask_kind": "irregular", "prefill": True} if self.cfg.train.semantic_holes > 0 else {}

    def _inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``Pt := Ps`` and ``St := Ss`` for the first ``semantic_self_fraction`` of the batch; the source photo,
        Telea-filled in its hole for the first ``semantic_holes`` of the batch (where the self pairs are too:
        inpainting asks for ``Pt = Ps`` under a hole)."""
        pt, st, image = batch["target_pose"], batch["target_labels"], batch["source_image"]
        b = pt.shape[0]
        index = torch.arange(b, device=pt.device)
        k = min(b, math.ceil(b * self.cfg.train.semantic_self_fraction))
        if k:
            sel = index < k
            pt = torch.where(sel[:, None, None, None], batch["source_pose"], pt)
            st = torch.where(sel[:, None, None], batch["source_labels"], st)
        holes = min(b, math.ceil(b * self.cfg.train.semantic_holes))
        if holes and "prefilled" in batch:
            image = torch.where((index < holes)[:, None, None, None], batch["prefilled"], image)
        return pt, st, batch["source_pose"], image

    def train_step(self, batch: dict[str, torch.Tensor], backward: Backward) -> dict[str, torch.Tensor]:
        lc = self.cfg.loss
        pt, st, ps, image = self._inputs(batch)
        with self.ctx.autocast():
            logits = self.modules["semantic"](image, ps, pt)
        loss = semantic_loss(logits, st, lc.semantic_loss, lc.focal_eta, lc.focal_form)
        backward(lc.w_semantic * loss)
        return {"semantic": loss.detach(), "total": (lc.w_semantic * loss).detach()}

    @torch.no_grad()
    def val_outputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            logits = self.model.semantic(batch["source_image"], batch["source_pose"], batch["target_pose"])
        return {"parsing_pred": logits.float().argmax(1), "parsing_gt": batch["target_labels"]}

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        out = self.val_outputs(batch)
        return [("source", _img(batch["source_image"])), ("target pose", _pose_rgb(batch["target_pose"])),
                ("predicted parsing", _parsing_rgb(out["parsing_pred"])),
                ("GT parsing", _parsing_rgb(out["parsing_gt"])), ("GT", _img(batch["target_image"]))]


# ---------------------------------------------------------------------------------------- flow


def _flow_mode(cfg: GLocalConfig, has_surface: bool, has_correspondence: bool = False) -> tuple[bool, bool]:
    """(self-supervised, supervised) terms of the flow loss.

    ``auto``: exact surface maps (SynthPeople) -> supervised only; correspondence files of fitted 3D
    bodies -> both (the naked body mesh covers no hair, loose clothes or background, and a pair whose
    fit failed has no file); no ground truth -> self-supervised only.
    """
    mode = cfg.train.flow_supervision
    if mode == "auto":
        if has_surface:
            return (False, True)
        return (True, has_correspondence)
    return (mode in ("self", "both"), mode in ("supervised", "both"))


def _has_gt(ctx: StageContext) -> bool:
    return ctx.has_surface or ctx.has_correspondence


def visibility_stats(visibility: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean and spread (standard deviation over every pixel of the batch) of a visibility map, detached:
    an untrained head sits at 0.5 with no spread, and GGR's visible/occluded split is then a constant."""
    v = visibility.detach().float()
    return {"visibility_mean": v.mean(), "visibility_std": v.std() if v.numel() > 1 else v.sum() * 0}


def static_background_flow(target_body: torch.Tensor, source_labels: torch.Tensor) -> torch.Tensor:
    """Visibility of a static backdrop: a target background pixel corresponds to the same source
    pixel (zero offset) and is visible there where the source shows background (not the person).

    Returns ``(B,1,H,W)``: 1 on target background pixels whose source pixel is background, else 0.
    """
    source_background = (source_labels == 0).unsqueeze(1).to(target_body.dtype)
    return (1.0 - target_body) * source_background


def _visibility_sums(visibility: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-batch sums of each image's visibility mean and spread (the trainer divides by the image count)."""
    v = visibility.detach().float().flatten(1)
    return {"visibility_mean": v.mean(1).sum(), "visibility_std": v.std(1).sum() if v.shape[1] > 1 else v.sum() * 0}


class FlowLossMixin:
    """The flow losses, shared by the flow stage and fine-tuning in the generator stage."""

    ctx: StageContext
    cfg: GLocalConfig

    def flow_losses(self, batch: dict[str, torch.Tensor], flows: list[torch.Tensor],
                    visibility: torch.Tensor) -> dict[str, torch.Tensor]:
        use_self, use_sup = _flow_mode(self.cfg, self.ctx.has_surface, self.ctx.has_correspondence)
        losses: dict[str, torch.Tensor] = {}
        labelled: torch.Tensor | None = None  # pixels whose visibility has ground truth (None: none)
        if use_self:
            vgg = self.ctx.vgg(FLOW_VGG_LAYERS)
            with torch.no_grad(), self.ctx.autocast():
                fs = vgg(batch["source_image"])
                ft = vgg(batch["target_image"])
            corr = sum(sampling_correctness_loss(fs[n], ft[n], f) for f in flows for n in FLOW_VGG_LAYERS)
            losses["flow_correctness"] = corr / (len(flows) * len(FLOW_VGG_LAYERS))
            losses["flow_smooth"] = sum(flow_smoothness_loss(f) for f in flows) / len(flows)
        if use_sup:
            gt, valid = batch["flow"], batch["flow_valid"]
            if "flow_body" in batch:  # correspondence files: the pixels they label (visible or invisible)
                body = batch["flow_body"]
            else:
                body = (batch["target_labels"] > 0).unsqueeze(1).float() if "target_labels" in batch else None
            losses["flow_supervised"] = sum(
                supervised_flow_loss(f, visibility, gt, valid, body, w_flow=1.0, w_visibility=0.0) for f in flows
            ) / len(flows)
            w_bg = self.cfg.train.flow_background_weight
            if self.ctx.has_surface and body is not None and w_bg > 0:  # SynthPeople: static camera and backdrop
                bg_visible = static_background_flow(body, batch["source_labels"])
                zero = torch.zeros_like(gt)
                bg_term = sum(
                    supervised_flow_loss(f, visibility, zero, bg_visible, 1.0 - body, w_flow=1.0, w_visibility=0.0)
                    for f in flows
                ) / len(flows)
                losses["flow_supervised"] = losses["flow_supervised"] + w_bg * bg_term
                # visibility is known everywhere now: the body's, and the backdrop's
                losses["visibility"] = supervised_flow_loss(flows[-1], visibility, gt, valid * body + bg_visible,
                                                            None, w_flow=0.0, w_visibility=1.0)
                labelled = torch.ones_like(body)
            else:
                losses["visibility"] = supervised_flow_loss(flows[-1], visibility, gt, valid, body, w_flow=0.0,
                                                            w_visibility=1.0)
                labelled = torch.ones_like(valid) if body is None else body
        if use_self and self.cfg.train.visibility_self == "photometric":
            # where no ground truth says it: visible = the current warp reproduces the target's colour
            target = photometric_visibility_target(batch["source_image"], batch["target_image"], flows[-1],
                                                   self.cfg.train.visibility_threshold)
            unlabelled = None if labelled is None else 1.0 - labelled
            losses["visibility_self"] = visibility_loss(visibility, target, unlabelled)
        return losses

    def weighted_flow(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        lc = self.cfg.loss
        weights = {"flow_correctness": lc.w_flow_correctness, "flow_smooth": lc.w_flow_smooth,
                   "flow_supervised": lc.w_flow_supervised, "visibility": lc.w_visibility,
                   "visibility_self": lc.w_visibility}
        return sum(weights[k] * v for k, v in losses.items() if k in weights)


class FlowStage(FlowLossMixin, Stage):
    name = "flow"

    @property
    def score_name(self) -> str:  # type: ignore[override]
        """End-point error where ground truth exists (the warp L1 also counts unconstrained background)."""
        return "epe" if _flow_mode(self.cfg, self.ctx.has_surface, self.ctx.has_correspondence)[1] else "warp_l1"

    def check_data(self) -> None:
        if self.model.flow is None:
            raise DataError("the flow stage has nothing to train: model.flow is 'none' (identity flow)")
        _, use_sup = _flow_mode(self.cfg, self.ctx.has_surface, self.ctx.has_correspondence)
        if use_sup and not _has_gt(self.ctx):
            raise DataError("train.flow_supervision needs ground-truth correspondences (surface maps or "
                            "correspondence/ files), which this dataset lacks; use flow_supervision 'self' or 'auto'")

    def dataset_options(self) -> dict[str, Any]:
        return {"with_flow": _flow_mode(self.cfg, self.ctx.has_surface, self.ctx.has_correspondence)[1]}

    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        _set_trainable(self.model, False)
        _set_trainable(self.D, False)
        _set_trainable(self.model.flow, True)
        self.modules = {"flow": self.model.flow}
        return {"flow": [{"params": list(self.model.flow.parameters()), "lr": self.cfg.train.lr}]}

    def train_step(self, batch: dict[str, torch.Tensor], backward: Backward) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            flows, vis = self.modules["flow"](batch["source_image"], batch["source_pose"], batch["target_pose"])
        losses = self.flow_losses(batch, flows, vis)
        total = self.weighted_flow(losses)
        backward(total)
        out = {k: v.detach() for k, v in losses.items()}
        out["total"] = total.detach()
        out.update(visibility_stats(vis))
        return out

    @torch.no_grad()
    def val_outputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            flows, vis = self.model.flow(batch["source_image"], batch["source_pose"], batch["target_pose"])
        flow = flows[-1].float()
        out = {"pred": warp(batch["source_image"], flow), "gt": batch["target_image"],
               "copy": batch["source_image"], "visibility": vis.float(), **_visibility_sums(vis)}
        if "flow" in batch:
            h, w = batch["flow"].shape[-2:]
            f = resize_flow(flow, (h, w))
            scale = torch.tensor([w / 2.0, h / 2.0], device=f.device).view(1, 2, 1, 1)
            err = ((f - batch["flow"]) * scale).norm(dim=1, keepdim=True)  # pixels
            valid = batch["flow_valid"]
            out["epe_sum"] = (err * valid).sum()
            out["epe_count"] = valid.sum()
            # visibility against the ground truth, on the pixels it labels (body pixels)
            if "flow_body" in batch:
                body = batch["flow_body"]
            elif "target_labels" in batch:
                body = (batch["target_labels"] > 0).unsqueeze(1).float()
            else:
                body = torch.ones_like(valid)
            v = F.interpolate(vis.float(), size=(h, w), mode="bilinear", align_corners=False)
            out["vis_err_sum"] = (((v > 0.5).float() - valid).abs() * body).sum()
            out["vis_err_count"] = body.sum()
        return out

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        out = self.val_outputs(batch)
        h, w = batch["source_image"].shape[-2:]
        vis = F.interpolate(out["visibility"], size=(h, w), mode="nearest").repeat(1, 3, 1, 1)
        return [("source", _img(batch["source_image"])), ("target pose", _pose_rgb(batch["target_pose"])),
                ("warped source", _img(out["pred"])), ("visibility", vis), ("GT", _img(batch["target_image"]))]


# ----------------------------------------------------------------------------- generator/inpaint


def given_flow_inputs(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's ground-truth correspondence as the model's external ``(flow, visibility)``.

    Visible body pixels keep their flow and visibility 1; body pixels the source does not show get
    visibility 0 (GGR's occluded branch generates them); background pixels get the zero flow and
    visibility 1 (a static backdrop, as at inference with ``--flow body3d``). Without ``flow_body``
    (surface maps) every non-visible pixel is treated as body.
    """
    flow, valid = batch["flow"], batch["flow_valid"]
    body = batch.get("flow_body")
    if body is None:
        return flow * valid, valid
    visibility = valid + (1.0 - body)
    return flow * valid, visibility.clamp(0.0, 1.0)


class GeneratorStage(FlowLossMixin, Stage):
    name = "generator"
    adversarial = True
    inpaint = False

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        self.adv = AdversarialLoss(self.cfg.loss.adversarial)
        self.perceptual: PerceptualLoss | None = None
        self._step = 0

    def _finetune_semantic(self) -> bool:
        return self.cfg.train.semantic_in_generator == "finetune"

    def _finetune_flow(self) -> bool:
        return (not self.inpaint and self.model.flow is not None
                and self.cfg.train.flow_in_generator == "finetune")

    def check_data(self) -> None:
        if self.ctx.semantic_origin is None:
            if not self.cfg.train.allow_untrained_semantic:
                raise DataError(untrained_semantic_message(self.name, self.ctx.has_parsing, self.ctx.dataset_root))
            self.ctx.messages.append(f"{self.name}: the semantic network was never trained, so the target parsings "
                                     "the generator reads are random (train.allow_untrained_semantic = true; smoke "
                                     "runs only)")
        if self._finetune_flow():
            _, use_sup = _flow_mode(self.cfg, self.ctx.has_surface, self.ctx.has_correspondence)
            if use_sup and not _has_gt(self.ctx):
                raise DataError("train.flow_supervision needs surface maps or correspondence/ files, which this "
                                "dataset lacks")
        if self._given_flow() and not _has_gt(self.ctx):
            raise DataError(f"train.generator_flow={self.cfg.train.generator_flow} needs ground-truth "
                            "correspondence (surface maps or correspondence/ files from prepare-data "
                            "--correspondence body3d), which this dataset lacks; use generator_flow=learned")
        if self._given_flow() and self._finetune_flow():
            raise DataError("train.generator_flow=given/mixed and flow_in_generator=finetune do not go together: "
                            "the flow estimator gets no gradient from a given flow")

    def _given_flow(self) -> bool:
        return not self.inpaint and self.cfg.train.generator_flow != "learned"

    def dataset_options(self) -> dict[str, Any]:
        if self._given_flow():
            return {"with_flow": True}
        if self._finetune_flow():
            return {"with_flow": _flow_mode(self.cfg, self.ctx.has_surface, self.ctx.has_correspondence)[1]}
        return {}

    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        t = self.cfg.train
        _set_trainable(self.model, False)
        _set_trainable(self.model.generator, True)
        _set_trainable(self.D, True)
        groups = [{"params": list(self.model.generator.parameters()), "lr": t.lr}]
        if self._finetune_semantic() and t.finetune_lr_factor > 0:
            _set_trainable(self.model.semantic, True)
            groups.append({"params": list(self.model.semantic.parameters()), "lr": t.lr * t.finetune_lr_factor})
        if self._finetune_flow() and t.finetune_lr_factor > 0:
            _set_trainable(self.model.flow, True)
            groups.append({"params": list(self.model.flow.parameters()), "lr": t.lr * t.finetune_lr_factor})
        self.modules = {"model": self.model, "discriminator": self.D}
        lc = self.cfg.loss
        if lc.w_perceptual > 0:
            vgg = self.ctx.vgg(tuple(lc.perceptual_layers))
            self.perceptual = PerceptualLoss(lc.perceptual_layers, lc.perceptual_layer_weights,
                                             lc.perceptual_criterion, vgg=vgg)
        return {"generator": groups,
                "discriminator": [{"params": list(self.D.parameters()), "lr": t.lr * t.d_lr_factor}]}

    def train_mode(self) -> None:
        super().train_mode()
        # frozen networks stay in eval mode (their normalisation layers keep their statistics)
        if not self._finetune_semantic():
            self.model.semantic.eval()
        if self.model.flow is not None and not self._finetune_flow():
            self.model.flow.eval()

    def _forward(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Model output, the ground truth and the target pose the discriminator is conditioned on."""
        if self.inpaint:
            # as at inference (issue 13 item 7): the known source parsing is the target parsing of the hole
            parsing = batch.get("source_parsing")
            out = net(batch["source_image"], batch["source_pose"], None, parsing, parsing,
                      batch["mask"], mode="inpaint", check_finite=False, prefilled=batch.get("prefilled"))
            return out, batch["source_image"], batch["source_pose"]
        flow = visibility = None
        if self._given_flow() and "flow" in batch:
            self._step += 1
            if self.cfg.train.generator_flow == "given" or self._step % 2 == 0:
                flow, visibility = given_flow_inputs(batch)
        out = net(batch["source_image"], batch["source_pose"], batch["target_pose"], batch.get("source_parsing"),
                  None, mode="transfer", check_finite=False, flow=flow, visibility=visibility)
        return out, batch["target_image"], batch["target_pose"]

    def train_step(self, batch: dict[str, torch.Tensor], backward: Backward) -> dict[str, torch.Tensor]:
        lc = self.cfg.loss
        model, D = self.modules["model"], self.modules["discriminator"]
        d_bare = unwrap(D)
        with self.ctx.autocast():
            out, gt, cond_pose = self._forward(model, batch)
        fake = out.image
        losses: dict[str, torch.Tensor] = {"l1": F.l1_loss(fake.float(), gt.float())}
        total = lc.w_l1 * losses["l1"]
        if self.perceptual is not None:
            with self.ctx.autocast():
                losses["perceptual"] = self.perceptual(fake, gt)
            total = total + lc.w_perceptual * losses["perceptual"]
        if lc.w_adv > 0:
            _set_trainable(d_bare, False)
            with self.ctx.autocast():
                losses["adv_g"] = self.adv.generator(d_bare(fake, out.source_image, cond_pose))
            total = total + lc.w_adv * losses["adv_g"]
        gt_labels = _labels(batch, "source" if self.inpaint else "target")
        if self._finetune_semantic() and out.target_parsing_logits is not None and gt_labels is not None:
            losses["semantic"] = semantic_loss(out.target_parsing_logits, gt_labels, lc.semantic_loss,
                                               lc.focal_eta, lc.focal_form)
            total = total + lc.w_semantic * losses["semantic"]
        if self._finetune_flow():
            flow_losses = self.flow_losses(batch, out.flow, out.visibility)
            losses.update(flow_losses)
            total = total + self.weighted_flow(flow_losses)
        backward(total)
        result = {k: v.detach() for k, v in losses.items()}
        result["total"] = total.detach()
        if not self.inpaint:  # what GGR's visible/occluded split reads (inpainting: 1 - mask)
            result.update(visibility_stats(out.visibility))
        if lc.w_adv > 0:
            _set_trainable(d_bare, True)
            with self.ctx.autocast():
                logits = D(torch.cat([gt, fake.detach()]), torch.cat([out.source_image.detach()] * 2),
                           torch.cat([cond_pose] * 2))
            real, fake_logits = logits.chunk(2)
            d_loss = self.adv.discriminator(real, fake_logits)
            backward(d_loss)
            result["d"] = d_loss.detach()
        return result

    @torch.no_grad()
    def val_outputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self.ctx.autocast():
            out, gt, _ = self._forward(self.model, batch)
        copy = out.source_image if self.inpaint else batch["source_image"]
        res = {"pred": out.image.float(), "gt": gt, "copy": copy, "output": out}
        if not self.inpaint:
            res.update(_visibility_sums(out.visibility))
        return res

    @torch.no_grad()
    def visuals(self, batch: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
        res = self.val_outputs(batch)
        out = res["output"]
        pose = batch["source_pose"] if self.inpaint else batch["target_pose"]
        return [("source", _img(out.source_image)), ("target pose", _pose_rgb(pose)),
                ("predicted parsing", _parsing_rgb(out.target_parsing.float().argmax(1))),
                ("warped source", _img(out.warped_source.float())), ("output", _img(res["pred"])),
                ("GT", _img(res["gt"]))]


class InpaintStage(GeneratorStage):
    name = "inpaint"
    inpaint = True

    def dataset_options(self) -> dict[str, Any]:
        kind = self.cfg.train.inpaint_mask if self.ctx.has_parsing else "irregular"
        return {"mask_kind": kind, "semantic_mask_prob": self.cfg.train.inpaint_semantic_prob,
                "prefill": self.cfg.model.inpaint_prefill}


STAGE_CLASSES: dict[str, type[Stage]] = {
    "semantic": SemanticStage,
    "flow": FlowStage,
    "generator": GeneratorStage,
    "inpaint": InpaintStage,
}


def make_stage(name: str, ctx: StageContext) -> Stage:
    """The :class:`Stage` called ``name``."""
    return STAGE_CLASSES[name](ctx)


# -------------------------------------------------------------------------------------- pictures


def _img(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) / 2).clamp(0, 1)


def _pose_rgb(pose: torch.Tensor) -> torch.Tensor:
    """``(B, 18, H, W)`` heatmaps -> ``(B, 3, H, W)`` coloured dots on black."""
    colors = torch.tensor(KEYPOINT_COLORS, dtype=torch.float32, device=pose.device) / 255.0  # (18, 3)
    return torch.einsum("bkhw,kc->bchw", pose.float(), colors).clamp(0, 1)


def _parsing_rgb(labels: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` labels -> ``(B, 3, H, W)`` palette colours."""
    pal = torch.tensor(PALETTE, dtype=torch.float32, device=labels.device) / 255.0
    return pal[labels.long().clamp(0, len(pal) - 1)].permute(0, 3, 1, 2)


def visual_grid(columns: list[tuple[str, torch.Tensor]], max_rows: int = 4) -> torch.Tensor:
    """One ``(3, H', W')`` picture: a row per sample, a column per entry (source | pose | ... | GT)."""
    from torchvision.utils import make_grid

    cols = [c[:max_rows].float().cpu() for _, c in columns]
    rows = torch.stack(cols, dim=1).flatten(0, 1)  # (rows * cols, 3, H, W)
    return make_grid(rows, nrow=len(cols), padding=2, pad_value=1.0)
