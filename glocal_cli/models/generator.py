"""The GLocal generator wiring (paper Figure 2) and the full model ``GLocalModel``.

``GLocalModel`` holds the semantic predictor, the flow/visibility estimator (absent for
``flow: none``) and the generator; its ``forward`` serves both the trainer and the inference
pipeline, for pose transfer and for texture inpainting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from glocal_cli import __version__
from glocal_cli.config.io import to_dict
from glocal_cli.data.prefill import prefill_tensor
from glocal_cli.errors import ConfigError, InputError, WeightsError
from glocal_cli.models.config import ModelConfig
from glocal_cli.models.decoder import Decoder, PixelBlend
from glocal_cli.models.encoders import FeatureFusion, SourceEncoder, StyleEncoder, TargetEncoder
from glocal_cli.models.flow import FlowEstimator, identity_flow, resample, warp
from glocal_cli.models.ggr import REGIONS, GlobalGraphReasoning
from glocal_cli.models.lst import LocalStructureTransfer
from glocal_cli.models.semantic import POSE_CHANNELS, SemanticPredictor
from glocal_cli.models.weights import (
    CONFIG_NAME,
    FORMAT,
    FORMAT_VERSION,
    load_component,
    read_weights_config,
    save_component,
    write_json,
)


@dataclass
class GeneratorOutput:
    """What :class:`GLocalGenerator` computes (features at the network stride)."""

    image: torch.Tensor
    """Generated image ``(B, 3, H, W)`` in [-1, 1]."""
    fused: torch.Tensor
    """``F_I``: fused target + warped source features."""
    modulated: torch.Tensor
    """``F_o`` after GGR (Eq. 4)."""
    generated: torch.Tensor
    """``F_g`` after LST (Eq. 8); equals ``modulated`` when LST is off."""
    transport_plan: torch.Tensor | None = None
    """Column-normalised LST transport plan ``(B, n, n)``, or None when LST is off."""
    decoded: torch.Tensor | None = None
    """The decoder's image before the pixel blend (None when ``pixel_blend`` is off: it is ``image``)."""
    copy_prior: torch.Tensor | None = None
    """``m_vis * parsing agreement (B, 1, H, W)`` (float32), the gates' starting point; None without the texture path."""
    skip_gates: list[torch.Tensor] = field(default_factory=list)
    """The texture path's gates ``(B, 1, h, w)`` per decoder scale, finest first (empty without ``texture_skips``)."""
    blend_mask: torch.Tensor | None = None
    """``m (B, 1, H, W)`` of the pixel blend (None without ``pixel_blend``)."""


@dataclass
class GLocalOutput:
    """Result of :meth:`GLocalModel.forward`."""

    image: torch.Tensor
    """Generated target image ``(B, 3, H, W)`` in [-1, 1]."""
    target_parsing: torch.Tensor
    """Target parsing used by the generator ``(B, N, H, W)``: the given one, or softmax of the prediction."""
    target_parsing_logits: torch.Tensor | None
    """Semantic-prediction logits ``(B, N, H, W)``; None when ``target_parsing`` was given."""
    flow: list[torch.Tensor]
    """Flow pyramid, coarsest first, each ``(B, 2, h, w)`` normalised (dx, dy); ``[zeros]`` for identity flow.
    With a given ``flow`` (no refinement): the given flow area-averaged to the pyramid's sizes."""
    visibility: torch.Tensor
    """``m_vis (B, 1, h, w)`` in [0, 1] at the finest flow level (``1 - mask`` in inpainting; the given one, at its
    own size, when a flow was given without refinement)."""
    warped_source: torch.Tensor
    """Source image warped by the finest flow ``(B, 3, H, W)`` (the texture flow: a given flow at its own size)."""
    source_image: torch.Tensor
    """The source image the generator saw (masked in inpainting)."""
    features: GeneratorOutput | None = field(default=None, repr=False)
    """Intermediate generator features (F_I, F_o, F_g, transport plan)."""


