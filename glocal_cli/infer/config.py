"""Configuration of inference (transfer / inpaint pipelines).

Every set of choices is one ``Literal`` alias below, read by the config loader (YAML, ``--set``), by
:class:`InferConfig` itself (a config made in Python is checked the same way) and by the code that branches on
it. :data:`GROUPS` sorts the keys for the docs (``docs/inference.md``). The finer variants the benchmarks compare (the
ghost gate, the clean plate, the plain-backdrop threshold, the mirror fill's strength) are not user settings:
they are :class:`BlendRules`,
whose defaults won on the real pairs (``docs/results.md``, "Defaults chosen by measurement"), passed by code
(``GLocalPipeline(rules=...)``, ``benchmarks/bench_body_pairs.py --variant``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

FlowMode = Literal["body3d", "learned", "hybrid"]
"""``infer.flow``: the 3D body's flow, the learned estimator's, or the 3D flow refined by the estimator."""
SourceParsing = Literal["auto", "estimate", "body3d"]
"""``infer.source_parsing``: the given file else estimated, always estimated, or the fitted body's parsing."""
Precision = Literal["auto", "bf16", "fp16", "fp32"]
PoseFrame = Literal["auto", "source", "fit", "model"]
ImageFormat = Literal["png", "jpg"]
Background = Literal["auto", "plain", "source", "generated"]
CopyVisible = Literal["model", "mesh"]
UnseenFill = Literal["model", "part_mean", "mirror"]
GhostFill = Literal["plate", "model"]
InpaintOutput = Literal["source", "frame"]
InpaintFill = Literal["texture", "semantic", "telea"]
"""``infer.inpaint_fill``: the classical fill a prefill model refines: class by class with the texture continued,
class by class, or Telea's alone."""

FLOW_MODES: tuple[str, ...] = typing.get_args(FlowMode)
SOURCE_PARSING_MODES: tuple[str, ...] = typing.get_args(SourceParsing)

GROUPS: dict[str, tuple[str, ...]] = {
    "run": ("batch_size", "workers", "device", "precision", "writer_threads", "seed"),
    "input": ("keypoints", "pose_frame", "pose_csv_frame", "fit_margin", "max_input_side", "min_visible_keypoints",
              "source_parsing", "source_parser", "parsing_ensemble", "parsing_flip", "parsing_refine"),
    "output": ("image_format", "paste_back", "full_res_blend", "grid", "save_parsing", "save_flow", "preview", "fps"),
    "transfer": ("flow", "background", "copy_visible", "unseen_fill"),
    "inpaint": ("mask", "mask_ratio_bin", "mask_classes", "mask_dilate", "mask_invert", "inpaint_output",
                "inpaint_feather", "inpaint_fill", "texture_strength", "texture_depth"),
}
"""Every ``infer.*`` key in one group (a test checks that none is missing)."""


