"""``GLocalPipeline``: pose transfer and texture inpainting for PIL images, numpy arrays or tensors.

The pipeline holds a :class:`~glocal_cli.models.generator.GLocalModel` and everything around it:
fitting a photo of any size into the model frame, pose heatmaps, parsing (given, or estimated by
the semantic network with ``Pt = Ps``), masks, and the way back to pictures. It runs under
``torch.inference_mode`` with bf16 autocast on CUDA. The batch jobs (:mod:`glocal_cli.infer.batch`)
and the CLI are thin layers over :meth:`GLocalPipeline.forward_batch`.

Example::

    pipe = GLocalPipeline.from_pretrained("weights/default", device="cuda")
    out = pipe.transfer(Image.open("a.jpg"), "b.json", source_pose="a.json")  # a PIL image
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from glocal_cli.body.base import BODY_PARTS
from glocal_cli.body.config import BodyConfig
from glocal_cli.config import config_from_dict, resolve_config
from glocal_cli.console import warn
from glocal_cli.data.backends import BackendSpec, make_backend
from glocal_cli.data.images import _to_rgb, load_image
from glocal_cli.data.keypoints import FLIP_PERMUTATION, Pose, pose_heatmaps_torch, pose_sigma
from glocal_cli.data.masks import irregular_mask, load_mask, semantic_masks_torch
from glocal_cli.data.parsing import read_parsing
from glocal_cli.data.prefill import prefill_tensor
from glocal_cli.errors import ConfigError, InputError
from glocal_cli.infer.body3d import BodyFlow, PreviewMaps, learned_classes, preview_picture
from glocal_cli.infer.composite import (
    DETAIL_KEYS,
    compose,
    mask_to_canvas,
    person_mask,
)
from glocal_cli.infer.config import (
    FLOW_MODES,
    SOURCE_PARSING_MODES,
    BlendRules,
    InferConfig,
    weights_settings,
)
from glocal_cli.infer.io import (
    PreparedSource,
    limit_size,
    map_target_pose,
    match_downscale,
    pose_and_frame_from_any,
    pose_from_any,
    prepare_source,
)
from glocal_cli.infer.mesh_guide import guide_blend
from glocal_cli.infer.outline import parsing_labels, refine_radius, snap_person
from glocal_cli.infer.prepare import ModelInput, collate
from glocal_cli.infer.prepare import frame_mask as prepare_frame_mask
from glocal_cli.models.flow import flow_to_rgb, resample
from glocal_cli.models.flow import warp as warp_by
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.pretrained import from_pretrained, read_weights_config

__all__ = ["BatchOutput", "GLocalPipeline", "PipelineResult", "resolve_device", "to_uint8_image"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when available (``cuda:LOCAL_RANK`` under torchrun), else CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    return dev


def to_uint8_image(value: Any, where: str = "image") -> tuple[np.ndarray, str]:
    """``(uint8 (H, W, 3) RGB, kind)`` from a PIL image, a numpy array (uint8 or float in [0, 1]) or a
    tensor ``(3, H, W)`` in [-1, 1]; ``kind`` is ``pil``, ``numpy`` or ``tensor`` (to return the same kind)."""
    from PIL import Image

    if isinstance(value, (str, os.PathLike)):
        return load_image(value), "numpy"
    if isinstance(value, Image.Image):
        return np.ascontiguousarray(_to_rgb(value)), "pil"
    if isinstance(value, torch.Tensor):
        t = value.detach().float().cpu()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3 or t.shape[0] not in (1, 3):
            raise InputError(f"{where}: expected a (3, H, W) tensor in [-1, 1], got shape {tuple(value.shape)}")
        t = t.expand(3, -1, -1)
        arr = ((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return np.ascontiguousarray(arr), "tensor"
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise InputError(f"{where}: expected an (H, W, 3) image array, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[..., 3:4].astype(np.float32) / (255.0 if arr.dtype == np.uint8 else 1.0)
        arr = (arr[..., :3] * alpha + (255.0 if arr.dtype == np.uint8 else 1.0) * (1 - alpha))
    if arr.dtype == np.uint16:
        arr = np.rint(arr / 257.0)
    elif arr.dtype.kind == "f":
        arr = np.clip(arr, 0, 1) * 255.0 if float(np.nanmax(arr)) <= 1.0 else arr
        arr = np.rint(np.nan_to_num(arr))
    return np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8)), "numpy"


def _from_uint8(image: np.ndarray, kind: str) -> Any:
    if kind == "pil":
        from PIL import Image

        return Image.fromarray(image)
    if kind == "tensor":
        return torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0
    return image


@dataclass
class BatchOutput:
    """What :meth:`GLocalPipeline.forward_batch` returns, on the CPU."""

    image: torch.Tensor
    """``uint8 (B, H, W, 3)`` results in the model frame."""
    parsing: torch.Tensor
    """``uint8 (B, H, W)`` target parsing labels (predicted, or the source parsing in inpainting)."""
    masked: torch.Tensor | None = None
    """``uint8 (B, H, W, 3)`` masked inputs (inpainting)."""
    mask: torch.Tensor | None = None
    """``bool (B, H, W)`` the holes the model filled, in the frame (inpainting)."""
    flow: torch.Tensor | None = None
    """``uint8 (B, H, W, 3)`` pictures of the flow the model used (when asked for)."""
    notes: list[list[str]] = field(default_factory=list)
    """Per item: warnings of this pass (a flagged 3D body fit and its learned-flow fallback)."""
    flow_used: list[str] = field(default_factory=list)
    """Per item (transfer): ``body3d``, ``learned`` or ``hybrid``, the flow the model actually used."""
    preview: list[PreviewMaps] | None = None
    """Per item: the maps of its preview picture (when asked for)."""
    prefill: torch.Tensor | None = None
    """``uint8 (B, H, W, 3)`` inpainting with ``model.inpaint_prefill``: the classically prefilled frames the model
    refined (:func:`glocal_cli.infer.composite.inpaint_composite` redoes the fill at the photo's size)."""
    detail: dict[str, torch.Tensor] | None = None
    """Transfer with ``model.pixel_blend``: ``blend (B, 1, H, W)``, ``warped (B, 3, H, W)`` in [-1, 1] and
    ``flow (B, 2, H, W)`` (normalised) for :func:`glocal_cli.infer.composite.full_res_transfer`."""
    fill_probs: torch.Tensor | None = None
    """``float16 (B, 8, H, W)`` inpainting with ``infer.inpaint_fill: semantic`` or ``texture``: the class probabilities the
    classical fill was mixed by (the composite redoes that fill at the photo's size)."""


@dataclass
class PipelineResult:
    """One result of the Python API with its by-products (``return_details=True``)."""

    image: Any
    """The result, of the input's kind (PIL, numpy uint8 or tensor in [-1, 1])."""
    frame_image: np.ndarray
    """``uint8 (H, W, 3)`` result in the model frame."""
    parsing: np.ndarray
    """``uint8 (H, W)`` target parsing labels in the model frame."""
    source: PreparedSource
    """The source fitted into the frame (with its transform)."""
    target_pose: Pose
    """Target keypoints in the model frame."""
    masked: np.ndarray | None = None
    """Masked input in the model frame (inpainting)."""
    notes: list[str] = field(default_factory=list)
    """Warnings raised while preparing the inputs and running the model (e.g. a 3D body fit fallback)."""
    flow_used: str = "learned"
    """The flow the model used for this result: ``body3d``, ``learned`` or ``hybrid``."""
    preview: np.ndarray | None = None
    """``uint8`` check picture of the geometry (``return_details`` with ``preview=True``)."""


class GLocalPipeline:
    """Pose transfer and inpainting around a :class:`GLocalModel` (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "auto", dtype: torch.dtype | None = None,
                 config: InferConfig | None = None, sigma_at_256: float = 6.0, random_init: bool = False,
                 weights_dir: Path | None = None, body_config: BodyConfig | None = None,
                 flow: str | None = None, rules: BlendRules | None = None) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.config = config or InferConfig()
        self.rules = rules or BlendRules()
        """How transfers compose the model's output with the 3D guidance and the backdrop (the benchmarks'
        variants; the defaults won on the real pairs)."""
        self.body_config = body_config or BodyConfig()
        """The 3D body model, its fitting and correspondence (``--flow body3d|hybrid``, ``source_parsing: body3d``)."""
        self.weights_dir = weights_dir
        self.flow = flow
        """The flow mode of this pipeline (``None``: ``config.flow``); each call may override it."""
        mode = flow or self.config.flow
        if mode not in FLOW_MODES:  # (hybrid's need of flow_refine weights is checked when a transfer runs)
            raise ConfigError(f"--flow {mode} (infer.flow): expected one of {', '.join(FLOW_MODES)}")
        if self.config.source_parsing not in SOURCE_PARSING_MODES:
            raise ConfigError(f"infer.source_parsing = {self.config.source_parsing!r}: expected one of "
                              f"{', '.join(SOURCE_PARSING_MODES)}")
        self._body_flow: BodyFlow | None = None
        if dtype is None:
            prec = self.config.precision
            if prec == "auto":
                dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
            else:
                dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[prec]
        self.dtype = dtype
        self.frame_hw: tuple[int, int] = (int(model.height), int(model.width))
        self.sigma = pose_sigma(self.frame_hw[0], sigma_at_256)
        self.random_init = random_init
        """True when the model was freshly initialised (no weights): results are not meaningful."""
        self._parser: torch.nn.Module | None = None
        self._parser_scale: int | None = None
        self._warned_upsample = False

    def estimate_source_parsing(self, image: torch.Tensor, pose: torch.Tensor,
                                parser_image: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot source parsing ``(B, 8, H, W)`` of framed photos: the most probable class of
        :meth:`source_parsing_probs`."""
        probs = self.source_parsing_probs(image, pose, parser_image)
        return F.one_hot(self.parsing_labels(probs), probs.shape[1]).permute(0, 3, 1, 2).to(image.dtype)

    def parsing_labels(self, probs: torch.Tensor) -> torch.Tensor:
        """Labels ``(B, H, W)`` of class probabilities: the most probable class, or with ``config.parsing_refine``
        the person first (:func:`glocal_cli.infer.outline.parsing_labels`)."""
        return parsing_labels(probs, person_first=self.config.parsing_refine)

    def source_parsing_probs(self, image: torch.Tensor, pose: torch.Tensor,
                             parser_image: torch.Tensor | None = None, refine: bool | None = None) -> torch.Tensor:
        """Class probabilities ``float32 (B, 8, H, W)`` of framed photos (``image`` in [-1, 1], ``pose`` the
        source pose maps): the semantic network with ``Pt = Ps`` of ``config.source_parser`` when set (loaded on
        first use), else of the weights; with ``config.parsing_flip`` the mean of its probabilities on the photo
        and on its mirror image; with ``config.parsing_ensemble`` (and a source parser) the mean of both networks'
        probabilities at the model's frame; with ``config.parsing_refine`` the person's outline snapped to the photo's edges
        (:func:`glocal_cli.infer.outline.snap_person`). A source parser with a frame ``k`` times the model's reads
        ``parser_image`` (``uint8 (B, 3, kH, kW)``, the batch's ``parser_image``, or in [-1, 1]; else the photo is
        upsampled, with a warning) and its probabilities are averaged over each ``k x k`` block. ``refine``
        overrides ``config.parsing_refine``."""
        net = self.model
        k = self.parser_scale
        frame_image, frame_pose = image, pose
        if self.config.source_parser:
            net = self._source_parser()
        if k > 1:
            if parser_image is None:
                if not self._warned_upsample:
                    warn(f"infer.source_parser {self.config.source_parser}: no photo at its frame; the model "
                         f"frame's photo is upsampled {k}x for it (less detail)")
                    self._warned_upsample = True
                image = F.interpolate(image.float(), scale_factor=k, mode="bilinear", align_corners=False)
            elif parser_image.dtype == torch.uint8:
                image = parser_image.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
            else:
                image = parser_image.to(self.device)
            # the pose maps drawn at the parser's frame are these Gaussians k times larger (sigma scales with
            # the frame's height, pose_sigma): bilinear upsampling keeps the pixel-centre convention
            pose = F.interpolate(pose.float(), scale_factor=k, mode="bilinear", align_corners=False)
        probs = self._parsing_probs(net, image, pose)
        probs = F.avg_pool2d(probs, k) if k > 1 else probs
        if self.config.source_parser and self.config.parsing_ensemble:  # with the weights' own network
            probs = (probs + self._parsing_probs(self.model, frame_image, frame_pose)) * 0.5
        if self.config.parsing_refine if refine is None else refine:
            probs = self.refine_parsing(probs, frame_image)
        return probs

    def refine_parsing(self, probs: torch.Tensor, image: torch.Tensor,
                       hole: torch.Tensor | None = None) -> torch.Tensor:
        """``probs`` with the person's outline snapped to the edges of ``image`` (the framed photo in [-1, 1];
        :func:`glocal_cli.infer.outline.snap_person`), except in ``hole`` (``(B, 1, H, W)``, 1 in a hole the photo
        has Telea-filled: a fill has no edges to snap to, and there the network's estimate is the better one)."""
        refined = snap_person(probs, image, refine_radius(self.frame_hw[0]))
        return refined if hole is None else torch.where(hole > 0.5, probs, refined)

    def _parsing_probs(self, net: Any, image: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """``float32 (B, 8, H, W)``: one semantic network's class probabilities with ``Pt = Ps``, with
        ``config.parsing_flip`` the mean over the photo and its mirror image (poses mirrored, left/right
        swapped)."""
        net.check_inputs(image, pose)
        probs = net.predict_target_parsing(image, pose, pose).float().softmax(1)
        if self.config.parsing_flip:
            flipped = pose[:, list(FLIP_PERMUTATION)].flip(-1)
            mirrored = net.predict_target_parsing(image.flip(-1), flipped, flipped).float().softmax(1).flip(-1)
            probs = (probs + mirrored) * 0.5
        return probs

    @property
    def parser_scale(self) -> int:
        """How many times the source parser's frame is the model's (1 without ``config.source_parser``); read
        from its ``config.json``: a frame that is not an integer multiple of the model's is a
        :class:`ConfigError`."""
        if self._parser_scale is None:
            k = 1
            if self.config.source_parser:
                _, meta = read_weights_config(self.config.source_parser)
                frame = meta.get("frame", {})
                ph, pw = int(frame.get("height", 0)), int(frame.get("width", 0))
                h, w = self.frame_hw
                k = ph // h
                if k < 1 or (ph, pw) != (k * h, k * w):
                    raise ConfigError(f"infer.source_parser {self.config.source_parser}: frame {ph}x{pw} is not an "
                                      f"integer multiple of the weights' {h}x{w}")
            self._parser_scale = k
        return self._parser_scale

    def _source_parser(self) -> Any:
        """The network of ``config.source_parser`` (loaded on first use; see :attr:`parser_scale`)."""
        if self._parser is None:
            k = self.parser_scale
            parser = from_pretrained(self.config.source_parser, map_location="cpu")
            if (int(parser.height), int(parser.width)) != (self.frame_hw[0] * k, self.frame_hw[1] * k):
                raise ConfigError(f"infer.source_parser {self.config.source_parser}: frame {parser.height}x"
                                  f"{parser.width} does not match its config.json")
            self._parser = parser.to(self.device).eval()
        return self._parser

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], device: str | torch.device = "auto",
                        dtype: torch.dtype | None = None, config: InferConfig | None = None,
                        sigma_at_256: float | None = None, body_config: BodyConfig | None = None,
                        flow: str | None = None) -> GLocalPipeline:
        """Load a weights folder (``config.json`` + safetensors); bad folders raise :class:`WeightsError`.

        ``config`` defaults to the settings the weights recommend over the defaults
        (:func:`~glocal_cli.infer.config.weights_settings`); a given ``config`` is used as it is.
        ``sigma_at_256`` defaults to the pose-map sigma recorded in the weights (6 px if absent);
        ``flow`` (``body3d``, ``learned``, ``hybrid``) overrides ``config.flow``.
        """
        if config is None:
            config = config_from_dict(InferConfig, weights_settings(directory), label=f"{directory}/config.json")
        if sigma_at_256 is None:
            _, meta = read_weights_config(directory)
            sigma_at_256 = float(meta.get("frame", {}).get("pose_sigma", 6.0))
        model = from_pretrained(directory, map_location="cpu")
        return cls(model, device, dtype, config, sigma_at_256, weights_dir=Path(directory), body_config=body_config,
                   flow=flow)

    @classmethod
    def from_config(cls, preset: str = "synthetic-64", seed: int = 0, device: str | torch.device = "auto",
                    dtype: torch.dtype | None = None, config: InferConfig | None = None,
                    body_config: BodyConfig | None = None, flow: str | None = None) -> GLocalPipeline:
        """A freshly (randomly, seeded) initialised model of a config preset: for demos and tests only."""
        cfg = resolve_config(preset)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = GLocalModel(cfg.model, cfg.data.height, cfg.data.width, cfg.data.num_classes)
        return cls(model, device, dtype, config, cfg.data.pose_sigma, random_init=True, body_config=body_config,
                   flow=flow)

    # -- geometry -------------------------------------------------------------------------------
    def flow_mode(self, flow: str | None = None) -> str:
        """The flow mode of a call: ``flow``, else the pipeline's, else ``config.flow``; checked against the
        weights (``hybrid`` needs ``model.flow_refine``): a :class:`ConfigError` of one line otherwise."""
        mode = flow or self.flow or self.config.flow
        if mode not in FLOW_MODES:
            raise ConfigError(f"--flow {mode} (infer.flow): expected one of {', '.join(FLOW_MODES)}")
        if mode == "hybrid" and not getattr(self.model.cfg, "flow_refine", False):
            where = f"the weights {self.weights_dir}" if self.weights_dir is not None else "this model"
            raise ConfigError(f"--flow hybrid (infer.flow=hybrid) needs weights trained with model.flow_refine: true; "
                              f"{where} lack it: use --flow body3d or --flow learned")
        return mode

    @property
    def body_flow(self) -> BodyFlow:
        """Fits, caches and corresponds 3D bodies on the pipeline's device (built on first use)."""
        if self._body_flow is None:
            self._body_flow = BodyFlow(self.body_config, self.device)
        return self._body_flow

    # -- the batched core ----------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda" and self.dtype in (torch.bfloat16, torch.float16):
            return torch.autocast("cuda", dtype=self.dtype)
        if self.device.type == "cpu" and self.dtype == torch.bfloat16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    def heatmaps(self, xy: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """``(B, 18, H, W)`` pose maps on the pipeline's device from ``(B, 18, 2)`` points and ``(B, 18)`` flags."""
        h, w = self.frame_hw
        return pose_heatmaps_torch(xy.to(self.device, torch.float32), visible.to(self.device), h, w, self.sigma)

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """A collated batch's photos on the device in [-1, 1] ``(B, 3, H, W)`` and its source pose maps."""
        image = batch["image"].to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        return image, self.heatmaps(batch["source_xy"], batch["source_vis"])

    def forward_batch(self, batch: dict[str, torch.Tensor], mode: str = "transfer", want_flow: bool = False,
                      mask_classes: Sequence[str | int] = ("upper",), mask_dilate: int = 1, flow: str | None = None,
                      want_preview: bool = False) -> BatchOutput:
        """Run one collated batch (:func:`glocal_cli.infer.prepare.collate`) and return CPU pictures.

        Keys: ``image`` uint8 ``(B, 3, H, W)``; ``source_xy``/``source_vis``; for transfer
        ``target_xy``/``target_vis`` (model frame); ``parsing`` uint8 ``(B, H, W)`` with ``has_parsing`` ``(B,)``;
        for inpainting ``mask`` uint8 ``(B, 1, H, W)`` with ``has_mask`` (items without one get a
        semantic mask of ``mask_classes`` from their given or estimated parsing). ``flow`` overrides the
        pipeline's flow mode (transfer); with ``body3d``/``hybrid`` the bodies are fitted first (outside
        inference mode: fitting needs autograd), pairs with a flagged fit run the learned flow and get a note.
        """
        dev = self.device
        b = int(batch["image"].shape[0])
        h, w = self.frame_hw
        notes: list[list[str]] = [[] for _ in range(b)]
        flow_mode = self.flow_mode(flow) if mode == "transfer" else "learned"
        pairs = None
        if flow_mode != "learned":
            pairs = self.body_flow.pairs(batch["source_xy"].numpy(), batch["source_vis"].numpy(),
                                         batch["target_xy"].numpy(), batch["target_vis"].numpy(), (h, w),
                                         shading=want_preview, mirror=self.config.unseen_fill == "mirror")
            for i, note in enumerate(pairs.notes):
                if note:
                    notes[i].append(note)
        parsing, has_parsing = batch["parsing"], batch["has_parsing"].clone()
        if self.config.source_parsing == "estimate":
            has_parsing[:] = False
        elif self.config.source_parsing == "body3d" and not bool(has_parsing.all()):
            need = (~has_parsing).nonzero()[:, 0]
            mesh, more = self.body_flow.parsing(batch["source_xy"][need].numpy(), batch["source_vis"][need].numpy(),
                                                (h, w), images=batch["image"][need].permute(0, 2, 3, 1).numpy())
            parsing = parsing.clone()
            for j, i in enumerate(need.tolist()):
                if more[j]:
                    notes[i].append(more[j])
                else:
                    parsing[i] = torch.from_numpy(mesh[j])
                    has_parsing[i] = True
        use = pairs.ok.clone() if pairs is not None else torch.zeros(b, dtype=torch.bool)
        refine = bool(getattr(self.model.cfg, "flow_refine", False))
        with torch.inference_mode(), self._autocast():
            image, source_pose = self.inputs(batch)
            n = self.model.num_classes
            has_parsing = has_parsing.to(dev)
            given = F.one_hot(parsing.to(dev).long().clamp_(0, n - 1), n).permute(0, 3, 1, 2).float()
            seen, parser_seen = image, batch.get("parser_image")
            if mode == "inpaint" and "mask" in batch:
                mask, has_mask = batch["mask"].to(dev).float(), batch["has_mask"].to(dev)
                # a hole of the user's own is missing: what the photo shows under it is never looked at (the
                # parsing is estimated from the photo with the hole Telea-filled)
                held = has_mask[:, None, None, None]
                seen = torch.where(held, prefill_tensor(image, mask), image)
                if parser_seen is not None:
                    big = parser_seen.to(dev).float().div_(127.5).sub_(1.0)
                    k = big.shape[-2] // h
                    parser_seen = torch.where(held, prefill_tensor(big, F.interpolate(mask, scale_factor=k)), big)
            elif mode == "inpaint":  # no item has a hole of its own: every one gets its semantic hole
                mask, has_mask = image.new_zeros(b, 1, h, w), torch.zeros(b, dtype=torch.bool, device=dev)
            probs = outline = given  # outline: the probabilities the labels are read from (refined)
            if not bool(has_parsing.all()):
                estimated = self.source_parsing_probs(seen, source_pose, parser_seen, refine=False)
                probs = torch.where(has_parsing[:, None, None, None], given, estimated)
                outline = probs
                if self.config.parsing_refine:  # the labels' outline; the semantic fill mixes by the network's
                    hole = mask * held if mode == "inpaint" and "mask" in batch else None
                    outline = torch.where(has_parsing[:, None, None, None], given,
                                          self.refine_parsing(estimated, seen, hole))
            source_parsing = F.one_hot(self.parsing_labels(outline), n).permute(0, 3, 1, 2).float()
            masked = frame_mask = prefill = fill_probs = None
            flow_used: list[str] = []
            preview = None
            if mode == "inpaint":
                if not bool(has_mask.all()):
                    sem = semantic_masks_torch(source_parsing, mask_classes)
                    if mask_dilate > 0:
                        k = 2 * mask_dilate + 1
                        sem = F.max_pool2d(sem, k, stride=1, padding=mask_dilate)
                    mask = torch.where(has_mask[:, None, None, None], mask, sem)
                # the person's parsing is known (given, else estimated once above from the photo): it is
                # the target parsing too, not a guess of the semantic net from a holed image it never saw
                prefilled = None
                if getattr(self.model.cfg, "inpaint_prefill", False):
                    if self.config.inpaint_fill in ("semantic", "texture"):
                        fill_probs = probs
                    prefilled = prefill_tensor(image, mask, probs=fill_probs,
                                               texture=self.config.inpaint_fill == "texture",
                                               texture_options=self.config.texture_options())
                out = self.model(image, source_pose, None, source_parsing, source_parsing, mask, mode="inpaint",
                                 check_finite=False, prefilled=prefilled)
                masked = image * (1 - mask) + mask  # holes shown white
                frame_mask = mask[:, 0] > 0.5
                if prefilled is not None:
                    prefill = _to_hwc_uint8(out.source_image).cpu()
                parsing_labels = source_parsing.argmax(1)
                result = _to_hwc_uint8(out.image)
                flow_pic = flow_to_rgb(out.flow[-1]).cpu() if want_flow else None
            else:
                target_pose = self.heatmaps(batch["target_xy"], batch["target_vis"])
                parts = self._transfer_parts(image, source_pose, target_pose, source_parsing, pairs, use, refine)
                backdrop = plain_backdrop(image, self.config, batch.get("content_box"),
                                          self.rules.plain_background_spread, self.rules.plain_background_texture)  # (B, 3), NaN: the model's
                parts["backdrop"] = backdrop
                result = _to_hwc_uint8(apply_backdrop(parts["image"], parts["person"], backdrop))
                parsing_labels = parts["parsing"]
                flow_pic = flow_to_rgb(parts["flow"]).cpu() if want_flow else None
                flow_used = [("hybrid" if refine else "body3d") if e else "learned" for e in use.tolist()]
                if want_preview:
                    preview = self._preview_maps(batch, parts, pairs, use, refine, parsing_labels)
                    for i, maps in enumerate(preview):
                        maps.label = "; ".join([f"flow used: {flow_used[i]}", *notes[i]])
            detail = None
            if mode == "transfer" and "blend" in parts and self.config.full_res_blend:
                detail = {k: parts[k].float().cpu() for k in DETAIL_KEYS}
            return BatchOutput(result.cpu(), parsing_labels.to(torch.uint8).cpu(),
                               None if masked is None else _to_hwc_uint8(masked).cpu(),
                               None if frame_mask is None else frame_mask.cpu(), flow_pic, notes, flow_used, preview,
                               prefill, detail, None if fill_probs is None else fill_probs.half().cpu())

    def _transfer_parts(self, image: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor,
                        source_parsing: torch.Tensor, pairs: Any, use: torch.Tensor, refine: bool
                        ) -> dict[str, torch.Tensor]:
        """The model on the items with a usable 3D flow (given ``flow=``/``visibility=``) and, separately, on the
        others (learned flow); per item: image, parsing labels, the flow used and its visibility at the frame
        (normalised), and the warped source."""
        b = image.shape[0]
        h, w = self.frame_hw
        groups = [(use, True), (~use, False)]
        out: dict[str, torch.Tensor] = {}
        for sel, external in groups:
            if not bool(sel.any()):
                continue
            whole = bool(sel.all())
            idx = sel.nonzero()[:, 0].to(image.device)

            def pick(t: torch.Tensor, idx: torch.Tensor = idx, whole: bool = whole) -> torch.Tensor:
                return t if whole else t.index_select(0, idx.to(t.device))

            kwargs = {}
            if external:
                kwargs = {"flow": pick(pairs.flow).to(image.device), "visibility": pick(pairs.visibility).to(image.device)}
            res = self.model(pick(image), pick(source_pose), pick(target_pose), pick(source_parsing), None, None,
                             mode="transfer", check_finite=False, **kwargs)
            used_flow = kwargs["flow"] if external and not refine else res.flow[-1]
            part = {
                "image": res.image.float(),
                "parsing": res.target_parsing.argmax(1),
                "person": 1.0 - res.target_parsing[:, :1].float(),
                "flow": resample(used_flow.float(), (h, w)),
                "visibility": resample(res.visibility.float(), (h, w)).clamp(0, 1),
                "warped": res.warped_source.float(),
            }
            if res.features is not None and res.features.blend_mask is not None:
                part["blend"] = res.features.blend_mask.float()
                decoded = None if res.features.decoded is None else res.features.decoded.float()
                guided = (self.config.copy_visible, self.config.unseen_fill) != ("model", "model")
                if external and not refine and guided and decoded is not None:
                    part["image"], part["blend"], decoded = guide_blend(
                        part["image"], decoded, part["warped"], part["blend"],
                        pick(pairs.classes), pick(image).float(), pick(pairs.source.part), pick(pairs.target.part),
                        len(BODY_PARTS), self.config.copy_visible, self.config.unseen_fill,
                        None if pairs.mirror_flow is None else pick(pairs.mirror_flow),
                        None if pairs.mirror_visible is None else pick(pairs.mirror_visible),
                        mirror_strength=self.rules.mirror_strength,
                        source_labels=pick(source_parsing).argmax(1), target_labels=part["parsing"],
                        num_classes=source_parsing.shape[1])
                if self.rules.ghost_gate and decoded is not None:
                    source_person = warp_by(1.0 - pick(source_parsing)[:, :1].float(), part["flow"])
                    plate = None
                    if self.rules.ghost_fill == "plate":
                        plate = clean_plate(pick(image).float(), pick(source_parsing).float())
                    part["image"], part["blend"] = gate_ghost(part["image"], decoded,
                                                              part["warped"], part["blend"], source_person,
                                                              part["person"], plate)
                if self.config.background in ("auto", "source"):  # a plain wall is painted flat after this
                    keep_background(part, pick(image).float(), 1.0 - pick(source_parsing)[:, :1].float())
            for key, value in part.items():
                if whole:
                    out[key] = value
                    continue
                if key not in out:
                    out[key] = value.new_zeros((b, *value.shape[1:]))
                out[key].index_copy_(0, idx, value)
        return out

    def _preview_maps(self, batch: dict[str, torch.Tensor], parts: dict[str, torch.Tensor], pairs: Any,
                      use: torch.Tensor, refine: bool, parsing_labels: torch.Tensor) -> list[PreviewMaps]:
        """The per-item maps of the preview pictures (CPU numpy)."""
        h, w = self.frame_hw
        flow_px = (parts["flow"].float().permute(0, 2, 3, 1) * torch.tensor([w / 2.0, h / 2.0],
                                                                           device=parts["flow"].device)).cpu()
        learned = learned_classes(parts["visibility"].cpu(), parsing_labels.cpu())
        warped = _to_hwc_uint8(parts["warped"]).cpu().numpy()
        maps = []
        for i in range(flow_px.shape[0]):
            zeros = np.zeros((h, w), np.int64)
            classes = learned[i]
            src_pts = tgt_pts = src_part = tgt_part = src_shade = tgt_shade = None
            if pairs is not None:
                src_part, tgt_part = pairs.source.part[i].numpy(), pairs.target.part[i].numpy()
                if bool(use[i]) and not refine:
                    classes = pairs.classes[i]
                elif bool(use[i]):  # refined: the learned visibility, the body's background
                    classes = torch.where(pairs.classes[i] == 0, 0, torch.where(learned[i] == 0, 2, learned[i]))
                src_pts = (_given_points(batch, i, "source"), pairs.source.keypoints[i].numpy())
                tgt_pts = (_given_points(batch, i, "target"), pairs.target.keypoints[i].numpy())
                if pairs.source.shading is not None:
                    src_shade, tgt_shade = pairs.source.shading[i].numpy(), pairs.target.shading[i].numpy()
            maps.append(PreviewMaps(zeros if src_part is None else src_part, zeros if tgt_part is None else tgt_part,
                                    flow_px[i].numpy(), classes.numpy().astype(np.uint8), warped[i],
                                    src_pts, tgt_pts, src_shade, tgt_shade))
        return maps

    # -- single images and lists ----------------------------------------------------------------------
    def _prepare(self, source: Any, source_pose: Any, source_parsing: Any, where: str) -> tuple[PreparedSource, str]:
        raw, kind = to_uint8_image(source, where)
        image, notes = limit_size(raw, self.config.max_input_side, where)
        pose = None
        if source_pose is None:
            pose = self._detect(image, where)
        else:  # given in the photo's pixels: follow a downscale of the photo
            pose, more = pose_from_any(source_pose, f"{where} pose")
            notes += more
            if image.shape[:2] != raw.shape[:2]:
                pose = pose.resize(raw.shape[:2], image.shape[:2])
        parsing = None
        if source_parsing is not None:
            if isinstance(source_parsing, (str, os.PathLike)):
                parsing = read_parsing(source_parsing)
            else:
                arr = source_parsing.detach().cpu().numpy() if hasattr(source_parsing, "detach") else np.asarray(source_parsing)
                parsing = (arr.argmax(0) if arr.ndim == 3 else arr).astype(np.uint8)
            parsing = match_downscale(parsing, raw.shape[:2], image.shape[:2])
        prepared = prepare_source(image, pose, parsing, self.frame_hw, where, margin=self.config.fit_margin,
                                  min_visible=self.config.min_visible_keypoints, parser_scale=self.parser_scale)
        prepared.notes[:0] = notes
        prepared.original = raw
        return prepared, kind

    def _detect(self, image: np.ndarray, where: str) -> Pose:
        with make_backend(BackendSpec(self.config.keypoints, device=str(self.device))) as backend:
            pose = backend.detect(image)
        if pose is None:
            raise InputError(f"{where}: the keypoint backend found no person")
        return pose

    @staticmethod
    def _collate(items: list[PreparedSource], targets: list[Pose] | None,
                 masks: list[np.ndarray | None] | None) -> dict[str, torch.Tensor]:
        return collate([ModelInput(it.image, it.pose, it.transform, it.parsing, targets[i] if targets else None,
                                   masks[i] if masks else None, it.parser_image) for i, it in enumerate(items)])

    def _finish(self, out: BatchOutput, items: list[PreparedSource], kinds: list[str], paste_back: bool,
                targets: list[Pose] | None, return_details: bool, notes: list[list[str]],
                holes: list[np.ndarray | None] | None = None) -> list[Any]:
        """Results of one batch: in the frame, or (``paste_back``) in the photo as given; in inpainting
        the latter keeps every known pixel and takes only the holes from the model."""
        results = []
        for i, item in enumerate(items):
            frame = out.image[i].numpy()
            final = frame
            if paste_back and item.original is not None:
                hole = None
                if out.mask is not None:
                    hole = holes[i] if holes is not None and holes[i] is not None else \
                        mask_to_canvas(out.mask[i].numpy(), item.transform, item.canvas_hw)
                final, more = compose(frame, item.original, item.transform, hole=hole,
                                      detail=None if out.detail is None else [out.detail[k][i].numpy()
                                                                             for k in DETAIL_KEYS],
                                      prefill=None if out.prefill is None else out.prefill[i].numpy(),
                                      probs=None if out.fill_probs is None else out.fill_probs[i].numpy(),
                                      feather=self.config.inpaint_feather, fill=self.config.inpaint_fill,
                                      texture=self.config.texture_options())
                for note in more:
                    warn(f"source {i}: {note}")
                notes[i] += more
            img = _from_uint8(final, kinds[i])
            if return_details:
                picture = None
                if out.preview is not None:
                    picture = preview_picture(item.image, frame, out.preview[i])
                results.append(PipelineResult(img, frame, out.parsing[i].numpy(), item,
                                              targets[i] if targets else item.pose,
                                              None if out.masked is None else out.masked[i].numpy(), notes[i],
                                              out.flow_used[i] if out.flow_used else "learned", picture))
            else:
                results.append(img)
        return results

    def transfer_batch(self, sources: Sequence[Any], target_poses: Sequence[Any],
                       source_poses: Sequence[Any] | None = None, source_parsings: Sequence[Any] | None = None,
                       paste_back: bool | None = None, return_details: bool = False, flow: str | None = None,
                       preview: bool | None = None) -> list[Any]:
        """:meth:`transfer` for lists (one forward pass per ``config.batch_size`` items; the 3D body fits of a
        batch are one batched fit, and a source's fit is reused for all its target poses)."""
        self.flow_mode(flow)
        if paste_back is None:
            paste_back = self.config.paste_back
        want_preview = bool(self.config.preview if preview is None else preview) and return_details
        n = len(sources)
        if len(target_poses) != n:
            raise InputError(f"transfer_batch: {n} sources but {len(target_poses)} target poses")
        source_poses = list(source_poses) if source_poses is not None else [None] * n
        source_parsings = list(source_parsings) if source_parsings is not None else [None] * n
        results: list[Any] = []
        shown: set[str] = set()  # a warning once per call (e.g. the pose_frame guess), not once per item
        step = self.config.batch_size
        for start in range(0, n, step):
            items, kinds, targets, notes = [], [], [], []
            for i in range(start, min(n, start + step)):
                prepared, kind = self._prepare(sources[i], source_poses[i], source_parsings[i], f"source {i}")
                raw, recorded, more = pose_and_frame_from_any(target_poses[i], f"target pose {i}")
                tgt, more2 = map_target_pose(raw, self.config.pose_frame, self.frame_hw, prepared.transform,
                                             where=f"target pose {i}", min_visible=self.config.min_visible_keypoints,
                                             canvas_hw=prepared.canvas_hw, recorded=recorded,
                                             source_pose=prepared.pose)
                item_notes = prepared.notes + more + more2
                for note in item_notes:
                    if note not in shown:
                        shown.add(note)
                        warn(note)
                items.append(prepared)
                kinds.append(kind)
                targets.append(tgt)
                notes.append(item_notes)
            out = self.forward_batch(self._collate(items, targets, None), "transfer", flow=flow,
                                     want_preview=want_preview)
            for j, more in enumerate(out.notes):
                for note in more:
                    warn(f"source {start + j}: {note}")  # per item: which result did not get the 3D flow
                notes[j] += more
            results += self._finish(out, items, kinds, paste_back, targets, return_details, notes)
        return results

    def transfer(self, source: Any, target_pose: Any, source_pose: Any = None, source_parsing: Any = None,
                 paste_back: bool | None = None, return_details: bool = False, flow: str | None = None,
                 preview: bool | None = None) -> Any:
        """Re-pose the person of ``source`` to ``target_pose``.

        ``source``: a PIL image, an ``(H, W, 3)`` numpy array (uint8, or float in [0, 1]), a
        ``(3, H, W)`` tensor in [-1, 1], or an image path; any size (fitted into the model frame).
        ``target_pose`` / ``source_pose``: a :class:`Pose`, a pose file, or an ``(18, 2|3)`` array of
        ``x, y[, score]`` (-1 = missing); target coordinates map into the frame by ``config.pose_frame``
        (``auto``: the frame a pose file records, else its box onto the source person's, warned; see
        :func:`~glocal_cli.infer.io.map_target_pose`).
        Without ``source_pose`` the keypoint backend detects it. ``source_parsing``: an ``(H, W)`` label
        map, ``(8, H, W)`` one-hot or a label PNG; estimated when omitted (``config.source_parsing``).
        ``flow``: ``body3d``, ``learned`` or ``hybrid`` for this call (default: the pipeline's, else
        ``config.flow``). Returns the result of the input's kind in the source photo's canvas and resolution
        (``paste_back``, default ``config.paste_back``: what the source shows copied sharp from the photo,
        ``config.full_res_blend``), or in the model frame with ``paste_back=False``; with ``return_details`` a :class:`PipelineResult` (its ``flow_used``, ``notes``
        and, with ``preview=True`` or ``config.preview``, the check picture ``preview``).
        """
        return self.transfer_batch([source], [target_pose], [source_pose], [source_parsing], paste_back,
                                   return_details, flow, preview)[0]

    def inpaint_batch(self, sources: Sequence[Any], masks: Sequence[Any], source_poses: Sequence[Any] | None = None,
                      source_parsings: Sequence[Any] | None = None, paste_back: bool | None = None,
                      return_details: bool = False) -> list[Any]:
        """:meth:`inpaint` for lists."""
        n = len(sources)
        if len(masks) != n:
            raise InputError(f"inpaint_batch: {n} sources but {len(masks)} masks")
        source_poses = list(source_poses) if source_poses is not None else [None] * n
        source_parsings = list(source_parsings) if source_parsings is not None else [None] * n
        if paste_back is None:
            paste_back = self.config.inpaint_output == "source"
        h, w = self.frame_hw
        results: list[Any] = []
        shown: set[str] = set()  # a warning once per call (e.g. the pose_frame guess), not once per item
        step = self.config.batch_size
        for start in range(0, n, step):
            items, kinds, frame_masks, holes, notes = [], [], [], [], []
            for i in range(start, min(n, start + step)):
                prepared, kind = self._prepare(sources[i], source_poses[i], source_parsings[i], f"source {i}")
                spec = masks[i]
                item_notes = list(prepared.notes)
                frame_mask: np.ndarray | None
                hole: np.ndarray | None = None  # the hole in the photo as given, when the user gave it
                if isinstance(spec, str) and spec == "irregular":
                    frame_mask = irregular_mask(h, w, self.config.mask_ratio_bin, self.config.seed + i)
                elif isinstance(spec, str) and spec == "semantic":
                    frame_mask = None
                else:
                    if isinstance(spec, (str, os.PathLike)):
                        hole, more = load_mask(spec, prepared.canvas_hw, self.config.mask_invert)
                        item_notes += more
                    else:
                        hole = _mask_array(spec, prepared.canvas_hw, item_notes, f"mask {i}")
                    frame_mask = prepare_frame_mask(hole, prepared.transform)
                    # the hole is missing: the frame the model sees is made from the photo with it filled
                    prepared = prepared.hiding(prepared.original, hole)
                for note in item_notes:
                    if note not in shown:
                        shown.add(note)
                        warn(note)
                items.append(prepared)
                kinds.append(kind)
                frame_masks.append(frame_mask)
                holes.append(hole)
                notes.append(item_notes)
            out = self.forward_batch(self._collate(items, None, frame_masks), "inpaint",
                                     mask_classes=self.config.mask_classes, mask_dilate=self.config.mask_dilate)
            results += self._finish(out, items, kinds, paste_back, None, return_details, notes, holes)
        return results

    def inpaint(self, source: Any, mask: Any = "irregular", source_pose: Any = None, source_parsing: Any = None,
                paste_back: bool | None = None, return_details: bool = False) -> Any:
        """Fill the holes of ``source``.

        ``mask``: ``"irregular"`` (generated in ``config.mask_ratio_bin``, seeded by ``config.seed``),
        ``"semantic"`` (removes ``config.mask_classes`` of the given or estimated parsing), a mask file
        (white = hole), or an array / tensor of the source's size (1 / True = hole; another size is
        resized and a non-binary mask thresholded, both warned). The result has the source's own size:
        every known pixel is the source's, the holes come from the model with a feathered seam
        (``config.inpaint_feather``); ``paste_back=False`` (or ``config.inpaint_output = "frame"``)
        returns the model-frame picture instead. The parsing the model fills the holes with is the
        source parsing (given, else estimated once from the source). Other arguments as in :meth:`transfer`.
        """
        return self.inpaint_batch([source], [mask], [source_pose], [source_parsing], paste_back, return_details)[0]

    def with_config(self, **changes: Any) -> GLocalPipeline:
        """A copy sharing the model (and the 3D body fits' cache), with some :class:`InferConfig` fields changed."""
        self.body_flow  # noqa: B018 - built now, so that every copy shares one fit cache
        clone = object.__new__(GLocalPipeline)
        clone.__dict__.update(self.__dict__)
        clone.config = replace(self.config, **changes)
        return clone

    def with_rules(self, **changes: Any) -> GLocalPipeline:
        """A copy sharing the model and the fit cache, with some :class:`BlendRules` fields changed (the benchmarks'
        variants)."""
        clone = self.with_config()
        clone.rules = replace(self.rules, **changes)
        return clone


def _given_points(batch: dict[str, torch.Tensor], i: int, role: str) -> np.ndarray:
    """Item ``i``'s ``source``/``target`` keypoints ``(18, 2)``, ``-1`` where missing."""
    xy = batch[f"{role}_xy"][i].numpy().astype(np.float32)
    return np.where(batch[f"{role}_vis"][i].numpy()[:, None], xy, -1.0).astype(np.float32)


def plain_backdrop(image: torch.Tensor, cfg: Any, content_box: torch.Tensor | None = None,
                   spread: float = BlendRules.plain_background_spread,
                   texture: float = BlendRules.plain_background_texture) -> torch.Tensor:
    """The source photos' backdrop colour ``(B, 3)`` in [-1, 1] (median of a 3-pixel border ring), NaN where
    the backdrop is kept as generated (``infer.background``; 'auto': the ring's spread is over ``spread`` or its
    texture over ``texture``, :class:`BlendRules`).

    ``content_box`` ``(B, 4)`` (``x0, y0, x1, y1`` of each photo inside the frame): the ring is taken on the photo's
    own border, not on the frame's padding (a narrow crop padded white is not a white studio wall)."""
    b = image.shape[0]
    if cfg.background in ("generated", "source"):
        return image.new_full((b, 3), float("nan"))
    crops = [image] if content_box is None else [image[i:i + 1, :, int(y0):int(y1), int(x0):int(x1)]
                                                 for i, (x0, y0, x1, y1) in enumerate(content_box.tolist())]
    stats = [_ring_stats(_border_ring(c)) for c in crops]
    colour, ring_spread = torch.cat([c for c, _ in stats]), torch.cat([v for _, v in stats])
    if cfg.background == "plain":
        return colour
    ring_texture = torch.cat([_ring_texture(c) for c in crops])
    plain = (ring_spread <= spread) & (ring_texture <= texture)
    return torch.where(plain[:, None], colour, torch.full_like(colour, float("nan")))


def _ring_texture(image: torch.Tensor) -> torch.Tensor:
    """``(B,)``: the texture of the 3-pixel border ring, in 0-255 levels: the 75th percentile of the differences
    between neighbouring ring pixels (channel mean). A studio wall is smooth (at most 2.7 on the 59 DeepFashion
    photos); a pale stone or plaster street wall of small spread still has its joints and grain (9-12)."""
    steps = [image[..., :3, 1:] - image[..., :3, :-1], image[..., -3:, 1:] - image[..., -3:, :-1],
             image[..., 1:, :3] - image[..., :-1, :3], image[..., 1:, -3:] - image[..., :-1, -3:]]
    diffs = torch.cat([d.abs().float().flatten(2) for d in steps], 2).mean(1)
    return diffs.quantile(0.75, dim=1) * 127.5


def _border_ring(image: torch.Tensor) -> torch.Tensor:
    """The 3-pixel border ring of ``(B, 3, H, W)`` images as ``(B, 3, N)`` float."""
    return torch.cat([image[..., :3, :].flatten(2), image[..., -3:, :].flatten(2),
                      image[..., 3:-3, :3].flatten(2), image[..., 3:-3, -3:].flatten(2)], 2).float()


def _ring_stats(ring: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Median colour ``(B, 3)`` of a ring and its robust spread ``(B,)`` in 0-255 levels (median absolute deviation
    as a standard deviation): a person touching the border does not make a plain wall look textured."""
    colour = ring.median(2).values
    spread = (ring - colour[..., None]).abs().median(2).values.amax(1) * 127.5 * 1.4826
    return colour, spread


def apply_backdrop(image: torch.Tensor, person: torch.Tensor, backdrop: torch.Tensor) -> torch.Tensor:
    """``backdrop + person * (image - backdrop)`` where the backdrop is known (not NaN), else ``image``."""
    known = ~torch.isnan(backdrop).any(1)
    if not bool(known.any()):
        return image
    bg = torch.nan_to_num(backdrop)[:, :, None, None].to(image.dtype)
    p = F.interpolate(person_mask(person).to(image.dtype), size=image.shape[-2:], mode="bilinear",
                      align_corners=False)
    flat = bg + p * (image - bg)
    return torch.where(known[:, None, None, None], flat, image)


def clean_plate(image: torch.Tensor, source_parsing: torch.Tensor, grow: int = 2) -> torch.Tensor:
    """The source photos without their person ``(B, 3, H, W)`` in [-1, 1]: the person of the source parsing (not
    background, grown by ``grow`` pixels so that its outline goes too) filled classically from the background
    around it (OpenCV Telea, :func:`glocal_cli.data.prefill.prefill_tensor`). What a static background shows
    where the source person stood (``BlendRules.ghost_fill: plate``)."""
    person = (1.0 - source_parsing[:, :1]).clamp(0, 1)
    hole = (person > 0.5).float()
    if grow > 0:
        hole = F.max_pool2d(hole, 2 * grow + 1, stride=1, padding=grow)
    return prefill_tensor(image, hole)


def gate_ghost(image: torch.Tensor, decoded: torch.Tensor, warped: torch.Tensor, blend: torch.Tensor,
               source_person: torch.Tensor, target_person: torch.Tensor,
               plate: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image, blend)`` with nothing of the source's person copied onto the target's background
    (``BlendRules.ghost_gate``).

    ``blend`` is the pixel blend's ``m``; ``image = lerp(decoded, warped, m) + residual``. ``source_person`` is the
    source parsing's person probability warped by the flow the model used (``(B, 1, H, W)``; 1 where the sampled
    source pixel is the person), ``target_person`` 1 - the target parsing's background probability. The gate
    ``g = source_person * (1 - person_mask(target_person))`` is 1 exactly where a pixel the target calls
    background would copy the source's person; ``m' = m * (1 - g)`` and ``image' = image + (m' - m) *
    (warped - decoded)``: the same blend with ``m'`` (the bounded residual kept as it was). With ``plate`` (the
    source photo without its person, :func:`clean_plate`), what the gate removes is filled from the plate at the
    same pixel instead of the decoder's picture: ``image'' = lerp(image', plate, g)`` (a static background: the
    pixel shows what stood behind the source person).
    """
    ghost = source_person.clamp(0, 1) * (1.0 - person_mask(target_person))
    gated = blend * (1.0 - ghost)
    out = image + (gated - blend) * (warped - decoded)
    if plate is not None:
        out = torch.lerp(out, plate.to(out.dtype), ghost.to(out.dtype))
    return out, gated


def keep_background(part: dict[str, torch.Tensor], image: torch.Tensor, source_person: torch.Tensor) -> None:
    """``part`` (``image``, ``warped``, ``blend``, ``flow``, ``person`` of a transfer) with the source photo
    ``image`` kept where the target calls the pixel background and the source shows background at the same pixel
    (``infer.background: source``, and ``auto`` off a plain wall):
    ``k = (1 - person_mask(person)) * (1 - person_mask(source_person))``; the
    picture and the warp move to the photo by ``k``, the blend to 1 and the flow to 0 (no displacement), so that
    the full-resolution composite copies the photo itself there."""
    keep = (1.0 - person_mask(part["person"])) * (1.0 - person_mask(source_person))
    part["image"] = torch.lerp(part["image"], image, keep)
    part["warped"] = torch.lerp(part["warped"], image, keep)
    part["blend"] = torch.lerp(part["blend"], torch.ones_like(part["blend"]), keep)
    part["flow"] = part["flow"] * (1.0 - keep)


def _to_hwc_uint8(image: torch.Tensor) -> torch.Tensor:
    return ((image.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _mask_array(value: Any, size: tuple[int, int], notes: list[str], where: str) -> np.ndarray:
    import cv2

    arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    arr = np.squeeze(arr)
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=2) if arr.shape[2] in (3, 4) else arr[0]
    if arr.ndim != 2:
        raise InputError(f"{where}: expected an (H, W) mask, got shape {np.shape(value)}")
    if arr.dtype == bool:
        mask = arr
    else:
        peak = 255.0 if arr.dtype == np.uint8 or float(arr.max(initial=0)) > 1 else 1.0
        norm = arr.astype(np.float64) / peak
        if not np.isin(norm, (0.0, 1.0)).all():
            notes.append(f"{where}: mask is not binary; thresholded at 0.5")
        mask = norm >= 0.5
    if mask.shape != tuple(size):
        notes.append(f"{where}: mask is {mask.shape[0]}x{mask.shape[1]}, resized to {size[0]}x{size[1]}")
        mask = cv2.resize(mask.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
    return mask