def copy_prior(visibility: torch.Tensor, flow: torch.Tensor, source_parsing: torch.Tensor,
               target_parsing: torch.Tensor) -> torch.Tensor:
    """Where copying the warped source is trusted, ``(B, 1, H, W)`` float32 in [0, 1] at the parsings' frame.

    ``m_vis`` (resized to the frame) times the agreement ``sum_c Sg_c * warp(Ss)_c``: the probability that the
    source position the flow points to carries the target position's class. The flow and ``m_vis`` say what the
    source shows; the agreement lets the predicted target parsing, not the flow's support (e.g. a body mesh
    without hair or skirt), decide the outline: a target hair pixel whose flow lands on source background is
    not copied. Samples outside the source frame count as disagreeing.
    """
    size = tuple(target_parsing.shape[-2:])
    vis = resample(visibility.float(), size).clamp(0, 1)  # type: ignore[arg-type]
    warped = warp(source_parsing.float(), resample(flow.float(), size), padding_mode="zeros")  # type: ignore[arg-type]
    agree = (target_parsing.float() * warped).sum(1, keepdim=True).clamp(0, 1)
    return vis * agree


class GLocalGenerator(nn.Module):
    """Encoders + fusion + GGR (or the "w/o GGR" variant) + LST (optional) + decoder (+ the texture path)."""

    def __init__(self, cfg: ModelConfig, num_classes: int = 8) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.width(cfg.num_downsample)
        self.source_encoder = SourceEncoder(cfg, num_classes)
        self.target_encoder = TargetEncoder(cfg, num_classes)
        self.style_encoder = StyleEncoder(cfg)
        self.fusion = FeatureFusion(cfg)
        self.ggr = GlobalGraphReasoning(c, cfg.style_channels, num_classes, cfg.ggr_steps, cfg.ggr_centre,
                                        cfg.ggr_norm, use_graph=cfg.use_ggr,
                                        hidden=min(128, cfg.style_channels))
        self.lst = LocalStructureTransfer(cfg) if cfg.use_lst else None
        self.decoder = Decoder(cfg)
        self.blend = PixelBlend(cfg.width(0), num_classes) if cfg.pixel_blend else None

    def forward(self, source_image: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor,
                source_parsing: torch.Tensor, target_parsing: torch.Tensor, flow: torch.Tensor,
                visibility: torch.Tensor, texture_flow: torch.Tensor | None = None,
                warped_image: torch.Tensor | None = None, prior: torch.Tensor | None = None) -> GeneratorOutput:
        """All maps at the image frame except ``flow``/``visibility``/``texture_flow`` (any size, resized here).

        ``flow`` warps the bottleneck features (the paper's ``F_I`` fusion); ``texture_flow`` (default ``flow``)
        warps the source features of the finer decoder scales and the source pixels (the texture path);
        ``warped_image`` is the source already warped by it at the frame (computed when None); ``prior`` replaces
        the texture path's copy prior (:func:`copy_prior`), e.g. ones where a prefilled hole is the start.
        """
        dtype = source_image.dtype
        texture = self.cfg.texture_skips or self.cfg.pixel_blend
        source_in = torch.cat([source_image, source_pose.to(dtype), source_parsing.to(dtype)], 1)
        source_levels = self.source_encoder(source_in, all_levels=True) if self.cfg.texture_skips else None
        source_feat = source_levels[-1] if source_levels is not None else self.source_encoder(source_in)
        target_feat = self.target_encoder(torch.cat([target_pose.to(dtype), target_parsing.to(dtype)], 1))
        size = source_feat.shape[-2:]
        stride = 2**self.cfg.num_downsample
        vis = F.adaptive_avg_pool2d(visibility, size) if visibility.shape[-2:] != size else visibility
        ss = F.avg_pool2d(source_parsing.to(dtype), stride) if stride > 1 else source_parsing
        sg = F.avg_pool2d(target_parsing.to(dtype), stride) if stride > 1 else target_parsing
        fused = self.fusion(target_feat, warp(source_feat, flow), vis)
        modulated = self.ggr(fused, self.style_encoder(source_feat), ss, sg, vis)
        plan = None
        generated = modulated
        if self.lst is not None:
            generated, plan = self.lst(source_feat, modulated)
        if not texture:
            return GeneratorOutput(self.decoder(generated)[0], fused, modulated, generated, plan)
        tflow = flow if texture_flow is None else texture_flow
        if prior is None:
            prior = copy_prior(visibility, tflow, source_parsing, target_parsing)
        else:
            prior = resample(prior.float(), tuple(target_parsing.shape[-2:])).clamp(0, 1)  # type: ignore[arg-type]
        warped_feats = priors = None
        if source_levels is not None:
            warped_feats = [warp(f, resample(tflow, f.shape[-2:])) for f in source_levels[:-1]]
            priors = [prior if lv == 0 else F.avg_pool2d(prior, 2**lv) for lv in range(len(warped_feats))]
        image, last, gates = self.decoder(generated, warped_feats, priors)
        decoded, mask = None, None
        if self.blend is not None:
            if warped_image is None:
                warped_image = warp(source_image, resample(tflow, source_image.shape[-2:]))
            decoded = image
            image, mask = self.blend(decoded, last, warped_image, prior, target_parsing)
        return GeneratorOutput(image, fused, modulated, generated, plan, decoded, prior, gates, mask)


