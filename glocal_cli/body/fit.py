"""Fit a body model to 18 OpenPose keypoints: camera, global orientation, body pose and shape.

Batched and model-agnostic (any :class:`~glocal_cli.body.base.BodyModel`). The camera is weak
perspective, ``xy_pixels = scale * (x, y) + (tx, ty)`` with ``scale`` in pixels per metre (at
256x176 a standing adult is ~140 px/m); depth is the canonical ``z`` in metres.

The objective, per image, with ``e`` the keypoint error in pixels of a 256-pixel-high frame (so
weights do not depend on the photo size)::

    sum_k  c_k * v_k * e_k^2                         keypoints (c_k: confidence weight, v_k: visible)
  + w_pose  * sum_j p_j |r_j|^2                       pose prior (per-joint stiffness of the model, x
                                                      missing_stiffness where the joint's keypoint is missing)
  + w_up    * 100 * lean^2                            upright: the body's vertical axis does not lean in depth
                                                      (nor sideways when no hip is seen)
  + w_limit * sum (relu(r - hi)^2 + relu(lo - r)^2)   joint limits (box on axis-angle components)
  + w_shape * |beta|^2                                shape prior (coefficients ~ N(0, 1))
  + w_face  * relu(+-(z_nose - z_ears) + margin)      facing: nose in front when the face is seen,
                                                      behind when only the back of the head is
  + w_trunc * sum_k t_k * relu(H - y_k)^2              out of frame: both knees (ankles) missing -> the photo
                                                      ends above them, they project below the bottom edge
  + w_sil   * mean dist_outside_mask(vertex)^2        optional: the naked body inside the person mask

Keypoints alone leave depth and facing ambiguous (a side view fits as well turned 15 degrees too
far), so every image is fitted from several yaw starts (``yaw_starts``) at once and the best one is
kept; facing evidence (face points seen or not, left/right order) is a term of that choice. Shape
is shared across images of the same person when ``person_ids`` says so. Two stages:

1. every start: camera + global orientation on the torso points, then + body pose on all points
   (mean shape);
2. the best start per image: camera, pose and shape (shared per person) together, plus the
   silhouette term when masks are given.

Every fit gets a score (RMS keypoint error in the input frame's pixels) and a verdict: a fit with
too few keypoints, no torso, or an RMS over the threshold is flagged ``ok = False`` with a reason,
and callers fall back to the learned flow and say so (never use a poor fit silently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from glocal_cli.body.base import BodyModel, axis_angle_to_matrix, skew, so3_right_jacobian
from glocal_cli.body.config import BodyFitConfig

# keypoint confidence weights: the face points are less reliable and matter less for geometry
_KP_WEIGHT = torch.tensor([0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5])
_TORSO = (1, 2, 5, 8, 11)
_NOSE, _R_EYE, _L_EYE, _R_EAR, _L_EAR = 0, 14, 15, 16, 17


@dataclass
class FitResult:
    """Fitted parameters and scores for ``N`` images (tensors on the CPU, float32).

    ``camera`` is ``(N, 3)`` = ``(scale px/m, tx, ty)`` in the input frame; ``rms_px`` the RMS
    distance between visible and fitted keypoints in input-frame pixels; ``ok`` whether the fit may
    be used; ``reason`` says why not ('' when ok); ``yaw_start`` the winning start in degrees.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    shape: torch.Tensor
    camera: torch.Tensor
    rms_px: torch.Tensor
    ok: torch.Tensor
    reason: list[str] = field(default_factory=list)
    yaw_start: torch.Tensor | None = None
    height: int = 256
    width: int = 176

    def __len__(self) -> int:
        return int(self.camera.shape[0])

    def select(self, index: int) -> FitResult:
        """The fit of one image as a batch of one."""
        sl = slice(index, index + 1)
        return FitResult(self.global_orient[sl], self.body_pose[sl], self.shape[sl], self.camera[sl],
                         self.rms_px[sl], self.ok[sl], [self.reason[index]],
                         None if self.yaw_start is None else self.yaw_start[sl], self.height, self.width)

    def to_npz_dict(self, index: int) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` of image ``index`` (loadable with ``allow_pickle=False``)."""
        return {
            "global_orient": self.global_orient[index].numpy(), "body_pose": self.body_pose[index].numpy(),
            "shape": self.shape[index].numpy(), "camera": self.camera[index].numpy(),
            "rms_px": np.float32(self.rms_px[index]), "ok": np.bool_(self.ok[index]),
            "reason": np.str_(self.reason[index]), "frame": np.array([self.height, self.width], np.int32),
        }

    @classmethod
    def from_npz_dicts(cls, items: list[dict[str, np.ndarray]]) -> FitResult:
        """Stack per-image dicts written by :meth:`to_npz_dict` (all of one frame)."""
        if not items:
            raise ValueError("no fits to stack")
        frame = items[0]["frame"]

        def stack(key: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([np.asarray(d[key], np.float32) for d in items]))

        return cls(stack("global_orient"), stack("body_pose"), stack("shape"), stack("camera"), stack("rms_px"),
                   torch.tensor([bool(d["ok"]) for d in items]), [str(d["reason"]) for d in items],
                   None, int(frame[0]), int(frame[1]))


def project(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Weak-perspective projection of canonical ``(B, N, 3)`` points with ``camera (B, 3)`` -> ``(B, N, 2)``."""
    return camera[:, None, :1] * points[..., :2] + camera[:, None, 1:]


def yaw_rotvec(degrees: float) -> torch.Tensor:
    """Axis-angle of a turn about the canonical vertical axis (``y``, pointing down)."""
    return torch.tensor([0.0, math.radians(degrees), 0.0])


def _lbfgs(params: list[torch.Tensor], closure_fn, iters: int) -> None:  # noqa: ANN001
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iters, line_search_fn="strong_wolfe", history_size=20,
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = closure_fn()
        loss.backward()
        return loss

    opt.step(closure)


def facing_evidence(visible: torch.Tensor) -> torch.Tensor:
    """+1 where the face is seen (nose and an eye), -1 where only the back of the head could be
    (no nose, no eyes, an ear or the neck seen), 0 when unknown. ``visible (N, 18)`` bool."""
    face = visible[:, _NOSE] & (visible[:, _R_EYE] | visible[:, _L_EYE])
    back = ~visible[:, _NOSE] & ~visible[:, _R_EYE] & ~visible[:, _L_EYE] & (
        visible[:, _R_EAR] | visible[:, _L_EAR] | visible[:, 1])
    return face.float() - back.float()


def check_keypoints(visible: torch.Tensor, cfg: BodyFitConfig, keypoints: torch.Tensor | None = None,
                    height: int = 0, width: int = 0) -> list[str]:
    """Reasons a keypoint set cannot be fitted ('' when it can). With ``keypoints`` and the frame,
    a set that is short of points *and* touches the frame's border is reported as cut by the frame."""
    reasons = []
    for i, row in enumerate(visible):
        n = int(row.sum())
        shoulders = bool(row[2] and row[5])
        hips = bool(row[8] or row[11])
        cut = False
        if keypoints is not None and height and width and n:
            xy = keypoints[i][row]
            m = 0.1 * height  # the points stop within 10 % of the frame's height from an edge
            cut = bool(((xy[:, 0] < m) | (xy[:, 0] > width - 1 - m) | (xy[:, 1] < m) | (xy[:, 1] > height - 1 - m)).any())
        if n < cfg.min_keypoints and cut:
            reasons.append(f"the person is cut by the frame (only {n} keypoints inside it; a body fit needs "
                           f"{cfg.min_keypoints})")
        elif n < cfg.min_keypoints:
            reasons.append(f"only {n} keypoints visible (a body fit needs {cfg.min_keypoints})")
        elif not (shoulders and (hips or row[1])):
            reasons.append("no torso: both shoulders and a hip or the neck are needed")
        else:
            reasons.append("")
    return reasons


def truncated_keypoints(visible: torch.Tensor) -> torch.Tensor:
    """``float (B, 18)``: 1 for the knees when both are missing and for the ankles when both are missing (or both
    knees are): a close-up that ends above them, not legs hidden behind each other."""
    vis = visible.bool()
    knees = ~(vis[:, 9] | vis[:, 12])
    ankles = ~(vis[:, 10] | vis[:, 13]) | knees
    out = torch.zeros(vis.shape, device=vis.device)
    out[:, [9, 12]] = knees[:, None].float()
    out[:, [10, 13]] = ankles[:, None].float()
    return out


class _Objective:
    def __init__(self, body: BodyModel, keypoints: torch.Tensor, visible: torch.Tensor, height: int,
                 cfg: BodyFitConfig, facing: torch.Tensor, kp_weight: torch.Tensor) -> None:
        self.body, self.kp, self.vis, self.cfg = body, keypoints, visible.float(), cfg
        self.px = 256.0 / float(height)  # input pixels -> pixels of a 256-high frame
        self.facing = facing
        self.w = kp_weight * self.vis
        # per image and joint prior weight: the model's stiffness, times missing_stiffness where the joint's
        # keypoint is missing (it has nothing to fit and must stay near rest)
        child = torch.tensor(body.child_keypoints(), device=keypoints.device)
        has = child >= 0
        missing = torch.zeros(keypoints.shape[0], len(child), device=keypoints.device)
        missing[:, has] = 1.0 - self.vis[:, child[has]]
        self.prior = body.pose_prior_weight * (1.0 + (cfg.missing_stiffness - 1.0) * missing)
        self.no_hips = 1.0 - torch.maximum(self.vis[:, 8], self.vis[:, 11])
        self.height = float(height)
        self.below = truncated_keypoints(visible)

    def terms(self, orient: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor,
              kp_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-body loss ``(B,)`` and keypoint squared error ``(B, 18)`` (256-frame px^2)."""
        out = self.body(orient, pose, shape, vertices=False)
        uv = project(out.keypoints, cam)
        err2 = ((uv - self.kp) * self.px).pow(2).sum(-1)
        w = self.w if kp_mask is None else self.w * kp_mask
        loss = (w * err2).sum(-1)
        cfg = self.cfg
        loss = loss + cfg.pose_prior * (self.prior * pose.pow(2).sum(-1)).sum(-1)
        # upright: the root's vertical axis R0 (0, -1, 0) should not lean in depth (its z component), nor
        # sideways when no hip anchors the torso's direction in the picture (a close-up)
        up = axis_angle_to_matrix(orient)[:, :, 1]
        loss = loss + cfg.upright_weight * 100.0 * (up[:, 2].pow(2) + self.no_hips * up[:, 0].pow(2))
        lim = self.body.joint_limits
        over = torch.relu(pose - lim[..., 1]) + torch.relu(lim[..., 0] - pose)
        loss = loss + cfg.limit_weight * over.pow(2).sum((-1, -2))
        loss = loss + cfg.shape_prior * shape.pow(2).sum(-1)
        bounds = self.body.shape_bounds()
        if bounds is not None:  # a hard-ish wall at the model's bounds (rare shapes fit clothes, not bodies)
            out_of = torch.relu(shape - bounds[1]) + torch.relu(bounds[0] - shape)
            loss = loss + 1000.0 * out_of.pow(2).sum(-1)
        if cfg.truncation_weight > 0:
            inside = torch.relu(self.height - uv[..., 1]) * self.px  # how far above the bottom edge
            loss = loss + cfg.truncation_weight * (self.below * inside.pow(2)).sum(-1)
        ears_z = 0.5 * (out.keypoints[:, _R_EAR, 2] + out.keypoints[:, _L_EAR, 2])
        dz = out.keypoints[:, _NOSE, 2] - ears_z  # < 0 when the nose points at the camera
        loss = loss + cfg.face_weight * torch.relu(self.facing * dz + cfg.face_margin).pow(2) * 1e4
        return loss, err2

    def residuals(self, orient: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor,
                  kp_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The same objective as :meth:`terms` as residuals ``(B, R)``: ``(r ** 2).sum(-1)`` is its per-body loss
        (every term is a weighted square), for the Gauss-Newton solver :func:`_lm`."""
        cfg = self.cfg
        n = orient.shape[0]
        out = self.body(orient, pose, shape, vertices=False)
        uv = project(out.keypoints, cam)
        w = self.w if kp_mask is None else self.w * kp_mask
        parts = [((uv - self.kp) * (self.px * w.sqrt()[..., None])).reshape(n, -1),
                 ((cfg.pose_prior * self.prior).sqrt()[..., None] * pose).reshape(n, -1)]
        up = axis_angle_to_matrix(orient)[:, :, 1]
        parts += [math.sqrt(cfg.upright_weight * 100.0) * up[:, 2:3],
                  (cfg.upright_weight * 100.0 * self.no_hips).sqrt()[:, None] * up[:, 0:1]]
        lim = self.body.joint_limits
        over = torch.relu(pose - lim[..., 1]) + torch.relu(lim[..., 0] - pose)
        parts += [math.sqrt(cfg.limit_weight) * over.reshape(n, -1), math.sqrt(cfg.shape_prior) * shape]
        bounds = self.body.shape_bounds()
        if bounds is not None:
            parts.append(math.sqrt(1000.0) * (torch.relu(shape - bounds[1]) + torch.relu(bounds[0] - shape)))
        if cfg.truncation_weight > 0:
            inside = torch.relu(self.height - uv[..., 1]) * self.px
            parts.append((cfg.truncation_weight * self.below).sqrt() * inside)
        ears_z = 0.5 * (out.keypoints[:, _R_EAR, 2] + out.keypoints[:, _L_EAR, 2])
        dz = out.keypoints[:, _NOSE, 2] - ears_z
        parts.append(100.0 * math.sqrt(cfg.face_weight) * torch.relu(self.facing * dz + cfg.face_margin)[:, None])
        return torch.cat(parts, 1)

    def jacobian(self, orient: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor,
                 kp_mask: torch.Tensor | None = None, n_params: int | None = None) -> torch.Tensor | None:
        """The exact Jacobian ``(B, R, D)`` of :meth:`residuals` in closed form, from the body's
        :meth:`~glocal_cli.body.base.BodyModel.keypoint_jacobian`; columns camera (3), orientation (3), pose
        (``3P``, joint-major), shape (``S``), the first ``n_params`` of them. ``None`` when the body has no closed
        form (the solver then differentiates :meth:`residuals` in forward mode)."""
        out = self.body.keypoint_jacobian(orient, pose, shape)
        if out is None:
            return None
        kp3, dkp = out  # (B, 18, 3), (B, 18, 3, 3 + 3P + S)
        cfg = self.cfg
        n, p = pose.shape[:2]
        dev, dt = orient.device, orient.dtype
        s_dim = shape.shape[1]
        d = 6 + 3 * p + s_dim
        scale = cam[:, 0]
        w = self.w if kp_mask is None else self.w * kp_mask
        # d uv / d params: camera (s: the point, t: identity), body (s * d xy)
        duv = torch.zeros(n, 18, 2, d, device=dev, dtype=dt)
        duv[..., 0] = kp3[..., :2]
        duv[:, :, 0, 1] = 1.0
        duv[:, :, 1, 2] = 1.0
        duv[..., 3:] = scale[:, None, None, None] * dkp[:, :, :2]
        blocks = [(duv * (self.px * w.sqrt())[..., None, None]).reshape(n, 36, d)]
        prior = torch.zeros(n, 3 * p, d, device=dev, dtype=dt)
        idx = torch.arange(3 * p, device=dev)
        prior[:, idx, 6 + idx] = (cfg.pose_prior * self.prior).sqrt().repeat_interleave(3, 1)
        blocks.append(prior)
        # upright: up = R0 e_y, d up = -R0 [e_y]x J_r(r0) d
        r0 = axis_angle_to_matrix(orient)
        e_y = torch.tensor([0.0, 1.0, 0.0], device=dev, dtype=dt)
        dup = -(r0 @ skew(e_y) @ so3_right_jacobian(orient))  # (B, 3, 3)
        up_rows = torch.zeros(n, 2, d, device=dev, dtype=dt)
        up_rows[:, 0, 3:6] = math.sqrt(cfg.upright_weight * 100.0) * dup[:, 2]
        up_rows[:, 1, 3:6] = (cfg.upright_weight * 100.0 * self.no_hips).sqrt()[:, None] * dup[:, 0]
        blocks.append(up_rows)
        lim = self.body.joint_limits
        slope = ((pose > lim[..., 1]).to(dt) - (pose < lim[..., 0]).to(dt)).reshape(n, -1)
        limits = torch.zeros(n, 3 * p, d, device=dev, dtype=dt)
        limits[:, idx, 6 + idx] = math.sqrt(cfg.limit_weight) * slope
        blocks.append(limits)
        sidx = torch.arange(s_dim, device=dev)
        shape_rows = torch.zeros(n, s_dim, d, device=dev, dtype=dt)
        shape_rows[:, sidx, 6 + 3 * p + sidx] = math.sqrt(cfg.shape_prior)
        blocks.append(shape_rows)
        bounds = self.body.shape_bounds()
        if bounds is not None:
            wall = torch.zeros(n, s_dim, d, device=dev, dtype=dt)
            wall[:, sidx, 6 + 3 * p + sidx] = math.sqrt(1000.0) * ((shape > bounds[1]).to(dt) - (shape < bounds[0]).to(dt))
            blocks.append(wall)
        if cfg.truncation_weight > 0:
            uv_y = scale[:, None] * kp3[..., 1] + cam[:, None, 2]
            gate = (self.height - uv_y > 0).to(dt) * (cfg.truncation_weight * self.below).sqrt() * self.px
            blocks.append(-gate[..., None] * duv[:, :, 1])
        ddz = dkp[:, _NOSE, 2] - 0.5 * (dkp[:, _R_EAR, 2] + dkp[:, _L_EAR, 2])  # (B, 3 + 3P + S)
        dz = kp3[:, _NOSE, 2] - 0.5 * (kp3[:, _R_EAR, 2] + kp3[:, _L_EAR, 2])
        gate = (self.facing * dz + cfg.face_margin > 0).to(dt) * self.facing * 100.0 * math.sqrt(cfg.face_weight)
        face = torch.zeros(n, 1, d, device=dev, dtype=dt)
        face[:, 0, 3:] = gate[:, None] * ddz
        blocks.append(face)
        jac = torch.cat(blocks, 1)
        return jac if n_params is None else jac[..., :n_params]


def _lm(residual_fn, xa: torch.Tensor, xb: torch.Tensor | None, pid: torch.Tensor, n_groups: int, iters: int,
        tol: float, jacobian_fn=None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:  # noqa: ANN001
    """Batched Levenberg-Marquardt on ``residual_fn(xa (B, Da), xb_img (B, Db) | None) -> (B, R)``.

    ``xa`` holds each image's own parameters, ``xb`` (``(G, Db)`` or ``None``) parameters shared by the images of
    a group (``pid (B,)``: the shape of one person), eliminated by a Schur complement, so every group is solved
    exactly and independently (its own damping, its own step acceptance, its own stop) in one batched pass. The Jacobian is
    exact: ``jacobian_fn(xa, xb_img) -> (B, R, Da + Db)`` in closed form when given (and not ``None`` for the
    body), else forward mode (one ``jvp`` per parameter, vectorised). Stops after ``iters`` steps, or earlier once
    every group's last accepted step lowered its loss by less than ``tol`` times it. Returns ``xa``, ``xb`` and
    each image's final loss ``(B,)``."""
    from torch.func import jvp, vmap

    n, da = xa.shape
    db = 0 if xb is None else xb.shape[1]
    dev = xa.device
    shared = xb is not None and db > 0
    group = pid if shared else torch.arange(n, device=dev)
    n_groups = n_groups if shared else n

    def f(z: torch.Tensor) -> torch.Tensor:
        return residual_fn(z[:, :da], z[:, da:] if shared else None)

    def gsum(v: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n_groups, *v.shape[1:], dtype=v.dtype, device=dev).index_add_(0, group, v)

    z = torch.cat([xa, xb[pid]], 1) if shared else xa.clone()
    xb = xb.clone() if shared else xb
    basis = torch.eye(da + db, device=dev)[:, None].expand(-1, n, -1)
    with torch.no_grad():
        r = f(z)
        cost_img = r.pow(2).sum(1)
    cost = gsum(cost_img)
    lam = torch.full((n_groups,), 1e-3, device=dev)
    done = torch.zeros(n_groups, dtype=torch.bool, device=dev)
    eye_a = torch.eye(da, device=dev)
    for _ in range(iters):
        jac = None if jacobian_fn is None else jacobian_fn(z[:, :da], z[:, da:] if shared else None)
        if jac is None:
            jac = vmap(lambda t, z=z: jvp(f, (z,), (t,))[1])(basis).permute(1, 2, 0)  # (B, R, D)
        jac = torch.nan_to_num(jac)
        h = jac.transpose(1, 2) @ jac
        g = (jac.transpose(1, 2) @ r[..., None])[..., 0]
        lam_img = lam[group]
        a = h[:, :da, :da]
        a = a + (lam_img[:, None, None] * torch.diagonal(a, 0, 1, 2)[:, None, :] + 1e-6) * eye_a
        if shared:
            c, ga, gb = h[:, :da, da:], g[:, :da], g[:, da:]
            sol = torch.linalg.solve(a, torch.cat([c, ga[..., None]], 2))
            a_c, a_g = sol[..., :db], sol[..., db]
            s = gsum(h[:, da:, da:] - c.transpose(1, 2) @ a_c)
            bdiag = gsum(torch.diagonal(h[:, da:, da:], 0, 1, 2))
            s = s + torch.diag_embed(lam[:, None] * bdiag + 1e-6)
            rhs = gsum(gb - (c.transpose(1, 2) @ a_g[..., None])[..., 0])
            step_b = -torch.linalg.solve(s, rhs[..., None])[..., 0]
            step_a = -a_g - (a_c @ step_b[group][..., None])[..., 0]
            step = torch.cat([step_a, step_b[group]], 1)
        else:
            step = -torch.linalg.solve(a, g[..., None])[..., 0]
        with torch.no_grad():
            z_new = z + step
            r_new = f(z_new)
            cost_img_new = r_new.pow(2).sum(1)
        cost_new = gsum(cost_img_new)
        ok = torch.isfinite(cost_new) & (cost_new < cost) & ~done  # a converged group stays where it stopped
        # converged: a step that gains less than tol of the loss (or reaches ~0), or no step is accepted any more;
        # so every group's steps depend on its own numbers only, not on what it is batched with
        done = done | torch.where(ok, ((cost - cost_new) < tol * cost) | (cost_new < 1e-12), lam >= 1e7)
        ok_img = ok[group]
        z = torch.where(ok_img[:, None], z_new, z)
        r = torch.where(ok_img[:, None], r_new, r)
        cost_img = torch.where(ok_img, cost_img_new, cost_img)
        if shared:
            xb = torch.where(ok[:, None], xb + step_b, xb)
        cost = torch.where(ok, cost_new, cost)
        lam = torch.where(ok, (lam / 3).clamp_min(1e-7), (lam * 4).clamp_max(1e7))
        if bool(done.all()):
            break
    return z[:, :da], xb, cost_img


def _stage1_lm(obj: _Objective, cam: torch.Tensor, orient: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor,
               torso: torch.Tensor, cfg: BodyFitConfig) -> tuple[torch.Tensor, ...]:
    """Stage 1 with :func:`_lm`: camera + orientation on the torso points, then + body pose on all points.
    Returns camera, orientation, pose and each start's loss."""
    n, p = pose.shape[:2]
    if cfg.lm_iters_camera > 0:
        xa, _, _ = _lm(lambda x, _s: obj.residuals(x[:, 3:], pose, shape, x[:, :3], torso),
                       torch.cat([cam, orient], 1), None, torch.arange(n, device=cam.device), n, cfg.lm_iters_camera,
                       cfg.lm_tolerance, lambda x, _s: obj.jacobian(x[:, 3:], pose, shape, x[:, :3], torso, 6))
        cam, orient = xa[:, :3], xa[:, 3:]
    xa, _, loss = _lm(lambda x, _s: obj.residuals(x[:, 3:6], x[:, 6:].reshape(-1, p, 3), shape, x[:, :3]),
                      torch.cat([cam, orient, pose.reshape(n, -1)], 1), None, torch.arange(n, device=cam.device), n,
                      cfg.lm_iters_pose, cfg.lm_tolerance,
                      lambda x, _s: obj.jacobian(x[:, 3:6], x[:, 6:].reshape(-1, p, 3), shape, x[:, :3], None, 6 + 3 * p))
    return xa[:, :3], xa[:, 3:6], xa[:, 6:].reshape(n, p, 3), loss


def _camera_init(body: BodyModel, kp: torch.Tensor, vis: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Scale from the visible keypoints' vertical extent against the rest body's, shift from centroids."""
    orient, pose = body.zero_pose(kp.shape[0])
    rest = body(orient.to(kp), pose.to(kp), shape, vertices=False).keypoints[..., :2]
    w = vis.float()[..., None]
    n = w.sum(1).clamp_min(1)
    c_img = (kp * w).sum(1) / n
    c_rest = (rest * w).sum(1) / n
    spread_img = (((kp - c_img[:, None]) ** 2).sum(-1) * w[..., 0]).sum(1) / n[:, 0]
    spread_rest = (((rest - c_rest[:, None]) ** 2).sum(-1) * w[..., 0]).sum(1) / n[:, 0]
    scale = (spread_img / spread_rest.clamp_min(1e-6)).sqrt().clamp(10.0, 1e4)
    return torch.cat([scale[:, None], c_img - scale[:, None] * c_rest], 1)


def fit_keypoints(body: BodyModel, keypoints: torch.Tensor | np.ndarray, visible: torch.Tensor | np.ndarray,
                  height: int, width: int, cfg: BodyFitConfig | None = None,
                  person_ids: list[int] | torch.Tensor | None = None,
                  masks: torch.Tensor | np.ndarray | None = None, init: FitResult | None = None) -> FitResult:
    """Fit ``body`` to ``keypoints (N, 18, 2)`` (x, y pixels of an ``height x width`` frame) where
    ``visible (N, 18)``; see the module docstring. ``person_ids (N,)`` shares shape among images of
    one person; ``masks (N, H, W)`` (person foreground, optional) adds the silhouette term.

    ``init`` (``N`` fits, e.g. of the same person a moment ago: a joint being dragged): a warm start. Stage 1
    (the yaw starts) is skipped and stage 2 runs ``cfg.iters_warm`` iterations from ``init``'s camera,
    orientation, pose and shape (per person: the first image's); about 10x cheaper than a cold fit."""
    cfg = cfg or BodyFitConfig()
    if cfg.solver not in ("lm", "lbfgs"):
        raise ValueError(f"body fit solver {cfg.solver!r}: use 'lm' or 'lbfgs'")
    dev = body.faces.device
    kp = torch.as_tensor(np.asarray(keypoints, dtype=np.float32) if not torch.is_tensor(keypoints)
                         else keypoints).float().to(dev)
    vis = torch.as_tensor(np.asarray(visible) if not torch.is_tensor(visible) else visible).bool().to(dev)
    vis = vis & torch.isfinite(kp).all(-1)
    kp = torch.nan_to_num(kp)
    n = kp.shape[0]
    reasons = check_keypoints(vis.cpu(), cfg, kp.cpu(), height, width)
    if person_ids is None:
        pid = torch.arange(n, device=dev)
    else:
        _, pid = torch.unique(torch.as_tensor(person_ids, device=dev), return_inverse=True)
    n_persons = int(pid.max()) + 1 if n else 0
    facing = facing_evidence(vis)
    kp_w = _KP_WEIGHT.to(dev)

    if init is not None:  # a warm start: stage 2 alone, from init (per person: its first image's shape)
        if len(init) != n:
            raise ValueError(f"init holds {len(init)} fits for {n} keypoint sets")
        first = torch.full((n_persons,), -1, dtype=torch.long, device=dev)
        first.scatter_reduce_(0, pid, torch.arange(n, device=dev), "amin", include_self=False)
        return _stage2(body, kp, vis, height, width, cfg, facing, kp_w, pid, reasons, masks,
                       init.global_orient.to(dev).float(), init.body_pose.to(dev).float(), init.camera.to(dev).float(),
                       init.shape.to(dev).float()[first], cfg.lm_iters_warm if cfg.solver == "lm" else cfg.iters_warm,
                       init.yaw_start)

    # ---- stage 1: every yaw start (only the front or back one where the keypoints decide), mean shape
    img, yaw = _starts(kp, vis, facing, cfg)
    m = img.shape[0]
    kp_k, vis_k = kp[img], vis[img]
    obj = _Objective(body, kp_k, vis_k, height, cfg, facing[img], kp_w)
    shape0 = body.default_shape(m).to(dev)
    cam = _camera_init(body, kp_k, vis_k, shape0).detach().requires_grad_(True)
    orient = torch.stack([yaw_rotvec(float(y)) for y in yaw]).to(dev).reshape(m, 3).requires_grad_(True)
    pose = torch.zeros(m, len(body.pose_joints), 3, device=dev, requires_grad=True)
    torso = torch.zeros(18, device=dev)
    torso[list(_TORSO)] = 1
    if cfg.solver == "lm":
        cam, orient, pose, loss = _stage1_lm(obj, cam.detach(), orient.detach(), pose.detach(), shape0, torso, cfg)
    else:
        _lbfgs([cam, orient], lambda: obj.terms(orient, pose, shape0, cam, torso)[0].sum(), cfg.iters_camera)
        _lbfgs([cam, orient, pose], lambda: obj.terms(orient, pose, shape0, cam)[0].sum(), cfg.iters_pose)
        with torch.no_grad():
            loss, _ = obj.terms(orient, pose, shape0, cam)
    with torch.no_grad():  # the best start per image (the first of equal losses, as argmin)
        loss = torch.nan_to_num(loss.detach(), nan=math.inf)
        order = torch.argsort(loss, stable=True)
        order = order[torch.argsort(img[order], stable=True)]  # by image, then by loss
        first = torch.ones(m, dtype=torch.bool, device=dev)
        first[1:] = img[order][1:] != img[order][:-1]
        pick = order[first]

    # ---- stage 2: the best start per image, shape shared per person
    return _stage2(body, kp, vis, height, width, cfg, facing, kp_w, pid, reasons, masks, orient.detach()[pick],
                   pose.detach()[pick], cam.detach()[pick], torch.zeros(n_persons, body.shape_dim, device=dev),
                   cfg.lm_iters_shape if cfg.solver == "lm" else cfg.iters_shape, yaw[pick.cpu()])


def decided_facing(keypoints: torch.Tensor, visible: torch.Tensor, facing: torch.Tensor,
                   min_width: float) -> torch.Tensor:
    """+1 where the keypoints decide that the body faces the camera, -1 where they decide it turns its back, 0
    where they leave it open (a side view, a turn, a close-up). Decided: the face evidence
    (:func:`facing_evidence`) says front (back), and the shoulders (and hips, when both are seen) lie in the
    matching left-right order, each pair spread wider than ``min_width`` times the torso's length (neck to the
    hips' centre); the person's left is at larger ``x`` when facing the camera. ``min_width <= 0``: never."""
    vis = visible.bool()
    out = torch.zeros(vis.shape[0], device=keypoints.device)
    if min_width <= 0:
        return out
    x = keypoints[..., 0]
    hips = vis[:, 8] | vis[:, 11]
    hw = vis[:, [8, 11]].float()
    hip_c = (keypoints[:, [8, 11]] * hw[..., None]).sum(1) / hw.sum(1, keepdim=True).clamp_min(1)
    torso = (keypoints[:, 1] - hip_c).norm(dim=-1)
    ok = vis[:, 1] & vis[:, 2] & vis[:, 5] & hips & (torso > 0)
    spread = (x[:, 5] - x[:, 2]) / torso.clamp_min(1e-6)
    both_hips = vis[:, 8] & vis[:, 11]
    hip_spread = torch.where(both_hips, (x[:, 11] - x[:, 8]) / torso.clamp_min(1e-6), spread)
    front = ok & (facing > 0) & (spread > min_width) & (hip_spread > 0.5 * min_width)
    back = ok & (facing < 0) & (spread < -min_width) & (hip_spread < -0.5 * min_width)
    return front.float() - back.float()


def _starts(kp: torch.Tensor, vis: torch.Tensor, facing: torch.Tensor,
            cfg: BodyFitConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The stage-1 starts: ``(image index, yaw degrees)`` per start, grouped by image: every ``yaw_starts`` entry,
    or only the one nearest 0 (180) degrees where :func:`decided_facing` says front (back)."""
    yaws = torch.tensor([float(y) for y in cfg.yaw_starts])
    decided = decided_facing(kp, vis, facing, cfg.facing_min_width).cpu() if cfg.solver == "lm" else \
        torch.zeros(kp.shape[0])
    dist = lambda target: (torch.remainder(yaws - target + 180.0, 360.0) - 180.0).abs()  # noqa: E731
    front, back = int(dist(0.0).argmin()), int(dist(180.0).argmin())
    img, yaw = [], []
    for i, d in enumerate(decided.tolist()):
        chosen = [front] if d > 0 else [back] if d < 0 else range(len(yaws))
        img += [i] * len(chosen)
        yaw += [float(yaws[j]) for j in chosen]
    return torch.tensor(img, dtype=torch.long, device=kp.device), torch.tensor(yaw)


def _stage2(body: BodyModel, kp: torch.Tensor, vis: torch.Tensor, height: int, width: int, cfg: BodyFitConfig,
            facing: torch.Tensor, kp_w: torch.Tensor, pid: torch.Tensor, reasons: list[str],
            masks: torch.Tensor | np.ndarray | None, orient: torch.Tensor, pose: torch.Tensor, cam: torch.Tensor,
            beta: torch.Tensor, iters: int, yaw_start: torch.Tensor | None) -> FitResult:
    """Camera, orientation, pose and (per person) shape together from the given starting values, plus the
    silhouette term when masks are given; then scored and flagged (:func:`_finish`)."""
    obj = _Objective(body, kp, vis, height, cfg, facing, kp_w)
    orient, pose, cam, beta = (t.clone().requires_grad_(True) for t in (orient, pose, cam, beta))
    sil = _silhouette_term(body, masks, height, width, kp.device) \
        if masks is not None and cfg.silhouette_weight > 0 else None

    def closure() -> torch.Tensor:
        shape = beta[pid]
        loss = obj.terms(orient, pose, shape, cam)[0].sum()
        if sil is not None:
            loss = loss + cfg.silhouette_weight * sil(orient, pose, shape, cam)
        return loss

    fit_beta = bool(cfg.fit_shape and body.shape_dim)
    if cfg.solver == "lm" and sil is None:
        n, p = pose.shape[:2]

        def residuals(xa: torch.Tensor, shape: torch.Tensor | None) -> torch.Tensor:
            return obj.residuals(xa[:, 3:6], xa[:, 6:].reshape(-1, p, 3), beta[pid] if shape is None else shape,
                                 xa[:, :3])

        def jacobian(xa: torch.Tensor, shape: torch.Tensor | None) -> torch.Tensor | None:
            return obj.jacobian(xa[:, 3:6], xa[:, 6:].reshape(-1, p, 3), beta[pid] if shape is None else shape,
                                xa[:, :3], None, None if fit_beta else 6 + 3 * p)

        with torch.no_grad():
            xa, xb, _ = _lm(residuals, torch.cat([cam, orient, pose.reshape(n, -1)], 1),
                            beta if fit_beta else None, pid, beta.shape[0], iters, cfg.lm_tolerance, jacobian)
            cam, orient, pose = xa[:, :3], xa[:, 3:6], xa[:, 6:].reshape(n, p, 3)
            beta = xb if fit_beta else beta
        return _finish(obj, orient, pose, beta, pid, cam, vis, height, width, cfg, reasons, yaw_start)
    params = [cam, orient, pose] + ([beta] if fit_beta else [])
    _lbfgs(params, closure, iters)
    return _finish(obj, orient, pose, beta, pid, cam, vis, height, width, cfg, reasons, yaw_start)


def _finish(obj: _Objective, orient: torch.Tensor, pose: torch.Tensor, beta: torch.Tensor, pid: torch.Tensor,
            cam: torch.Tensor, vis: torch.Tensor, height: int, width: int, cfg: BodyFitConfig, reasons: list[str],
            yaw_start: torch.Tensor | None) -> FitResult:
    """Score the fits (keypoint RMS in the input's pixels), flag the bad ones, and package them."""
    n = vis.shape[0]
    with torch.no_grad():
        shape = beta[pid]
        _, err2 = obj.terms(orient, pose, shape, cam)
        err_px2 = err2 / obj.px ** 2
        nvis = vis.float().sum(1).clamp_min(1)
        rms = ((err_px2 * vis.float()).sum(1) / nvis).sqrt()
    limit = cfg.max_rms_px * height / 256.0
    for i in range(n):
        if not reasons[i] and not math.isfinite(float(rms[i])):
            reasons[i] = "the fit diverged"
        elif not reasons[i] and float(rms[i]) > limit:
            reasons[i] = f"keypoint RMS {float(rms[i]):.1f} px over the {limit:.1f} px limit"
    ok = torch.tensor([r == "" for r in reasons])
    return FitResult(orient.detach().cpu(), pose.detach().cpu(), shape.detach().cpu(), cam.detach().cpu(),
                     rms.cpu(), ok, reasons, yaw_start, height, width)


def _silhouette_term(body: BodyModel, masks: torch.Tensor | np.ndarray, height: int, width: int,
                     dev: torch.device):  # noqa: ANN202
    """A penalty on projected vertices outside the person mask (distance in 256-frame px, squared)."""
    import cv2

    m = np.asarray(masks.cpu() if torch.is_tensor(masks) else masks) > 0
    fields = np.stack([cv2.distanceTransform((~mi).astype(np.uint8), cv2.DIST_L2, 5) for mi in m])
    field_t = torch.from_numpy(fields).float().to(dev)[:, None] * (256.0 / height)
    step = max(1, body.num_vertices // 1500)
    sub = torch.arange(0, body.num_vertices, step, device=dev)

    def term(orient: torch.Tensor, pose: torch.Tensor, shape: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        verts = body(orient, pose, shape).vertices[:, sub]
        uv = project(verts, cam)
        # pixel (row i, col j) has its centre at (x=j, y=i): grid_sample's align_corners=False wants (x+0.5)/W
        grid = torch.stack([(uv[..., 0] + 0.5) / width * 2 - 1, (uv[..., 1] + 0.5) / height * 2 - 1], -1)[:, None]
        d = torch.nn.functional.grid_sample(field_t, grid, align_corners=False, padding_mode="border")
        return d.pow(2).mean()

    return term
