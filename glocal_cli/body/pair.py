"""From keypoints to geometry: fit bodies, render them, correspond pairs, and parse from the mesh.

The one library path that ``prepare-data --correspondence body3d``, ``transfer --flow body3d``
and the benchmarks share:

* :func:`fit_poses` - batched fits of many images (:func:`glocal_cli.body.fit.fit_keypoints` in
  chunks of ``BodyConfig.fit_batch_size``, shape shared per person when ``person_ids`` say so);
* :func:`render_fits` - posed meshes projected into the frame and rasterised;
* :func:`body3d_correspondence` - flow target -> source (pixels) and visible / invisible /
  background for pairs of fitted images; a pair with a flagged fit comes back ``None`` with the
  reason, so the caller falls back to the learned flow and says so;
* :func:`body_parsing` - the 8-class parsing of a fitted image from its part map, refined by a
  person mask when there is one (the fallback parsing for photos and datasets without any).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glocal_cli.body.base import PART_TO_SEMANTIC, BodyModel
from glocal_cli.body.config import BodyConfig
from glocal_cli.body.correspond import BodyCorrespondence, correspond
from glocal_cli.body.fit import FitResult, fit_keypoints
from glocal_cli.body.render import RenderedBody, project_weak_perspective, render_body
from glocal_cli.data.keypoints import Pose


def fit_poses(body: BodyModel, poses: Sequence[Pose], height: int, width: int, cfg: BodyConfig | None = None,
              person_ids: Sequence[int] | None = None, masks: Sequence[np.ndarray | None] | None = None,
              progress=None) -> FitResult:  # noqa: ANN001
    """Fit every pose (keypoints in the ``height x width`` frame), ``fit_batch_size`` at a time.

    Images of one person (equal ``person_ids``) go into the same chunk, so they share one shape (a
    person with more than ``fit_batch_size`` images is split into chunks that each fit a shape). ``progress(n)`` is called after each chunk with the number fitted.
    """
    cfg = cfg or BodyConfig()
    n = len(poses)
    bs = max(1, cfg.fit_batch_size)
    groups: dict[object, list[int]] = {}
    for i in range(n):
        groups.setdefault(i if person_ids is None else person_ids[i], []).append(i)
    # pack whole persons into chunks of at most bs images (a person with more images than bs is split)
    batches: list[list[int]] = [[]]
    for members in groups.values():
        for start in range(0, len(members), bs):
            part = members[start:start + bs]
            if len(batches[-1]) + len(part) > bs:
                batches.append([])
            batches[-1].extend(part)
    chunks: list[FitResult] = []
    index: list[int] = []
    for idx in batches:
        if not idx:
            continue
        kp = np.stack([poses[i].xy for i in idx]).astype(np.float32)
        vis = np.stack([poses[i].visible for i in idx])
        pid = None if person_ids is None else [person_ids[i] for i in idx]
        chunk_masks = None
        if masks is not None and all(masks[i] is not None for i in idx):
            chunk_masks = np.stack([np.asarray(masks[i]) > 0 for i in idx])
        chunks.append(fit_keypoints(body, kp, vis, height, width, cfg.fit, person_ids=pid, masks=chunk_masks))
        index += idx
        if progress is not None:
            progress(len(idx))
    if not chunks:
        raise ValueError("fit_poses: no poses")
    inverse = np.argsort(np.asarray(index))
    cat = {k: torch.cat([getattr(c, k) for c in chunks])[inverse]
           for k in ("global_orient", "body_pose", "shape", "camera", "rms_px", "ok")}
    reasons = [r for c in chunks for r in c.reason]
    return FitResult(cat["global_orient"], cat["body_pose"], cat["shape"], cat["camera"], cat["rms_px"], cat["ok"],
                     [reasons[i] for i in inverse], None, height, width)


@torch.no_grad()
def render_fits(body: BodyModel, fits: FitResult, height: int | None = None, width: int | None = None
                ) -> RenderedBody:
    """Pose, project and rasterise every fit (in its own frame unless ``height``/``width`` given)."""
    dev = body.faces.device
    out = body(fits.global_orient.to(dev), fits.body_pose.to(dev), fits.shape.to(dev))
    cam = fits.camera.to(dev).clone()
    h, w = height or fits.height, width or fits.width
    if (h, w) != (fits.height, fits.width):  # rescale the camera to another frame of the same picture
        sy, sx = h / fits.height, w / fits.width
        cam = torch.stack([cam[:, 0] * sy, cam[:, 1] * sx, cam[:, 2] * sy], 1)
    xy, depth = project_weak_perspective(out.vertices, cam)
    return render_body(xy, depth, body.faces, h, w, face_parts=body.face_parts)


@dataclass
class PairGeometry:
    """3D correspondence of pairs: ``flow (B, H, W, 2)`` pixel offsets target -> source,
    ``visibility uint8 (B, H, W)`` (0 background, 1 visible, 2 invisible), ``ok (B,)`` and
    ``reason`` ('' when both fits are usable), and the renderings."""

    flow: torch.Tensor
    visibility: torch.Tensor
    ok: torch.Tensor
    reason: list[str]
    target: RenderedBody
    source: RenderedBody


def body3d_correspondence(body: BodyModel, target_fits: FitResult, source_fits: FitResult,
                          cfg: BodyConfig | None = None) -> PairGeometry:
    """Correspondence of pair ``i`` = (target ``i``, source ``i``); both fits in one frame.

    Pairs whose target or source fit is flagged keep their maps (for pictures) but ``ok`` is
    False and ``reason`` names the image role and the fit's problem.
    """
    cfg = cfg or BodyConfig()
    if (target_fits.height, target_fits.width) != (source_fits.height, source_fits.width):
        raise ValueError("body3d_correspondence: target and source fits must share one frame")
    tgt = render_fits(body, target_fits)
    src = render_fits(body, source_fits)
    corr: BodyCorrespondence = correspond(tgt, src, body.faces, depth_tolerance=cfg.depth_tolerance)
    ok = target_fits.ok & source_fits.ok
    reasons = []
    for t_reason, s_reason in zip(target_fits.reason, source_fits.reason):
        parts = [f"target: {t_reason}"] if t_reason else []
        parts += [f"source: {s_reason}"] if s_reason else []
        reasons.append("; ".join(parts))
    return PairGeometry(corr.flow, corr.visibility, ok, reasons, tgt, src)


_BG_SEED_TOL = 24
"""Border pixels within this many grey levels of the border's median seed the background fill."""
_BG_STEP = 3
"""The background fill's largest step between neighbouring pixels (grey levels)."""
_MASK_REACH = 0.12
"""A person mask reaches at most this share of the frame height from the rendered body."""
_MASK_KEEP_BODY = 0.015
"""Body pixels outside the mask are kept where their region is thicker than this share of the height."""


