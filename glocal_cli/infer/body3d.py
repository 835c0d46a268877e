"""The 3D body in pose transfer: ``--flow body3d|hybrid``, ``infer.source_parsing: body3d`` and ``--preview``.

For a batch of pairs whose source and target keypoints are in the model frame, :class:`BodyFlow`

1. fits the body model (``body.model``) to every source and target pose at once
   (:func:`glocal_cli.body.pair.fit_poses`, one batched optimisation); fits are kept in a small
   cache keyed by the keypoints and the frame, so that one source used with many target poses (a
   folder of poses, an animation) is fitted once;
2. renders both bodies and corresponds them (:func:`glocal_cli.body.pair.body3d_correspondence`):
   a pixel flow target -> source and the 3 classes visible / invisible in the source / background;
3. turns them into what :meth:`GLocalModel.forward` takes: ``flow (B, 2, H, W)`` in normalised
   ``grid_sample`` offsets (:func:`glocal_cli.body.correspond.flow_to_normalised`: one pixel is
   ``2 / W`` in x and ``2 / H`` in y, ``align_corners=False``, the convention of
   :mod:`glocal_cli.models.flow`) and ``visibility (B, 1, H, W)``: 1 where visible, 0 where the
   source does not show the point, and 1 with a zero flow on the background (the model's copy prior
   and its predicted target parsing decide the outline there, not the naked mesh).

A pair with a flagged fit (too few keypoints, no torso, a person mostly cut by the frame, a keypoint
RMS over ``body.fit.max_rms_px``, a diverged fit) is never used silently: ``ok`` is False and its
note says why, and the pipeline runs the learned flow for that item instead.

Fitting needs autograd: call it outside ``torch.inference_mode``.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glocal_cli.body import load_body_model
from glocal_cli.body.config import BodyConfig
from glocal_cli.body.correspond import (
    BACKGROUND,
    INVISIBLE,
    VISIBLE,
    flow_to_normalised,
    mirror_correspond,
    mirror_vertices,
)
from glocal_cli.body.fit import FitResult, fit_keypoints, project
from glocal_cli.body.pair import (
    body3d_correspondence,
    body_parsing,
    fit_poses,
    plain_background_mask,
    refine_person_mask,
    render_fits,
)
from glocal_cli.body.preview import (
    compose_rows,
    draw_points,
    flow_picture,
    mesh_overlay,
    normal_shading,
    part_picture,
    visibility_picture,
    warped_picture,
)
from glocal_cli.body.render import interpolate, vertex_normals
from glocal_cli.data.keypoints import Pose

__all__ = ["BodyFlow", "FitMaps", "PairMaps", "PreviewMaps",
           "preview_picture", "stack_fits"]



def stack_fits(fits: Sequence[FitResult]) -> FitResult:
    """Concatenate fits of one frame into one :class:`FitResult` (``yaw_start`` dropped)."""
    if not fits:
        raise ValueError("stack_fits: no fits")
    cat = {k: torch.cat([getattr(f, k) for f in fits]) for k in
           ("global_orient", "body_pose", "shape", "camera", "rms_px", "ok")}
    return FitResult(cat["global_orient"], cat["body_pose"], cat["shape"], cat["camera"], cat["rms_px"], cat["ok"],
                     [r for f in fits for r in f.reason], None, fits[0].height, fits[0].width)


def _finite(fits: FitResult) -> FitResult:
    """The fits with non-finite parameters zeroed (a diverged, flagged fit still renders for pictures)."""
    clean = {k: torch.nan_to_num(getattr(fits, k), nan=0.0, posinf=0.0, neginf=0.0)
             for k in ("global_orient", "body_pose", "shape")}
    cam = fits.camera.clone()
    bad = ~torch.isfinite(cam).all(1)
    cam[bad] = torch.tensor([1.0, 0.0, 0.0])
    return FitResult(clean["global_orient"], clean["body_pose"], clean["shape"], cam, fits.rms_px, fits.ok,
                     fits.reason, fits.yaw_start, fits.height, fits.width)


@dataclass
class FitMaps:
    """Renderings of fitted images (CPU): what parsing from the mesh and the pictures need."""

    part: torch.Tensor
    """``long (B, H, W)`` body part per pixel (0 = background; :data:`~glocal_cli.body.base.BODY_PARTS`)."""
    keypoints: torch.Tensor
    """``float32 (B, 18, 2)`` the fitted body's keypoints projected into the frame."""
    rms_px: torch.Tensor
    """``(B,)`` keypoint RMS of the fits (frame pixels)."""
    ok: torch.Tensor
    """``bool (B,)`` whether each fit may be used."""
    notes: list[str]
    """Why a fit may not be used ('' when it may)."""
    shading: torch.Tensor | None = None
    """``float32 (B, H, W)`` surface shading for the mesh pictures (only when asked for)."""