@dataclass(frozen=True)
class InferConfig:
    """Batched inference settings (``glocal transfer`` / ``glocal inpaint`` and ``GLocalPipeline``)."""

    batch_size: int = 8
    """Images per forward pass."""
    workers: int = 2
    """DataLoader worker processes that decode images and poses while the model runs (0: in the main process)."""
    device: str = "auto"
    """cpu, cuda, cuda:N, or auto (CUDA when available). Under torchrun each rank uses cuda:LOCAL_RANK."""
    precision: Precision = "auto"
    """Autocast precision: auto = bf16 on CUDA, fp32 on CPU."""
    keypoints: str = "auto"
    """Keypoint backend for photos without a pose (--pose-from, sources without --source-pose or sidecar)."""
    pose_frame: PoseFrame = "auto"
    """How target-pose JSON coordinates map into the model frame: source = pixels of the source image;
    fit = the pose's own box fitted into the frame (one shared box for a --video sequence); model =
    already in the model frame; auto = the frame the pose file records (canvas_width/canvas_height,
    'frame', COCO image size; a canvas of the source's size = source pixels, community frames such as
    the padded 256x256 DeepFashion one recognised, any other canvas fitted whole into the frame), else
    a guess, warned: the pose's keypoint box mapped onto the source person's box (docs/inference.md)."""
    pose_csv_frame: str = "auto"
    """Frame of keypoint-CSV coordinates: a frame name (deepfashion-256x256, market-128x64), HxW, or auto
    (the manifest.json beside the CSV, else the model frame)."""
    fit_margin: float = 0.15
    """Margin around the person's keypoint box (times its larger side) when fitting into the frame."""
    max_input_side: int = 2048
    """Images whose longer side exceeds this are downscaled on load (warned)."""
    min_visible_keypoints: int = 9
    """Warn when fewer keypoints than this are visible in the model frame."""
    image_format: ImageFormat = "png"
    """File format of the result pictures."""
    grid: bool = False
    """Also write a grid: source | source pose | target pose | predicted parsing | result."""
    save_parsing: bool = False
    """Also write the (predicted) target parsing as a colour picture."""
    save_flow: bool = False
    """Also write the flow the model used as a colour picture (hue = direction, saturation = length)."""
    flow: FlowMode = "body3d"
    """Where the geometry of a transfer comes from: body3d = the 3D body model (``body.model``) fitted to the
    source and target keypoints in the model frame, rendered and corresponded (flow and visibility given to the
    model); learned = the model's own flow estimator; hybrid = the 3D flow as the starting point that the
    learned estimator refines (needs weights trained with ``model.flow_refine: true``). A pair whose body fit
    is flagged (too few keypoints, no torso, high RMS) uses the learned flow, with a warning (docs/inference.md)."""
    source_parsing: SourceParsing = "auto"
    """Source parsing of photos: auto = the given file (--source-parsing or the sidecar), else estimated by the
    semantic network (Pt = Ps); estimate = always estimated (given files ignored); body3d = the given file,
    else the parsing of the fitted 3D body (torso = upper clothes, upper legs = lower clothes, head = face),
    estimated when the source's fit is flagged."""
    source_parser: str = ""
    """A weights folder whose semantic network estimates the source parsing of photos without a parsing file
    (``Pt = Ps``) in place of the transfer weights' own, e.g. one fine-tuned on real photos (CCP) that would
    forget the target-parsing half of the task if it replaced the weights' network; its frame must be the
    weights' frame. Empty: the weights' own network."""
    parsing_ensemble: bool = False
    """With ``source_parser`` set: the source parsing is the mean of its probabilities and those of the weights'
    own semantic network (two networks that erred differently; each with ``parsing_flip`` when set). On 97
    held-out street photos the 256x176 parser with ``weights/parser``, flipped and refined, reaches person IoU
    0.901 against 0.894 and 0.893 alone (docs/results.md). Without ``source_parser`` it changes nothing."""
    parsing_flip: bool = False
    """Estimate a source parsing from the photo and its mirror image (the mean of both predictions; twice the
    semantic network's time): on 97 held-out street photos (CCP) with ``weights/parser`` mIoU and person IoU rise
    by about 0.015 and 0.01 (docs/results.md)."""
    parsing_refine: bool = False
    """The estimated parsing's person outline snapped to the photo's edges: a colour guided filter of the person
    probability, guided by the framed photo (:mod:`glocal_cli.infer.outline`); person where it exceeds one half.
    Person IoU on held-out street photos 0.880 -> 0.894 (``docs/results.md``)."""
    preview: bool = False
    """Also write ``<name>_preview.png``: fitted mesh over the source and the result, target parts, flow,
    visibility and warped source, to check the fit at a glance."""
    paste_back: bool = True
    """Write results in the source photo's own canvas and resolution (the model frame is internal); off =
    the model-frame picture."""
    background: Background = "auto"
    """Pose transfer: where the predicted target parsing says background, 'plain' paints the source photo's
    backdrop colour (the median of its border) and copies nothing from the source there (so the source's person
    never shows through); 'source' keeps the source photo itself where the source shows background at the same
    pixel, copied at the photo's resolution (the real street, whatever the weights learned to draw there), and
    where the source person stood the photo without its person; 'generated' keeps the model's pixels (what
    benchmarks whose targets were shot elsewhere reward: ``weights/market`` recommends it); 'auto' = plain when
    the source's border is a plain studio backdrop (spread under plain_background_spread), else source."""
    copy_visible: CopyVisible = "mesh"
    """Pose transfer with a usable 3D flow (``flow: body3d``): 'mesh' copies every target pixel the 3D
    correspondence marks visible from the source (the pixel blend's m raised to 1 there); 'model' keeps the
    blend head's m (weights whose generator learned real photos). See :mod:`glocal_cli.infer.mesh_guide`."""
    unseen_fill: UnseenFill = "part_mean"
    """Pose transfer with a usable 3D flow: what fills the body pixels the source does not show. 'part_mean' =
    the mean colour the source shows of the same body part (flat, right-coloured); 'mirror' = the source's
    texture of the other side of the body point where the source shows it (the front of a shirt from its
    back; the head and the rest: the part mean); 'model' = the decoder's generated picture. On the 59 real
    DeepFashion pairs part_mean scores best (SSIM 0.615 / 15.09 dB; mirror 0.607 / 14.90, model 0.597 / 14.17)
    and looks cleaner: mirror carries prints over but also white blotches where the other side's lookup misses
    (docs/pictures/infer_defaults_side_by_side.png). 'model' (with copy_visible 'model') shows what weights whose generator
    learned real photos make of it."""
    full_res_blend: bool = True
    """Pose transfer written at the photo's size: copy what the source shows from the photo itself, warped at
    full resolution (the generator's visibility-gated pixel blend, redone at the photo's resolution), instead
    of upsampling the model-frame picture. Needs weights with model.pixel_blend."""
    fps: float = 10.0
    """Frames per second of --video."""
    writer_threads: int = 2
    """Threads that encode and write result files while the next batch runs."""
    mask: str = "irregular"
    """Inpainting mask: irregular, semantic, or a mask image / folder of masks (white = hole)."""
    mask_ratio_bin: int = 2
    """Area bin of irregular masks (Liu et al. 2018): 0 = 1-10%, 1 = 10-20%, ..., 5 = 50-60%."""
    mask_classes: tuple[str, ...] = ("upper",)
    """Parsing classes removed by semantic masks (names or ids)."""
    mask_dilate: int = 1
    """Pixels by which semantic masks are grown (at the model frame)."""
    mask_invert: bool = False
    """Mask files use black = hole instead of white = hole."""
    inpaint_output: InpaintOutput = "source"
    """Inpainting result: source = the photo at its own size with only the holes replaced by the model's
    fill (every known pixel kept); frame = the model-frame picture (a low-resolution reconstruction)."""
    inpaint_feather: float = 2.0
    """Width (model-frame pixels, scaled to the photo) of the seam inside each hole over which the fill's
    colour is eased into the surrounding known pixels; 0 = hard edge. Known pixels are never changed."""
    inpaint_fill: InpaintFill = "texture"
    """The classical fill that weights with ``model.inpaint_prefill`` (the default inpainting weights) refine:
    semantic = each class's part of the hole filled from that class's own known pixels, mixed by the class
    probabilities the semantic network (``source_parser`` when set) estimates from the photo with the hole
    Telea-filled (:func:`glocal_cli.data.prefill.semantic_fill`); texture = the semantic fill plus the detail
    (stripes, prints) of patches copied from known pixels of the same class, PatchMatch-style, never more than
    the class shows next to the hole (:func:`glocal_cli.data.prefill.texture_fill`; synthesised at 1 MP at most,
    slower); telea = OpenCV's Telea fill alone. texture scores at least as well as semantic on both real test sets
    and continues prints into the hole (docs/results.md, "Texture fill with the class's own texture level")."""
    texture_strength: float = 1.0
    """With ``inpaint_fill: texture``: the share of the synthesised texture's detail added to the semantic fill,
    0..1. 0 = the semantic fill; 1 = all of it (with ``texture_depth`` fading it into the hole). The most detail
    at which neither CCP validation set scores below the semantic fill (docs/results.md)."""
    texture_depth: float = 8.0
    """With ``inpaint_fill: texture``: pixels over which the detail fades out from the hole's rim into the hole
    (deeper in, the texture's phase is less certain); 0 = no fade, the same strength everywhere. In pixels of the
    synthesis: the photo's own, or of its downscaled copy when the hole's window exceeds 1 MP."""
    RETIRED: ClassVar[dict[str, str]] = {
        key: "its default won on the real pairs; code sets it through glocal_cli.infer.config.BlendRules"
        for key in ("ghost_gate", "ghost_fill", "mirror_strength", "plain_background_spread")}
    """Keys removed from ``infer``: a config that names one (a run saved before) loads with a warning."""
    seed: int = 0
    """Seed of generated masks (item i uses seed + i) and of randomly initialised demo models."""

    def texture_options(self) -> dict[str, float | None]:
        """The keyword arguments of :func:`glocal_cli.data.prefill.texture_fill` these settings make."""
        return {"weight": self.texture_strength, "taper": self.texture_depth or None}

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size = {self.batch_size} must be >= 1")
        if self.workers < 0 or self.writer_threads < 1:
            raise ValueError("workers must be >= 0 and writer_threads >= 1")
        if not 0 <= self.mask_ratio_bin <= 5:
            raise ValueError(f"mask_ratio_bin = {self.mask_ratio_bin} must be in 0..5")
        if self.fps <= 0 or self.max_input_side < 64 or self.fit_margin < 0:
            raise ValueError("fps must be > 0, max_input_side >= 64 and fit_margin >= 0")
        if self.inpaint_feather < 0:
            raise ValueError(f"inpaint_feather = {self.inpaint_feather} must be >= 0")
        if not 0 <= self.texture_strength <= 1:
            raise ValueError(f"texture_strength = {self.texture_strength} must be in 0..1")
        if self.texture_depth < 0:
            raise ValueError(f"texture_depth = {self.texture_depth} must be >= 0 (0: no fade)")
        for name, choices in _choices(InferConfig).items():  # every Literal key, from its one definition above
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} = {getattr(self, name)!r}: expected one of {', '.join(choices)}")


