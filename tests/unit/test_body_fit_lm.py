"""The Levenberg-Marquardt body fit: its residuals are the L-BFGS objective, it converges at least as well,
early stopping, the facing decision that skips yaw starts, warm starts."""

from __future__ import annotations

import pytest
import torch

from glocal_cli.body import load_body_model
from glocal_cli.body.anny_body import AnnyBody
from glocal_cli.body.config import BodyFitConfig
from glocal_cli.body.fit import (
    _KP_WEIGHT,
    _lm,
    _Objective,
    _starts,
    decided_facing,
    facing_evidence,
    fit_keypoints,
    project,
    yaw_rotvec,
)

NOSE, R_EYE, L_EYE = 0, 14, 15


@pytest.fixture(scope="module")
def body() -> AnnyBody:
    torch.set_num_threads(1)
    return load_body_model("anny")


def _keypoints(body: AnnyBody, yaws: list[float], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = len(yaws)
    pose = (torch.rand(n, len(body.pose_joints), 3, generator=g) - 0.5) * 0.3
    orient = torch.stack([yaw_rotvec(y) for y in yaws])
    shape = torch.randn(n, body.shape_dim, generator=g) * 0.5
    cam = torch.tensor([[140.0, 88.0, 120.0]]).repeat(n, 1)
    return project(body(orient, pose, shape, vertices=False).keypoints, cam), shape


def test_residuals_are_the_objective(body: AnnyBody) -> None:
    kp, _ = _keypoints(body, [0.0, 180.0, 40.0])
    vis = torch.ones(3, 18, dtype=torch.bool)
    vis[1, [NOSE, R_EYE, L_EYE]] = False
    vis[2, [9, 10, 12, 13]] = False  # a close-up: the truncation term and stiff missing joints
    obj = _Objective(body, kp + 3.0, vis, 256, BodyFitConfig(), facing_evidence(vis), _KP_WEIGHT)
    g = torch.Generator().manual_seed(1)
    orient = torch.randn(3, 3, generator=g) * 0.5
    pose = torch.randn(3, len(body.pose_joints), 3, generator=g)  # beyond some joint limits
    shape = torch.randn(3, body.shape_dim, generator=g)
    cam = torch.tensor([[120.0, 80.0, 110.0]]).repeat(3, 1)
    loss, _ = obj.terms(orient, pose, shape, cam)
    res = obj.residuals(orient, pose, shape, cam)
    assert torch.allclose(res.pow(2).sum(1), loss, rtol=1e-4)


def _forward_mode_jacobian(fn, z: torch.Tensor) -> torch.Tensor:
    from torch.func import jvp, vmap

    basis = torch.eye(z.shape[1], dtype=z.dtype)[:, None].expand(-1, z.shape[0], -1)
    return vmap(lambda t: jvp(fn, (z,), (t,))[1])(basis).permute(1, 2, 0)


def test_keypoint_jacobian_is_exact(body: AnnyBody) -> None:
    """The closed-form keypoint Jacobian equals forward-mode differentiation of the body (float64), away from and
    at the rest pose (where the SO(3) Jacobian takes its Taylor branch)."""
    b64 = AnnyBody.load().double()
    g = torch.Generator().manual_seed(3)
    p = len(b64.pose_joints)
    for spread in (0.0, 0.6):
        orient = torch.randn(4, 3, generator=g, dtype=torch.float64) * spread
        pose = torch.randn(4, p, 3, generator=g, dtype=torch.float64) * spread
        shape = torch.randn(4, b64.shape_dim, generator=g, dtype=torch.float64)
        z = torch.cat([orient, pose.reshape(4, -1), shape], 1)

        def keypoints(z: torch.Tensor) -> torch.Tensor:
            return b64(z[:, :3], z[:, 3:3 + 3 * p].reshape(-1, p, 3), z[:, 3 + 3 * p:], vertices=False).keypoints

        kp, jac = b64.keypoint_jacobian(orient, pose, shape)
        ref = _forward_mode_jacobian(lambda z: keypoints(z).reshape(4, -1), z).reshape(jac.shape)
        assert torch.allclose(kp, keypoints(z), atol=1e-12)
        assert (jac - ref).abs().max() < 1e-9 * ref.abs().max()


def test_objective_jacobian_matches_its_residuals(body: AnnyBody) -> None:
    """Every residual block (keypoints, priors, upright, limits, truncation, facing) differentiated in closed form
    equals forward mode, with joints beyond their limits, a close-up and both facing signs; ``n_params`` keeps
    the first columns."""
    b64 = AnnyBody.load().double()
    g = torch.Generator().manual_seed(4)
    n, p, s = 4, len(b64.pose_joints), b64.shape_dim
    kp = torch.rand(n, 18, 2, generator=g, dtype=torch.float64) * torch.tensor([176.0, 256.0], dtype=torch.float64)
    vis = torch.rand(n, 18, generator=g) > 0.2
    vis[2, [9, 10, 12, 13]] = False
    obj = _Objective(b64, kp, vis, 256, BodyFitConfig(), torch.tensor([1.0, -1.0, 0.0, 1.0], dtype=torch.float64),
                     _KP_WEIGHT.double())
    cam = torch.tensor([[140.0, 88.0, 128.0]], dtype=torch.float64).repeat(n, 1)
    z = torch.cat([cam, torch.randn(n, 3 + 3 * p + s, generator=g, dtype=torch.float64) * 0.7], 1)

    def residuals(z: torch.Tensor) -> torch.Tensor:
        return obj.residuals(z[:, 3:6], z[:, 6:6 + 3 * p].reshape(-1, p, 3), z[:, 6 + 3 * p:], z[:, :3])

    jac = obj.jacobian(z[:, 3:6], z[:, 6:6 + 3 * p].reshape(-1, p, 3), z[:, 6 + 3 * p:], z[:, :3])
    ref = _forward_mode_jacobian(residuals, z)
    assert jac.shape == ref.shape
    assert (jac - ref).abs().max() < 1e-8 * ref.abs().max()
    part = obj.jacobian(z[:, 3:6], z[:, 6:6 + 3 * p].reshape(-1, p, 3), z[:, 6 + 3 * p:], z[:, :3], None, 6)
    assert torch.equal(part, jac[..., :6])


def test_a_body_without_closed_form_fits_by_forward_mode(body: AnnyBody, monkeypatch: pytest.MonkeyPatch) -> None:
    """A body model whose ``keypoint_jacobian`` is ``None`` (the base class's) is fitted with forward-mode
    derivatives, to the same fit."""
    kp, _ = _keypoints(body, [0.0, 180.0, 60.0], seed=5)
    vis = torch.ones(3, 18, dtype=torch.bool)
    closed = fit_keypoints(body, kp, vis, 256, 176)
    monkeypatch.setattr(AnnyBody, "keypoint_jacobian", lambda self, *a: None)
    forward = fit_keypoints(body, kp, vis, 256, 176)
    assert torch.allclose(closed.rms_px, forward.rms_px, atol=0.05)
    assert torch.allclose(closed.camera, forward.camera, rtol=1e-2, atol=0.5)


def test_lm_reaches_a_lower_objective_than_lbfgs(body: AnnyBody) -> None:
    kp, _ = _keypoints(body, [0.0, 180.0, 70.0, -30.0], seed=2)
    g = torch.Generator().manual_seed(3)
    kp = kp + torch.randn(kp.shape, generator=g) * 2.0  # noisy: no exact solution
    vis = torch.ones(4, 18, dtype=torch.bool)
    vis[1, [NOSE, R_EYE, L_EYE]] = False
    fits = {s: fit_keypoints(body, kp, vis, 256, 176, BodyFitConfig(solver=s)) for s in ("lm", "lbfgs")}
    obj = _Objective(body, kp, vis, 256, BodyFitConfig(), facing_evidence(vis), _KP_WEIGHT)
    loss = {s: obj.terms(f.global_orient, f.body_pose, f.shape, f.camera)[0] for s, f in fits.items()}
    assert bool(fits["lm"].ok.all()), fits["lm"].reason
    assert float(loss["lm"].sum()) <= float(loss["lbfgs"].sum()) * 1.02, loss
    assert float(fits["lm"].rms_px.max()) < 4.0


def test_lm_shares_shape_per_person_and_warm_starts(body: AnnyBody) -> None:
    kp, _ = _keypoints(body, [0.0, 20.0, 180.0], seed=4)
    vis = torch.ones(3, 18, dtype=torch.bool)
    res = fit_keypoints(body, kp, vis, 256, 176, person_ids=[5, 1, 5])
    assert torch.equal(res.shape[0], res.shape[2]) and not torch.equal(res.shape[0], res.shape[1])
    assert float(res.rms_px.max()) < 3.0, res.rms_px  # images 0 and 2 differ in shape but share one
    moved = kp.clone()
    moved[:, 4] += torch.tensor([6.0, -4.0])  # a wrist dragged a little
    warm = fit_keypoints(body, moved, vis, 256, 176, person_ids=[5, 1, 5], init=res)
    assert torch.equal(warm.yaw_start, res.yaw_start)
    assert float(warm.rms_px.max()) < 3.5, warm.rms_px
    assert not torch.equal(warm.body_pose, res.body_pose)


def test_lm_stops_early_once_converged() -> None:
    target = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    calls = []

    def residuals(x: torch.Tensor, _shape: None) -> torch.Tensor:  # a smooth least-squares bowl
        calls.append(1)
        # two inconsistent targets: the minimum (their mean) keeps a loss, so only the tolerance can stop early
        return torch.cat([x - target, x - target - 1.0, 0.1 * (x[:, :1] * x[:, 1:]) - 0.1 * target.prod(1, keepdim=True)], 1)

    x, _, cost = _lm(residuals, torch.zeros(2, 2), None, torch.arange(2), 2, 50, 1e-3)
    early = len(calls)
    assert torch.allclose(x, target + 0.5, atol=0.05)
    calls.clear()
    x0, _, cost0 = _lm(residuals, torch.zeros(2, 2), None, torch.arange(2), 2, 50, 0.0)
    assert torch.allclose(cost, cost0, rtol=1e-3)
    assert early <= 20 < len(calls)  # tolerance 0: steps until none is accepted any more


def test_keypoints_decide_the_facing_and_the_starts(body: AnnyBody) -> None:
    kp, _ = _keypoints(body, [0.0, 180.0, 90.0, 0.0], seed=6)
    kp[3, [2, 5]] = kp[3, [5, 2]]  # a front whose left and right are swapped: undecided
    kp[3, [8, 11]] = kp[3, [11, 8]]
    vis = torch.ones(4, 18, dtype=torch.bool)
    vis[1, [NOSE, R_EYE, L_EYE]] = False  # the back: no face
    facing = facing_evidence(vis)
    assert decided_facing(kp, vis, facing, 0.5).tolist() == [1.0, -1.0, 0.0, 0.0]
    assert decided_facing(kp, vis, facing, 0.0).tolist() == [0.0] * 4
    img, yaw = _starts(kp, vis, facing, BodyFitConfig())
    assert img.tolist() == [0, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert yaw.tolist() == [0.0, 180.0] + [0.0, 90.0, 180.0, 270.0] * 2
    # L-BFGS keeps every start (the fit as it was)
    assert _starts(kp, vis, facing, BodyFitConfig(solver="lbfgs"))[0].shape[0] == 16
    res = fit_keypoints(body, kp[:2], vis[:2], 256, 176)
    assert res.yaw_start.tolist() == [0.0, 180.0]


def test_unknown_solver_is_refused(body: AnnyBody) -> None:
    kp, _ = _keypoints(body, [0.0])
    with pytest.raises(ValueError, match="solver"):
        fit_keypoints(body, kp, torch.ones(1, 18, dtype=torch.bool), 256, 176, BodyFitConfig(solver="adam"))


def test_a_fit_does_not_depend_on_its_batch(body: AnnyBody) -> None:
    """An image fitted alone and fitted among others gets the same bits (prepare-data's resumed runs refit a few
    images and must write the bytes of the uninterrupted run)."""
    kp, _ = _keypoints(body, [0.0, 180.0, 60.0, 20.0, -90.0], seed=6)
    vis = torch.ones(5, 18, dtype=torch.bool)
    vis[3, [9, 10, 12, 13]] = False
    together = fit_keypoints(body, kp, vis, 256, 176)
    for i in (0, 3):
        alone = fit_keypoints(body, kp[i:i + 1], vis[i:i + 1], 256, 176)
        for field in ("global_orient", "body_pose", "shape", "camera", "rms_px"):
            assert torch.equal(getattr(alone, field)[0], getattr(together, field)[i]), field