@dataclass
class PairMaps:
    """3D correspondence of a batch of pairs, in the model frame."""

    flow: torch.Tensor
    """``float32 (B, 2, H, W)`` normalised offsets target -> source (on the body model's device)."""
    visibility: torch.Tensor
    """``float32 (B, 1, H, W)``: 1 visible or background, 0 invisible in the source (same device)."""
    flow_px: torch.Tensor
    """``float32 (B, H, W, 2)`` the same flow in pixels (CPU)."""
    classes: torch.Tensor
    """``uint8 (B, H, W)`` background 0 / visible 1 / invisible 2 (CPU)."""
    ok: torch.Tensor
    """``bool (B,)``: both fits usable (CPU)."""
    notes: list[str]
    """Per pair: why the 3D flow is not used ('' when it is)."""
    source: FitMaps
    """The source fits' renderings."""
    target: FitMaps
    """The target fits' renderings."""
    mirror_flow: torch.Tensor | None = None
    """``float32 (B, 2, H, W)`` normalised offsets to where the *other side* of each target body point is seen
    in the source (:func:`~glocal_cli.body.correspond.mirror_correspond`; 0 where it is not), when asked for."""
    mirror_visible: torch.Tensor | None = None
    """``bool (B, H, W)`` (CPU): the other side of the target point is seen in the source, when asked for."""


@dataclass
class PreviewMaps:
    """What one result's preview picture shows (frame-sized numpy arrays)."""

    source_part: np.ndarray
    """``(H, W)`` body parts of the source fit (zeros: no fit)."""
    target_part: np.ndarray
    """``(H, W)`` body parts of the target fit (zeros: no fit)."""
    flow_px: np.ndarray
    """``(H, W, 2)`` the flow the model used, in pixels."""
    classes: np.ndarray
    """``uint8 (H, W)`` background / visible / invisible."""
    warped: np.ndarray
    """``uint8 (H, W, 3)`` the source warped by the flow the model used."""
    source_points: tuple[np.ndarray, np.ndarray] | None = None
    """``(given, fitted)`` source keypoints ``(18, 2)`` (given ones with ``-1`` where missing)."""
    target_points: tuple[np.ndarray, np.ndarray] | None = None
    """``(given, fitted)`` target keypoints."""
    source_shading: np.ndarray | None = None
    """``(H, W)`` surface shading of the source mesh (None: flat colours)."""
    target_shading: np.ndarray | None = None
    """``(H, W)`` surface shading of the target mesh."""
    label: str = ""
    """A line under the titles: the flow used and any fallback note."""