def plain_background_mask(image: np.ndarray) -> np.ndarray | None:
    """``bool (H, W)`` person mask of a photo on a plain background (a studio wall, white or grey, possibly a
    soft gradient, as in DeepFashion), or ``None``: the background is what a flood fill from the top, left and
    right borders reaches through steps of at most 3 grey levels, starting from border pixels within 24 levels
    of the border's median colour (a photo whose border is mostly not that colour has no mask); the person is
    the rest, opened by 3x3 (``prepare-data --person-mask plain``, ``infer.source_parsing: body3d``)."""
    import cv2

    img = cv2.GaussianBlur(np.ascontiguousarray(image[..., :3]), (3, 3), 0)
    h, w = img.shape[:2]
    ring = np.concatenate([img[0], img[:, 0], img[:, -1]]).astype(np.int32)
    bg = np.median(ring, axis=0)
    near = np.abs(ring - bg).max(1) <= _BG_SEED_TOL
    if near.mean() < 0.5:
        return None
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    step = (_BG_STEP,) * 3
    seeds = [(x, 0) for x in range(w)] + [(0, y) for y in range(h)] + [(w - 1, y) for y in range(h)]
    for x, y in seeds:
        if flood[y + 1, x + 1] or np.abs(img[y, x].astype(np.int32) - bg).max() > _BG_SEED_TOL:
            continue
        cv2.floodFill(img, flood, (x, y), 0, step, step, flags)
    person = (flood[1:-1, 1:-1] == 0).astype(np.uint8)
    return cv2.morphologyEx(person, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0


def refine_person_mask(mask: np.ndarray, body: np.ndarray) -> np.ndarray:
    """A colour mask made safe for :func:`body_parsing`: limited to 12 % of the
    height around the rendered ``body`` (bool); the body pixels outside it are trimmed where they form thin
    strips along the silhouette (the naked mesh a little off the person) and kept where they form thick
    regions (white clothes that the background fill reached)."""
    import cv2

    h = mask.shape[0]
    if not body.any():
        return mask
    dist_body = cv2.distanceTransform((~body).astype(np.uint8), cv2.DIST_L2, 5)
    out = mask & (dist_body <= _MASK_REACH * h)
    outside = (body & ~out).astype(np.uint8)
    n, labels = cv2.connectedComponents(outside, connectivity=4)
    if n > 1:
        depth = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
        thickness = np.zeros(n, np.float32)
        np.maximum.at(thickness, labels.ravel(), depth.ravel())
        keep = thickness > _MASK_KEEP_BODY * h
        keep[0] = False
        out = out | keep[labels]
    return out


def body_parsing(part: np.ndarray | torch.Tensor, person_mask: np.ndarray | None = None) -> np.ndarray:
    """8-class parsing ``uint8 (H, W)`` from a rendered part map ``(H, W)`` (0 = background).

    Without a mask the naked body's classes are used as they are (:data:`PART_TO_SEMANTIC`: torso
    = upper clothes, upper legs = lower clothes). With a person mask (``bool (H, W)``), body pixels
    outside the mask become background, and mask pixels off the body take the class of the nearest
    body pixel, except those nearest the face, which become hair (clothes and hair extend past the mesh).
    """
    import cv2

    p = part.detach().cpu().numpy() if torch.is_tensor(part) else np.asarray(part)
    lut = np.asarray(PART_TO_SEMANTIC, dtype=np.uint8)
    sem = lut[p.astype(np.int64)]
    if person_mask is None:
        return sem
    mask = np.asarray(person_mask) > 0
    on_body = sem > 0
    if not on_body.any():
        return np.where(mask, 2, 0).astype(np.uint8)
    # nearest body pixel for every pixel (distance transform with labels)
    _, labels = cv2.distanceTransformWithLabels((~on_body).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(on_body)
    # label ids of zero pixels come in raster order (OpenCV): map each label to its pixel's class
    lab_of_zero = labels[ys, xs]
    table = np.zeros(int(labels.max()) + 1, dtype=np.uint8)
    table[lab_of_zero] = sem[ys, xs]
    nearest = table[labels]
    out = np.where(mask, np.where(on_body, sem, nearest), 0).astype(np.uint8)
    # off-body mask pixels whose nearest body pixel is the face: hair
    out[mask & ~on_body & (nearest == 5)] = 1
    return out
