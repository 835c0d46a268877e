"""Exemplar texture synthesis of a hole: PatchMatch nearest-neighbour fields (Barnes et al. 2009) with Wexler et
al.'s (2007) iterative voting, restricted class by class (``infer.inpaint_fill: texture``, :func:`glocal_cli.data.prefill.texture_fill`).

Every pixel near the hole (a *target*: its patch overlaps the hole) is matched to a *source* patch that lies wholly
in the known pixels and whose centre has the target's class; the hole is then re-estimated as the weighted vote of
the matched patches (the vote of a source pixel counts only where its class is the class of the pixel it votes
for), and matching and voting alternate. Patches are compared by their projection on the leading principal
components of the known patches (``n_components`` numbers per patch instead of ``3 * patch**2``), so one
comparison is a short vector difference and every step is vectorised numpy.

Shapes: images ``float32 (H, W, 3)`` in 0..255, ``hole`` ``bool (H, W)``, ``labels`` ``int (H, W)`` (every pixel's
class, the hole's included).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["synthesize_texture"]

_STEPS = ((0, 1), (0, -1), (1, 0), (-1, 0))


def _patch_basis(img: np.ndarray, valid: np.ndarray, patch: int, n_components: int,
                 rng: np.random.Generator) -> torch.Tensor:
    """``(n, 3, patch, patch)`` conv weights: the leading principal axes of up to 4,000 known patches."""
    r = patch // 2
    ys, xs = np.nonzero(valid)
    pick = rng.choice(ys.size, min(ys.size, 4000), replace=False)
    offs = np.arange(-r, r + 1)
    rows = img[(ys[pick, None, None] + offs[None, :, None]), (xs[pick, None, None] + offs[None, None, :])]  # (m, p, p, 3)
    rows = rows.transpose(0, 3, 1, 2).reshape(pick.size, -1).astype(np.float64)
    rows -= rows.mean(0)
    n = min(n_components, rows.shape[1], max(1, pick.size - 1))
    _, _, vt = np.linalg.svd(rows, full_matrices=False)
    return torch.from_numpy(vt[:n].reshape(n, 3, patch, patch).astype(np.float32))


def _descriptors(img: np.ndarray, basis: torch.Tensor) -> np.ndarray:
    """``(H, W, n)``: every pixel's patch projected on ``basis`` (the image padded by reflection)."""
    r = basis.shape[-1] // 2
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    x = F.pad(x, (r, r, r, r), mode="reflect") if min(img.shape[:2]) > r else F.pad(x, (r, r, r, r), mode="replicate")
    with torch.no_grad():
        out = F.conv2d(x, basis)[0]
    return out.permute(1, 2, 0).contiguous().numpy()