class BodyFlow:
    """Fits, caches, renders and corresponds bodies for the pipeline (module docstring).

    ``cache_size`` fits are kept (least recently used dropped); ``fitted`` and ``cache_hits`` count
    fits computed and fits reused.
    """

    def __init__(self, cfg: BodyConfig | None = None, device: str | torch.device = "cpu",
                 cache_size: int = 512) -> None:
        self.cfg = cfg or BodyConfig()
        self.device = torch.device(device)
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, FitResult] = OrderedDict()
        self._body = None
        self._mirror: torch.Tensor | None = None
        self._points: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # cache key -> the pose it was fitted to
        self.fitted = 0
        self.cache_hits = 0
        self.warm_start = False
        """Refit a new pose from the cached fit of the nearest pose with the same visible keypoints (within
        ``warm_max_shift`` of the frame height on average): ``body.fit.iters_warm`` L-BFGS steps instead of a cold
        fit, ~10x cheaper. ``glocal serve`` turns it on (a dragged joint moves a few pixels per request); batch
        jobs keep cold fits, so a result never depends on what was fitted before it."""
        self.warm_start_max_shift = 0.08
        self.warm_fitted = 0

    @property
    def body(self):  # noqa: ANN201
        """The body model (loaded on first use, on the pipeline's device)."""
        if self._body is None:
            model = load_body_model(self.cfg.model)
            if self.device.type != "cpu":  # the shared cache keeps the CPU copy
                model = copy.deepcopy(model).to(self.device)
            self._body = model
        return self._body

    @staticmethod
    def _key(xy: np.ndarray, visible: np.ndarray, hw: tuple[int, int]) -> bytes:
        xy = np.where(np.asarray(visible, bool)[:, None], np.asarray(xy, np.float32), np.float32(-1))
        return np.asarray(hw, np.int32).tobytes() + np.asarray(visible, bool).tobytes() + xy.tobytes()

    def fit(self, xy: np.ndarray | torch.Tensor, visible: np.ndarray | torch.Tensor, hw: tuple[int, int]) -> FitResult:
        """Fits of ``N`` poses (``xy (N, 18, 2)``, ``visible (N, 18)``, frame ``hw``): the uncached ones in
        one batched :func:`fit_poses` call, each distinct pose once."""
        xy_np = np.asarray(xy.cpu() if torch.is_tensor(xy) else xy, np.float32)
        vis_np = np.asarray(visible.cpu() if torch.is_tensor(visible) else visible, bool)
        keys = [self._key(xy_np[i], vis_np[i], hw) for i in range(len(xy_np))]
        todo: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k in self._cache:
                self._cache.move_to_end(k)
            elif k not in todo:
                todo[k] = i
        self.cache_hits += len(keys) - len(todo)
        warm: dict[bytes, tuple[int, bytes]] = {}
        if self.warm_start:
            for k, i in todo.items():
                near = self._nearest(xy_np[i], vis_np[i], hw)
                if near is not None:
                    warm[k] = (i, near)
        cold = {k: i for k, i in todo.items() if k not in warm}
        if cold:
            poses = [Pose(xy_np[i], vis_np[i]) for i in cold.values()]
            fits = fit_poses(self.body, poses, int(hw[0]), int(hw[1]), self.cfg)
            self.fitted += len(poses)
            for j, (k, i) in enumerate(cold.items()):
                self._store(k, fits.select(j), xy_np[i], vis_np[i])
        if warm:
            idx = [i for i, _ in warm.values()]
            init = stack_fits([self._cache[near] for _, near in warm.values()])
            fits = fit_keypoints(self.body, xy_np[idx], vis_np[idx], int(hw[0]), int(hw[1]), self.cfg.fit,
                                 init=init)
            self.fitted += len(idx)
            self.warm_fitted += len(idx)
            for j, (k, (i, _)) in enumerate(warm.items()):
                self._store(k, fits.select(j), xy_np[i], vis_np[i])
        found = [self._cache[k] for k in keys]
        while len(self._cache) > self.cache_size:
            old, _ = self._cache.popitem(last=False)
            self._points.pop(old, None)
        return stack_fits(found)

    def _store(self, key: bytes, one: FitResult, xy: np.ndarray, visible: np.ndarray) -> None:
        self._cache[key] = FitResult(*(t.clone() for t in (one.global_orient, one.body_pose, one.shape,
                                                            one.camera, one.rms_px, one.ok)),
                                     one.reason, None, one.height, one.width)
        self._points[key] = (np.array(xy, np.float32), np.array(visible, bool))

    def _nearest(self, xy: np.ndarray, visible: np.ndarray, hw: tuple[int, int]) -> bytes | None:
        """The cached usable fit of the pose nearest to ``xy`` (same frame, same visible keypoints, mean shift
        of the visible points under ``warm_start_max_shift`` of the frame height), or ``None``."""
        best, best_d = None, self.warm_start_max_shift * float(hw[0])
        frame = np.asarray(hw, np.int32).tobytes()
        vis = np.asarray(visible, bool)
        if not vis.any():
            return None
        for key, (pxy, pvis) in self._points.items():
            if not key.startswith(frame) or not np.array_equal(pvis, vis) or not bool(self._cache[key].ok[0]):
                continue
            d = float(np.linalg.norm(pxy[vis] - np.asarray(xy, np.float32)[vis], axis=1).mean())
            if d < best_d:
                best, best_d = key, d
        return best

    def _maps(self, fits: FitResult, raster_part: torch.Tensor, raster, shading: bool) -> FitMaps:  # noqa: ANN001
        body = self.body
        dev = body.faces.device
        with torch.no_grad():
            out = body(fits.global_orient.to(dev), fits.body_pose.to(dev), fits.shape.to(dev), vertices=shading)
            kp = project(out.keypoints, fits.camera.to(dev))[..., :2].float().cpu()
            shade = None
            if shading:
                normals = interpolate(vertex_normals(out.vertices, body.faces), body.faces, raster).cpu()
                shade = torch.from_numpy(np.stack([normal_shading(n) for n in normals.numpy()]))
        notes = [r for r in fits.reason]
        return FitMaps(raster_part.cpu(), kp, fits.rms_px, fits.ok, notes, shade)

    def render(self, fits: FitResult, shading: bool = False) -> FitMaps:
        """Render fits in their frame (:func:`~glocal_cli.body.pair.render_fits`)."""
        fits = _finite(fits)
        rendered = render_fits(self.body, fits)
        return self._maps(fits, rendered.raster.part, rendered.raster, shading)

    @property
    def mirror(self) -> torch.Tensor:
        """The body model's vertex mirror map (:func:`~glocal_cli.body.correspond.mirror_vertices`), made once."""
        if self._mirror is None:
            body = self.body
            orient, pose = body.zero_pose(1)
            dev = body.faces.device
            rest = body(orient.to(dev), pose.to(dev), body.default_shape(1).to(dev)).vertices[0]
            self._mirror = mirror_vertices(rest, body.faces, body.face_parts)
        return self._mirror

    def pairs(self, source_xy: np.ndarray | torch.Tensor, source_visible: np.ndarray | torch.Tensor,
              target_xy: np.ndarray | torch.Tensor, target_visible: np.ndarray | torch.Tensor,
              hw: tuple[int, int], shading: bool = False, mirror: bool = False) -> PairMaps:
        """3D flow and visibility of ``B`` pairs (keypoints in the ``hw`` model frame), see the module docstring."""
        n = len(source_xy)
        xy = np.concatenate([np.asarray(source_xy, np.float32), np.asarray(target_xy, np.float32)])
        vis = np.concatenate([np.asarray(source_visible, bool), np.asarray(target_visible, bool)])
        fits = _finite(self.fit(xy, vis, hw))
        index = torch.arange(n)
        src = _subset(fits, index)
        tgt = _subset(fits, index + n)
        geo = body3d_correspondence(self.body, tgt, src, self.cfg)
        ok = geo.ok.cpu() & torch.isfinite(src.rms_px) & torch.isfinite(tgt.rms_px)
        notes = [f"3D body fit flagged ({reason or 'the fit is not usable'}): the learned flow is used instead"
                 if not good else "" for good, reason in zip(ok.tolist(), geo.reason)]
        classes = geo.visibility
        flow_px = torch.where((classes == BACKGROUND).unsqueeze(-1), 0.0, geo.flow.float())
        flow = flow_to_normalised(flow_px)
        visibility = (classes != INVISIBLE).to(flow.dtype).unsqueeze(1)
        src_maps = self._maps(src, geo.source.raster.part, geo.source.raster, shading)
        tgt_maps = self._maps(tgt, geo.target.raster.part, geo.target.raster, shading)
        maps = PairMaps(flow, visibility, flow_px.cpu(), classes.cpu().to(torch.uint8), ok, notes, src_maps, tgt_maps)
        if mirror:
            mflow, mvis = mirror_correspond(geo.target, geo.source, self.body.faces, self.mirror,
                                            self.cfg.depth_tolerance)
            maps.mirror_flow = flow_to_normalised(mflow)
            maps.mirror_visible = mvis.cpu()
        return maps

    def parsing(self, xy: np.ndarray | torch.Tensor, visible: np.ndarray | torch.Tensor, hw: tuple[int, int],
                person_masks: Sequence[np.ndarray | None] | None = None,
                images: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
        """8-class parsings ``uint8 (B, H, W)`` from the fitted meshes (:func:`~glocal_cli.body.pair.body_parsing`,
        refined by ``person_masks`` where given) and per image a note ('' when usable; the parsing of a
        flagged fit is all background and must not be used).

        ``images`` (the framed photos, ``uint8 (H, W, 3)``) instead of masks: each photo on a plain studio wall
        gets the person mask ``prepare-data --parsing body3d`` makes (the wall's flood fill, kept near the
        mesh: :func:`~glocal_cli.body.pair.plain_background_mask` and ``refine_person_mask``), so a
        model fine-tuned on such data sees the same kind of parsing at inference."""
        maps = self.render(self.fit(xy, visible, hw))
        out = np.zeros((len(maps.ok), int(hw[0]), int(hw[1])), np.uint8)
        notes = []
        for i, good in enumerate(maps.ok.tolist()):
            if good:
                mask = None if person_masks is None else person_masks[i]
                if mask is None and images is not None:
                    colour = plain_background_mask(np.asarray(images[i]))
                    mask = None if colour is None else refine_person_mask(colour, maps.part[i].cpu().numpy() > 0)
                out[i] = body_parsing(maps.part[i], mask)
                notes.append("")
            else:
                notes.append(f"source parsing from the 3D body not possible ({maps.notes[i]}): estimated instead")
        return out, notes


def _subset(fits: FitResult, index: torch.Tensor) -> FitResult:
    idx = index.tolist()
    return FitResult(fits.global_orient[index], fits.body_pose[index], fits.shape[index], fits.camera[index],
                     fits.rms_px[index], fits.ok[index], [fits.reason[i] for i in idx], None, fits.height, fits.width)


PREVIEW_COLUMNS = ("source + mesh", "result + mesh", "target parts", "flow", "visibility", "warped source")
"""Titles of the preview picture's columns (the result stands in for the target photo that transfer lacks)."""


def preview_picture(source: np.ndarray, result: np.ndarray, maps: PreviewMaps, min_height: int = 256,
                    pad: int = 2) -> np.ndarray:
    """One result's check picture: the columns of :func:`glocal_cli.body.preview.pair_row` (the result in
    place of the target photo) under a title strip.

    Given keypoints are drawn green, the fitted body's red; frames under ``min_height`` pixels are
    enlarged (nearest) so that a small model frame stays readable.
    """
    h, w = source.shape[:2]
    k = max(1, math.ceil(min_height / h))

    def up(a: np.ndarray | None) -> np.ndarray | None:
        if a is None or k == 1:
            return a
        return np.repeat(np.repeat(np.asarray(a), k, axis=0), k, axis=1)

    def mesh(photo: np.ndarray, part: np.ndarray, shade: np.ndarray | None,
             points: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        cell = mesh_overlay(up(photo), up(part), up(shade))
        if points is not None:
            given, fitted = (np.asarray(p, np.float32) for p in points)
            dot = max(1, k // 2)
            cell = draw_points(cell, (given + 0.5) * k - 0.5, (0, 200, 0), (given >= 0).all(-1), radius=dot)
            cell = draw_points(cell, (fitted + 0.5) * k - 0.5, (220, 0, 0), radius=dot)
        return cell

    cells = [
        mesh(source, maps.source_part, maps.source_shading, maps.source_points),
        mesh(result, maps.target_part, maps.target_shading, maps.target_points),
        part_picture(up(maps.target_part)),
        flow_picture(up(maps.flow_px), up(maps.classes)),
        visibility_picture(up(maps.classes)),
        warped_picture(up(maps.warped), up(maps.classes), up(result)),
    ]
    gap = np.full((h * k, pad, 3), 255, np.uint8)
    row = np.concatenate([x for c in cells for x in (c, gap)][:-1], axis=1)
    picture = compose_rows([row], PREVIEW_COLUMNS, pad=pad, cell_width=w * k)
    if maps.label:
        from PIL import Image, ImageDraw, ImageFont

        strip = Image.new("RGB", (picture.shape[1], 14), "white")
        ImageDraw.Draw(strip).text((2, 1), maps.label, fill=(0, 0, 0), font=ImageFont.load_default())
        picture = np.concatenate([np.asarray(strip), picture], axis=0)
    return picture


def learned_classes(visibility: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
    """3-class map of a learned visibility ``(B, 1, H, W)`` in [0, 1]: visible above 0.5, invisible below,
    background where the predicted target parsing ``(B, H, W)`` labels is 0 (for pictures)."""
    vis = torch.where(visibility[:, 0] >= 0.5, VISIBLE, INVISIBLE)
    return torch.where(parsing == 0, BACKGROUND, vis).to(torch.uint8)