@functools.cache
def _choices(cls: type) -> dict[str, tuple[str, ...]]:
    """``{field: allowed values}`` of the ``Literal`` fields of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: typing.get_args(hints[f.name]) for f in dataclasses.fields(cls)
            if typing.get_origin(hints[f.name]) is Literal}


@dataclass(frozen=True)
class BlendRules:
    """Finer rules of how pose transfer composes the generator's output with the photo (the ghost gate, the clean
    plate, the plain-backdrop test, the mirror fill's strength): variants the benchmarks compare, not user settings (each default won on the 59 real pairs, by score or by
    eye: ``docs/results.md``, "Defaults chosen by measurement"). Code passes others to
    :class:`~glocal_cli.infer.pipeline.GLocalPipeline` (``rules=``, ``with_rules``)."""

    mirror_strength: float = 1.0
    """unseen_fill 'mirror': how much of the other side's texture is laid over the part's mean colour (1 = all
    of it; 0.5 keeps prints recognisable at half contrast and, on the 59 real DeepFashion pairs, the PSNR of
    the flat mean)."""
    ghost_gate: bool = True
    """Pose transfer: copy no source pixel that shows the source's *person* onto a pixel the target parsing
    calls background (the blend mask m is scaled by 1 - warp(source person) * target background there, and the
    decoder's own picture fills it). Without it a textured (non-plain) backdrop shows a ghost of the source
    person where the target shows the wall: the flow is zero on the background, so the blend copies the source
    photo as it is, person included. Needs weights with model.pixel_blend."""
    ghost_fill: GhostFill = "plate"
    """With ghost_gate: what fills a target background pixel where the source person stood. 'plate' = the source
    photo without its person (the person of the source parsing removed and filled from the background around it,
    OpenCV Telea): a street stays a street, with no ghost and no wall; 'model' = the decoder's own picture."""
    plain_background_spread: float = 25.0
    """'auto' background: the largest per-channel spread (0-255; median absolute deviation scaled as a standard
    deviation) of the source border called plain."""
    plain_background_texture: float = 5.0
    """'auto' background: the largest texture of the source border called plain (0-255 levels: the 75th percentile
    of neighbouring border pixels' differences). Studio walls are smooth (<= 2.7 on the 59 DeepFashion photos);
    pale street walls that pass the spread test are not (9-12 on CCP photos)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.mirror_strength <= 1.0:
            raise ValueError(f"mirror_strength = {self.mirror_strength} must be in [0, 1]")
        if self.plain_background_spread < 0 or self.plain_background_texture < 0:
            raise ValueError("plain_background_spread and plain_background_texture must be >= 0")
        for name, choices in _choices(BlendRules).items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} = {getattr(self, name)!r}: expected one of {', '.join(choices)}")


WEIGHTS_SETTINGS_KEY = "infer"
"""The key of a weights folder's ``config.json`` under which it records the ``infer.*`` settings it was measured
best with (:func:`weights_settings`)."""


def weights_settings(directory: str | os.PathLike[str]) -> dict[str, typing.Any]:
    """The ``infer.*`` settings a weights folder recommends (its ``config.json``'s ``"infer"`` mapping; empty
    when it has none): they sit between the defaults and the user's config file, ``--set`` and options. A
    relative ``source_parser`` is a folder beside the weights (resolved against ``directory``). Unknown keys and
    bad values are a :class:`~glocal_cli.errors.WeightsError` naming the file and the key."""
    from glocal_cli.config.io import config_from_dict
    from glocal_cli.errors import ConfigError, WeightsError
    from glocal_cli.models.weights import CONFIG_NAME, read_weights_config

    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        return {}  # a missing weights folder is reported by the weights loader, where it is loaded
    _, meta = read_weights_config(directory)  # the one reader of config.json: its format checked there
    settings = meta.get(WEIGHTS_SETTINGS_KEY)
    if not settings:
        return {}
    if not isinstance(settings, dict):
        raise WeightsError(f"{path}: {WEIGHTS_SETTINGS_KEY!r} must be a mapping of infer.* settings")
    settings = dict(settings)
    if settings.get("source_parser") and not Path(settings["source_parser"]).is_absolute():
        settings["source_parser"] = str((Path(directory) / settings["source_parser"]).resolve())
    try:
        config_from_dict(InferConfig, settings, label=f"{path} ({WEIGHTS_SETTINGS_KEY})")
    except ConfigError as exc:
        raise WeightsError(str(exc)) from None
    return settings


def resolve_infer_config(weights: str | os.PathLike[str] | None, source: str | os.PathLike[str] | None = None,
                         overrides: typing.Sequence[str] = ()) -> InferConfig:
    """The ``infer`` section for ``weights``: the defaults, the settings the weights recommend
    (:func:`weights_settings`), a preset/config file (``source``), then ``--set`` items, each over the one
    before (what ``glocal transfer``/``inpaint``/``serve`` and the benchmarks use)."""
    from glocal_cli.config import resolve_config

    recommended = weights_settings(weights) if weights is not None else {}
    return resolve_config(source, overrides, base={"infer": recommended} if recommended else None).infer