class _Field:
    """The nearest-neighbour field of the targets at one scale: ``sy, sx`` the source centre of each target."""

    def __init__(self, hole: np.ndarray, labels: np.ndarray, patch: int, min_sources: int) -> None:
        import cv2

        h, w = hole.shape
        r = patch // 2
        self.h, self.w, self.r = h, w, r
        kernel = np.ones((patch, patch), np.uint8)
        known_patch = cv2.erode((~hole).astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        near = cv2.dilate(hole.astype(np.uint8), kernel) > 0
        self.labels = labels
        src_label = np.where(known_patch, labels, -1)
        self.sources: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for c in np.unique(labels[hole]):
            ys, xs = np.nonzero(src_label == c)
            if ys.size >= min_sources:
                self.sources[int(c)] = (ys, xs)
        self.src_label = np.where(np.isin(src_label, list(self.sources)), src_label, -1)
        tmask = near & np.isin(labels, list(self.sources))
        self.ty, self.tx = np.nonzero(tmask)
        self.tlabel = labels[self.ty, self.tx]
        self.index = np.full((h, w), -1, np.int64)
        self.index[self.ty, self.tx] = np.arange(self.ty.size)
        self.sy = np.zeros(self.ty.size, np.int64)
        self.sx = np.zeros(self.ty.size, np.int64)
        self.cost = np.full(self.ty.size, np.inf, np.float32)

    def random_sources(self, sel: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Random sources of the targets ``sel`` (an index array), each of its own class."""
        sy, sx = np.empty(sel.size, np.int64), np.empty(sel.size, np.int64)
        lab = self.tlabel[sel]
        for c, (ys, xs) in self.sources.items():
            m = lab == c
            if m.any():
                k = rng.integers(0, ys.size, int(m.sum()))
                sy[m], sx[m] = ys[k], xs[k]
        return sy, sx

    def valid(self, sel: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
        ok = (cy >= 0) & (cy < self.h) & (cx >= 0) & (cx < self.w)
        lab = np.full(sel.size, -2, np.int64)
        lab[ok] = self.src_label[cy[ok], cx[ok]]
        return ok & (lab == self.tlabel[sel])

    def try_sources(self, desc: np.ndarray, sel: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> None:
        """Adopt the candidate sources ``(cy, cx)`` of targets ``sel`` where they are valid and closer."""
        ok = self.valid(sel, cy, cx)
        sel, cy, cx = sel[ok], cy[ok], cx[ok]
        if sel.size == 0:
            return
        d = desc[self.ty[sel], self.tx[sel]] - desc[cy, cx]
        cost = np.einsum("ij,ij->i", d, d)
        better = cost < self.cost[sel]
        s = sel[better]
        self.sy[s], self.sx[s], self.cost[s] = cy[better], cx[better], cost[better]

    def search(self, desc: np.ndarray, rng: np.random.Generator, rounds: int, jumps: tuple[int, ...]) -> None:
        """PatchMatch: the costs of the current field, then ``rounds`` of propagation (each target tries its
        neighbours' sources, shifted, at distances ``jumps``) and random search (around its source, radius
        halving from the image's size, and one fresh random source of its class)."""
        n = self.ty.size
        all_t = np.arange(n)
        self.cost[:] = np.inf
        sy, sx = self.sy.copy(), self.sx.copy()
        self.try_sources(desc, all_t, sy, sx)
        for _ in range(rounds):
            for step in jumps:
                for dy, dx in _STEPS:
                    ny, nx = self.ty + dy * step, self.tx + dx * step
                    inside = (ny >= 0) & (ny < self.h) & (nx >= 0) & (nx < self.w)
                    nb = np.full(n, -1, np.int64)
                    nb[inside] = self.index[ny[inside], nx[inside]]
                    sel = np.nonzero(nb >= 0)[0]
                    self.try_sources(desc, sel, self.sy[nb[sel]] - dy * step, self.sx[nb[sel]] - dx * step)
            radius = max(self.h, self.w)
            while radius >= 1:
                self.try_sources(desc, all_t, self.sy + rng.integers(-radius, radius + 1, n),
                                 self.sx + rng.integers(-radius, radius + 1, n))
                radius //= 2
            self.try_sources(desc, all_t, *self.random_sources(all_t, rng))

    def vote(self, img: np.ndarray, hole: np.ndarray, sigma2: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Wexler's vote: ``(colour sum (H*W, 3), weight sum (H*W,))`` over the hole's pixels. Each target's patch
        votes its source patch's colours with weight ``exp(-cost / (2 sigma2))`` (1 when ``sigma2`` is None),
        a source pixel only for a hole pixel of its own class."""
        h, w, r = self.h, self.w, self.r
        wt = np.ones(self.ty.size, np.float64) if sigma2 is None else np.exp(-self.cost / (2 * sigma2)).astype(np.float64)
        num = np.zeros((h * w, 3), np.float64)
        den = np.zeros(h * w, np.float64)
        flat = img.reshape(-1, 3)
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                py, px = self.ty + oy, self.tx + ox
                ok = (py >= 0) & (py < h) & (px >= 0) & (px < w)
                ok[ok] &= hole[py[ok], px[ok]]
                qy, qx = self.sy[ok] + oy, self.sx[ok] + ox  # inside: a source patch lies in the image
                pi = py[ok] * w + px[ok]
                same = self.labels[qy, qx] == self.labels.reshape(-1)[pi]
                pi, q, ww = pi[same], qy[same] * w + qx[same], wt[ok][same]
                den += np.bincount(pi, ww, h * w)
                for ch in range(3):
                    num[:, ch] += np.bincount(pi, ww * flat[q, ch], h * w)
        return num, den


def synthesize_texture(image: np.ndarray, hole: np.ndarray, labels: np.ndarray, init: np.ndarray, *,
                       patch: int = 7, levels: int = 2, em_steps: int = 4, rounds: int = 3,
                       jumps: tuple[int, ...] = (1, 4), n_components: int = 12, min_sources: int = 16,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The hole of ``image`` re-synthesised from its known patches, class by class: ``(filled, textured)``.

    ``image``: ``float32 (H, W, 3)`` (hole pixels ignored); ``init``: the starting estimate of the hole (e.g. the
    semantic fill), ``labels``: every pixel's class. A hole pixel of class c takes colours only from known pixels
    of class c (through patches whose centre is of class c and lie wholly in the known pixels); a class with
    fewer than ``min_sources`` such patches is not synthesised (its hole pixels keep ``init``; ``textured`` is
    False there). Coarse to fine over ``levels`` scales (each half the size; the field of a coarser scale seeds
    the next), ``em_steps`` match/vote steps per scale, ``rounds`` PatchMatch rounds per match. Deterministic
    given ``seed``. Known pixels of ``filled`` are ``image``'s."""
    import cv2

    if em_steps < 1 or levels < 1 or patch < 3 or patch % 2 == 0:
        raise ValueError(f"need em_steps >= 1, levels >= 1 and an odd patch >= 3 (got {em_steps}, {levels}, {patch})")
    img = np.asarray(image, np.float32)
    hole = np.asarray(hole, bool)
    labels = np.asarray(labels, np.int64)
    est = np.where(hole[..., None], np.asarray(init, np.float32), img)
    rng = np.random.default_rng(seed)
    h, w = hole.shape
    scales = []
    for lvl in range(levels):
        f = 2**lvl
        sh, sw = max(1, round(h / f)), max(1, round(w / f))
        if lvl and min(sh, sw) < 3 * patch:
            break
        scales.append((sh, sw))
    textured = np.zeros((h, w), bool)
    prev: _Field | None = None
    prev_est = None
    for sh, sw in reversed(scales):
        if (sh, sw) == (h, w):
            s_img, s_hole, s_lab = img, hole, labels
            s_est = est.copy()
        else:
            s_img = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
            s_hole = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0
            s_lab = cv2.resize(labels.astype(np.int32), (sw, sh), interpolation=cv2.INTER_NEAREST).astype(np.int64)
            s_est = cv2.resize(est, (sw, sh), interpolation=cv2.INTER_AREA)
        field = _Field(s_hole, s_lab, patch, min_sources)
        if field.ty.size == 0 or not field.sources:
            prev = None
            continue
        if prev_est is not None:  # the coarser synthesis, enlarged, is this scale's start in the hole
            up = cv2.resize(prev_est, (sw, sh), interpolation=cv2.INTER_LINEAR)
            s_est = np.where(s_hole[..., None], up, s_img)
        else:
            s_est = np.where(s_hole[..., None], s_est, s_img)
        all_t = np.arange(field.ty.size)
        field.sy, field.sx = field.random_sources(all_t, rng)
        if prev is not None:  # the coarser field, doubled, where it lands on a valid source
            py = np.clip(field.ty * prev.h // sh, 0, prev.h - 1)
            px = np.clip(field.tx * prev.w // sw, 0, prev.w - 1)
            j = prev.index[py, px]
            has = np.nonzero(j >= 0)[0]
            fy, fx = sh / prev.h, sw / prev.w
            cy = np.rint(prev.sy[j[has]] * fy + field.ty[has] - py[has] * fy).astype(np.int64)
            cx = np.rint(prev.sx[j[has]] * fx + field.tx[has] - px[has] * fx).astype(np.int64)
            ok = field.valid(has, cy, cx)
            field.sy[has[ok]], field.sx[has[ok]] = cy[ok], cx[ok]
        known = ~s_hole
        basis = _patch_basis(s_img, cv2.erode(known.astype(np.uint8), np.ones((patch, patch), np.uint8),
                                              borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0, patch,
                             n_components, rng)
        for _ in range(em_steps):
            desc = _descriptors(s_est, basis)
            field.search(desc, rng, rounds, jumps)
            finite = field.cost[np.isfinite(field.cost)]
            # a match's vote weight falls with its cost; the scale: the median cost, at least 2 grey levels rms
            sigma2 = max(float(np.median(finite)) if finite.size else 0.0, 4.0 * 3 * patch * patch)
            num, den = field.vote(s_est, s_hole, sigma2)
            got = (den > 0).reshape(sh, sw)
            fill = (num / np.maximum(den, 1e-12)[:, None]).reshape(sh, sw, 3).astype(np.float32)
            s_est = np.where((s_hole & got)[..., None], fill, s_est)
        if (sh, sw) == (h, w):
            textured = s_hole & got
            est = s_est
        prev, prev_est = field, s_est
    return est, textured