def _check(name: str, t: torch.Tensor | None, channels: int, ref: tuple[int, int, int] | None, stride: int,
           example: str) -> tuple[int, int, int]:
    """Shape check of one input; returns ``(B, H, W)``."""
    if t is None:
        raise InputError(f"{name}: missing; expected a tensor of shape {example}")
    if not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[1] != channels:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise InputError(f"{name}: expected shape {example}, got {shape}")
    b, _, h, w = t.shape
    if ref is not None and (b, h, w) != ref:
        raise InputError(f"{name}: expected shape {example} with (B, H, W) = {ref}, got {tuple(t.shape)}")
    if ref is None and (h % stride or w % stride):
        raise InputError(f"{name}: expected shape {example} with H and W multiples of the network stride "
                         f"{stride}, got {tuple(t.shape)}")
    return b, h, w


class GLocalModel(nn.Module):
    """Semantic prediction + flow/visibility + generator, built from a :class:`ModelConfig`.

    ``num_classes`` must be the 8 canonical regions (the GGR graph is defined on them). ``height`` and
    ``width`` are the model frame (``data.height``/``data.width``); they are recorded with saved
    weights and must be multiples of ``cfg.stride``.
    """

    def __init__(self, cfg: ModelConfig, height: int = 256, width: int = 176, num_classes: int = 8) -> None:
        super().__init__()
        if num_classes != len(REGIONS):
            raise ConfigError(f"model: num_classes = {num_classes}: GLocal needs the {len(REGIONS)} canonical "
                              f"classes {', '.join(REGIONS)}")
        if height % cfg.stride or width % cfg.stride:
            raise ConfigError(f"model: frame {height}x{width} is not a multiple of the network stride "
                              f"{cfg.stride} (2**num_downsample * lst_pool)")
        self.cfg, self.height, self.width, self.num_classes = cfg, height, width, num_classes
        self.semantic = SemanticPredictor(cfg, num_classes)
        self.flow = FlowEstimator(cfg) if cfg.flow == "learned" else None
        self.generator = GLocalGenerator(cfg, num_classes)

    # -- weights folders ----------------------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        """The networks saved as components of a weights folder, by name."""
        parts: dict[str, nn.Module] = {"semantic": self.semantic, "generator": self.generator}
        if self.flow is not None:
            parts["flow"] = self.flow
        return parts

    def save_pretrained(self, directory: str | Path, discriminator: nn.Module | None = None,
                        pose_sigma: float | None = None) -> Path:
        """Write ``config.json`` + one safetensors component per network (:mod:`.pretrained`); returns the folder.

        ``pose_sigma`` (the ``data.pose_sigma`` the model was trained with, at a 256-pixel-high frame) is
        recorded in ``frame`` so that inference draws the same pose heatmaps."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        parts = self.components()
        if discriminator is not None:
            parts["discriminator"] = discriminator
        for name, module in parts.items():
            save_component(module, directory, name)
        write_json(directory / CONFIG_NAME, {
            "format": FORMAT, "format_version": FORMAT_VERSION, "glocal_version": __version__,
            "model": to_dict(self.cfg),
            "frame": {"height": self.height, "width": self.width,
                      **({"pose_sigma": float(pose_sigma)} if pose_sigma is not None else {})},
            "num_classes": self.num_classes, "components": sorted(parts),
        })
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> GLocalModel:
        """Rebuild the model from a weights folder and load it strictly (:class:`WeightsError` otherwise)."""
        cfg, meta = read_weights_config(directory)
        frame = meta.get("frame", {})
        try:
            model = cls(cfg, int(frame["height"]), int(frame["width"]), int(meta.get("num_classes", 8)))
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise WeightsError(f"{Path(directory) / CONFIG_NAME}: invalid frame/classes ({exc})") from exc
        for name, module in model.components().items():
            load_component(module, directory, name)
        return model.to(map_location)

    # -- input validation -------------------------------------------------------------------------
    def check_inputs(self, source_image: torch.Tensor, source_pose: torch.Tensor,
                     target_pose: torch.Tensor | None = None, source_parsing: torch.Tensor | None = None,
                     target_parsing: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                     check_finite: bool = True, flow: torch.Tensor | None = None,
                     visibility: torch.Tensor | None = None) -> None:
        """Raise :class:`InputError` on a wrong shape/channel count, a size off the stride, or NaN/inf.

        ``flow (B, 2, h, w)`` and ``visibility (B, 1, h, w)`` may have any size (they are resampled).
        """
        s, n = self.cfg.stride, self.num_classes
        ex = f"(B, {{c}}, H, W) (e.g. (B, {{c}}, {self.height}, {self.width}))"
        ref = _check("source_image", source_image, 3, None, s, ex.format(c=3))
        _check("source_pose", source_pose, POSE_CHANNELS, ref, s, ex.format(c=POSE_CHANNELS))
        optional = {"target_pose": (target_pose, POSE_CHANNELS), "source_parsing": (source_parsing, n),
                    "target_parsing": (target_parsing, n), "mask": (mask, 1)}
        for name, (t, ch) in optional.items():
            if t is not None:
                _check(name, t, ch, ref, s, ex.format(c=ch))
        for name, t, ch in (("flow", flow, 2), ("visibility", visibility, 1)):
            if t is not None:
                bad = not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[1] != ch or t.shape[0] != ref[0]
                if bad:
                    shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                    raise InputError(f"{name}: expected shape (B, {ch}, h, w) with B = {ref[0]} (any h, w), got {shape}")
        if check_finite:
            names = ["source_image", "source_pose", "target_pose", "source_parsing", "target_parsing", "mask",
                     "flow", "visibility"]
            values = (source_image, source_pose, target_pose, source_parsing, target_parsing, mask, flow, visibility)
            given = [(nm, t) for nm, t in zip(names, values) if t is not None]
            finite = torch.stack([torch.isfinite(t).all() for _, t in given])
            if not bool(finite.all()):  # one host sync per call
                bad = [nm for (nm, _), ok in zip(given, finite.tolist()) if not ok]
                raise InputError(f"{', '.join(bad)}: contains NaN or infinite values")

    # -- sub-tasks ----------------------------------------------------------------------------------
    def predict_target_parsing(self, source_image: torch.Tensor, source_pose: torch.Tensor,
                               target_pose: torch.Tensor) -> torch.Tensor:
        """Semantic-prediction logits ``(B, N, H, W)`` for ``(Is, Ps, Pt)``."""
        return self.semantic(source_image, source_pose.to(source_image.dtype), target_pose.to(source_image.dtype))

    @torch.no_grad()
    def estimate_source_parsing(self, image: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """One-hot source parsing ``(B, N, H, W)`` predicted by the semantic network with ``Pt = Ps``."""
        self.check_inputs(image, pose)
        logits = self.predict_target_parsing(image, pose, pose)
        return F.one_hot(logits.argmax(1), self.num_classes).permute(0, 3, 1, 2).to(image.dtype)

    def estimate_flow(self, source_image: torch.Tensor, source_pose: torch.Tensor,
                      target_pose: torch.Tensor, init_flow: torch.Tensor | None = None,
                      init_visibility: torch.Tensor | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Flow pyramid and visibility; identity flow and all-visible for ``flow: none``.

        ``init_flow``/``init_visibility``: the flow to refine (``flow_refine`` only, see :class:`FlowEstimator`).
        """
        if self.flow is None:
            b, _, h, w = source_image.shape
            stride = 2**self.cfg.num_downsample
            flow = identity_flow(b, h // stride, w // stride, source_image)
            return [flow], source_image.new_ones(b, 1, h // stride, w // stride)
        dtype = source_image.dtype
        if init_flow is None and init_visibility is None:  # the plain call, as the flow stage makes it
            return self.flow(source_image, source_pose.to(dtype), target_pose.to(dtype))
        return self.flow(source_image, source_pose.to(dtype), target_pose.to(dtype), init_flow, init_visibility)

    def pyramid_sizes(self) -> list[tuple[int, int]]:
        """``(h, w)`` of the flow pyramid levels, coarsest first (one level for ``flow: none``)."""
        nd = self.cfg.num_downsample
        levels = self.cfg.flow_levels if self.flow is not None else 1
        return [(self.height // 2**(nd - i), self.width // 2**(nd - i)) for i in range(levels)]

    def resolve_flow(self, source_image: torch.Tensor, source_pose: torch.Tensor, target_pose: torch.Tensor,
                     flow: torch.Tensor | None = None, visibility: torch.Tensor | None = None,
                     ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """``(pyramid, visibility, texture flow)`` for a transfer: estimated, given, or given and refined.

        * nothing given: the estimator (identity for ``flow: none``); the texture flow is its finest level.
        * ``flow`` given (``(B, 2, h, w)`` normalised target -> source offsets, any size), ``flow_refine`` off:
          it replaces the estimator; the pyramid is it area-averaged to the pyramid's sizes, the visibility the
          given one (all ones when None), and the texture flow the given flow at its own resolution.
        * ``flow_refine`` on: the estimator refines the given flow (identity when None); the texture flow is the
          given flow plus the estimator's finest residual, upsampled, so a sharp given flow stays sharp.
        """
        if visibility is not None and flow is None and not self.cfg.flow_refine:
            raise InputError("visibility: given without a flow; pass flow= too (or use model.flow_refine)")
        if self.cfg.flow_refine:
            flows, vis = self.estimate_flow(source_image, source_pose, target_pose, flow, visibility)
            finest = flows[-1]
            if flow is None or flow.shape[-2] <= finest.shape[-2] or flow.shape[-1] <= finest.shape[-1]:
                return flows, vis, finest
            given = flow.to(finest.dtype)
            residual = finest - resample(given, finest.shape[-2:])
            return flows, vis, given + resample(residual, given.shape[-2:])
        if flow is None:
            flows, vis = self.estimate_flow(source_image, source_pose, target_pose)
            return flows, vis, flows[-1]
        given = flow.to(source_image.dtype)
        vis = visibility if visibility is not None else given.new_ones(given.shape[0], 1, *given.shape[-2:])
        return [resample(given, size) for size in self.pyramid_sizes()], vis.to(given.dtype), given

    # -- the forward API ----------------------------------------------------------------------------
    def forward(self, source_image: torch.Tensor, source_pose: torch.Tensor,
                target_pose: torch.Tensor | None = None, source_parsing: torch.Tensor | None = None,
                target_parsing: torch.Tensor | None = None, mask: torch.Tensor | None = None, *,
                mode: str | None = None, check_finite: bool = True, flow: torch.Tensor | None = None,
                visibility: torch.Tensor | None = None, prefilled: torch.Tensor | None = None) -> GLocalOutput:
        """Generate the target image.

        Args:
            source_image: ``(B, 3, H, W)`` in [-1, 1]; H, W multiples of ``cfg.stride``.
            source_pose, target_pose: ``(B, 18, H, W)`` keypoint heatmaps (target ignored in inpainting).
            source_parsing: ``(B, 8, H, W)`` one-hot (or soft) source parsing; estimated when None.
            target_parsing: ``(B, 8, H, W)``; predicted by the semantic network when None (logits returned).
            mask: inpainting only, ``(B, 1, H, W)``, 1 = missing pixel.
            mode: "transfer" or "inpaint"; defaults to ``cfg.mode``.
            check_finite: reject NaN/inf inputs (one host sync).
            flow: transfer only, an external flow ``(B, 2, h, w)`` (any size; e.g. from the 3D body fit) in the
                convention of :mod:`glocal_cli.models.flow` (normalised ``grid_sample`` offsets, target -> source).
                It replaces the estimator, or is refined by it with ``flow_refine`` (:meth:`resolve_flow`).
            visibility: ``m_vis (B, 1, h, w)`` in [0, 1] (target frame) of the given flow; all ones when None.
            prefilled: inpainting with ``cfg.inpaint_prefill`` only: ``source_image`` with its holes already
                filled classically (:func:`glocal_cli.data.prefill.prefill_tensor`, what the training data
                loader computes); when None it is computed here from ``source_image`` and ``mask``. Without
                ``inpaint_prefill`` the hole is zeroed and this is ignored.
        """
        mode = mode or self.cfg.mode
        if mode not in ("transfer", "inpaint"):
            raise InputError(f"mode = {mode!r}: expected 'transfer' or 'inpaint'")
        if mode == "transfer" and mask is not None:
            raise InputError("mask: only used in inpaint mode")
        if mode == "transfer" and target_pose is None:
            raise InputError(f"target_pose: missing; expected a tensor of shape (B, 18, {self.height}, {self.width})")
        if mode == "inpaint" and mask is None:
            raise InputError(f"mask: missing; inpaint mode needs a (B, 1, {self.height}, {self.width}) mask (1 = hole)")
        if mode == "inpaint" and (flow is not None or visibility is not None):
            raise InputError("flow, visibility: only used in transfer mode (inpainting uses the identity flow and "
                             "1 - mask)")
        self.check_inputs(source_image, source_pose, target_pose, source_parsing, target_parsing, mask,
                          check_finite, flow, visibility)
        dtype = source_image.dtype
        prior = None
        if mode == "inpaint":
            keep = 1 - mask.to(dtype)
            if self.cfg.inpaint_prefill:  # the classical fill is the start: copied everywhere unless corrected
                source_image = (prefilled if prefilled is not None else prefill_tensor(source_image, mask)).to(dtype)
                prior = torch.ones_like(keep)
            else:
                source_image = source_image * keep
            target_pose = source_pose
        if source_parsing is None:
            source_parsing = self.estimate_source_parsing(source_image, source_pose)
        logits = None
        if target_parsing is None:
            logits = self.predict_target_parsing(source_image, source_pose, target_pose)
            target_parsing = torch.softmax(logits.float(), dim=1).to(dtype)
        if mode == "inpaint":
            b, _, h, w = source_image.shape
            stride = 2**self.cfg.num_downsample
            flows = [identity_flow(b, h // stride, w // stride, source_image)]
            visibility = keep
            texture_flow = flows[-1]
            style_parsing = source_parsing.to(dtype) * keep  # styles from the existing area only
        else:
            flows, visibility, texture_flow = self.resolve_flow(source_image, source_pose, target_pose, flow,
                                                                visibility)
            style_parsing = source_parsing
        warped = warp(source_image, resample(texture_flow, source_image.shape[-2:]))
        feats = self.generator(source_image, source_pose, target_pose, style_parsing, target_parsing,
                               flows[0], visibility, texture_flow, warped, prior)
        return GLocalOutput(feats.image, target_parsing, logits, flows, visibility, warped, source_image, feats)

