"""The shipped Anny body, keypoint fitting and mesh parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glocal_cli.body import BODY_PARTS, load_body_model
from glocal_cli.body.anny_body import AnnyBody
from glocal_cli.body.base import axis_angle_to_matrix
from glocal_cli.body.config import BodyConfig, BodyFitConfig
from glocal_cli.body.fit import FitResult, fit_keypoints, project, yaw_rotvec
from glocal_cli.body.pair import body_parsing, fit_poses, render_fits
from glocal_cli.data.keypoints import Pose
from glocal_cli.errors import ConfigError, InputError

NOSE, NECK, R_SHO, L_SHO, R_ANK, L_ANK, R_EAR, L_EAR = 0, 1, 2, 5, 10, 13, 16, 17


@pytest.fixture(scope="module")
def body() -> AnnyBody:
    torch.manual_seed(0)
    return load_body_model("anny")


def test_rodrigues_matches_matrix_exp() -> None:
    r = torch.randn(64, 3, dtype=torch.float64)
    r[0] = 0
    k = torch.zeros(64, 3, 3, dtype=torch.float64)
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -r[:, 2], r[:, 1], -r[:, 0]
    k = k - k.transpose(1, 2)
    assert torch.allclose(axis_angle_to_matrix(r), torch.linalg.matrix_exp(k), atol=1e-10)


def test_canonical_frame_and_topology(body: AnnyBody) -> None:
    assert body.num_vertices == 13718 and body.faces.shape == (27420, 3)
    assert int(body.faces.max()) < body.num_vertices
    assert set(body.face_parts.unique().tolist()) == set(range(1, len(BODY_PARTS)))
    o, p = body.zero_pose(1)
    out = body(o, p, body.default_shape(1))
    kp = out.keypoints[0]
    assert kp[NOSE, 1] < kp[NECK, 1] < kp[R_ANK, 1]  # y points down
    assert kp[L_SHO, 0] > 0 > kp[R_SHO, 0]  # the person's left at +x
    assert kp[NOSE, 2] < 0.5 * (kp[R_EAR, 2] + kp[L_EAR, 2])  # faces the camera (-z)
    height = float(out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min())
    assert 1.4 < height < 2.0


def test_turn_swaps_sides_and_keypoints_fast_path_is_exact(body: AnnyBody) -> None:
    o, p = body.zero_pose(1)
    o = yaw_rotvec(180.0)[None]
    kp = body(o, p, body.default_shape(1)).keypoints[0]
    assert kp[L_SHO, 0] < 0 < kp[R_SHO, 0]
    assert kp[NOSE, 2] > 0.5 * (kp[R_EAR, 2] + kp[L_EAR, 2])
    g = torch.Generator().manual_seed(1)
    o = torch.randn(3, 3, generator=g) * 0.5
    p = torch.randn(3, len(body.pose_joints), 3, generator=g) * 0.4
    s = torch.randn(3, body.shape_dim, generator=g)
    full, fast = body(o, p, s), body(o, p, s, vertices=False)
    assert fast.vertices is None
    assert torch.allclose(full.keypoints, fast.keypoints, atol=1e-5)


def test_shape_space_spans_children_and_adults(body: AnnyBody) -> None:
    ph, coeffs = body.phenotype_samples, body.phenotype_coeffs
    young, adult = ph[:, 1] < 0.25, (ph[:, 1] > 0.6) & (ph[:, 4] > 0.4)
    rest_young = body.rest(coeffs[young][:8])[0]
    rest_adult = body.rest(coeffs[adult][:8])[0]
    h_young = (rest_young[..., 1].amax(1) - rest_young[..., 1].amin(1)).mean()
    h_adult = (rest_adult[..., 1].amax(1) - rest_adult[..., 1].amin(1)).mean()
    assert h_young < 0.85 * h_adult


def test_gradients_reach_pose_and_shape(body: AnnyBody) -> None:
    o = torch.zeros(2, 3, requires_grad=True)
    p = torch.full((2, len(body.pose_joints), 3), 0.1, requires_grad=True)
    s = torch.zeros(2, body.shape_dim, requires_grad=True)
    body(o, p, s, vertices=False).keypoints.square().sum().backward()
    assert o.grad.abs().sum() > 0 and s.grad.abs().sum() > 0
    assert (p.grad.abs().sum((0, 2)) > 0).sum() >= len(body.pose_joints) - 2  # head may not move a point much


def _known_bodies(body: AnnyBody, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    lim = body.joint_limits.clamp(-0.5, 0.5)
    pose = lim[..., 0] + (lim[..., 1] - lim[..., 0]) * torch.rand(n, *lim.shape[:2], generator=g)
    pose = pose * 0.5
    yaws = torch.tensor([0.0, 180.0, 30.0, -25.0])[:n]
    orient = torch.stack([yaw_rotvec(float(y)) for y in yaws])
    shape = torch.randn(n, body.shape_dim, generator=g) * 0.7
    camera = torch.tensor([[140.0, 88.0, 120.0]]).repeat(n, 1)
    kp = project(body(orient, pose, shape, vertices=False).keypoints, camera)
    return orient, pose, shape, camera, kp


def test_fit_recovers_a_known_body_from_its_keypoints(body: AnnyBody) -> None:
    torch.set_num_threads(1)
    orient, pose, shape, camera, kp = _known_bodies(body, 4, seed=3)
    vis = torch.ones(4, 18, dtype=torch.bool)
    vis[1, [NOSE, 14, 15]] = False  # body 1 turns its back: the face is not seen
    res = fit_keypoints(body, kp, vis, 256, 176)
    assert bool(res.ok.all()), res.reason
    # bound: 1.5 px RMS in the 176x256 frame (the priors pull a little against exact data)
    assert float(res.rms_px.max()) < 1.5
    # the facing is recovered: the nose points the same way (towards / away from the camera)
    out = body(res.global_orient, res.body_pose, res.shape, vertices=False).keypoints
    ref = body(orient, pose, shape, vertices=False).keypoints
    dz_fit = out[:, NOSE, 2] - 0.5 * (out[:, R_EAR, 2] + out[:, L_EAR, 2])
    dz_ref = ref[:, NOSE, 2] - 0.5 * (ref[:, R_EAR, 2] + ref[:, L_EAR, 2])
    assert torch.equal(dz_fit > 0, dz_ref > 0)
    # the camera scale is recovered within 10 %
    assert torch.allclose(res.camera[:, 0], camera[:, 0], rtol=0.1)


def test_fit_flags_bad_input_with_a_reason(body: AnnyBody) -> None:
    _, _, _, _, kp = _known_bodies(body, 3, seed=4)
    vis = torch.ones(3, 18, dtype=torch.bool)
    vis[0] = False
    vis[0, [0, 14, 15]] = True  # a face only: too few points
    vis[1, [2, 5, 8, 11]] = False  # no torso
    kp[2, :, 1] += 250.0 - kp[2, NECK, 1]  # person pushed down out of the frame: only the face inside
    vis[2] = kp[2, :, 1] < 245
    cfg = BodyFitConfig(iters_camera=5, iters_pose=10, iters_shape=10)
    res = fit_keypoints(body, kp, vis, 256, 176, cfg)
    assert res.ok.tolist() == [False, False, False]
    assert "only 3 keypoints" in res.reason[0]
    assert "no torso" in res.reason[1]
    assert "cut by the frame" in res.reason[2]


def test_fit_poses_shares_shape_per_person_and_round_trips(body: AnnyBody, tmp_path) -> None:  # noqa: ANN001
    _, _, _, _, kp = _known_bodies(body, 3, seed=5)
    poses = [Pose(xy=k.numpy(), visible=np.ones(18, bool)) for k in kp]
    cfg = BodyConfig(fit=BodyFitConfig(iters_camera=5, iters_pose=20, iters_shape=20), fit_batch_size=2)
    res = fit_poses(body, poses, 256, 176, cfg, person_ids=[7, 3, 7])
    assert torch.equal(res.shape[0], res.shape[2]) and not torch.equal(res.shape[0], res.shape[1])
    np.savez(tmp_path / "a.npz", **res.to_npz_dict(1))
    back = FitResult.from_npz_dicts([dict(np.load(tmp_path / "a.npz", allow_pickle=False))])
    assert torch.equal(back.camera[0], res.camera[1]) and back.reason == [res.reason[1]]
    rendered = render_fits(body, res)
    assert rendered.raster.part.shape == (3, 256, 176)
    assert (rendered.raster.part > 0).float().mean() > 0.05


def test_body_parsing_from_parts_and_mask() -> None:
    part = np.zeros((40, 30), np.int64)
    part[5:12, 12:18] = 1  # head
    part[12:28, 8:22] = 2  # torso
    part[28:38, 9:14] = 10  # lower leg L
    plain = body_parsing(part)
    assert plain[8, 15] == 5 and plain[20, 15] == 2 and plain[30, 10] == 7 and plain[0, 0] == 0
    mask = np.zeros((40, 30), bool)
    mask[2:38, 6:24] = True  # a person bigger than the naked mesh (hair above, clothes beside)
    mask[33:38, 9:14] = False  # and a leg the mask says is not there
    refined = body_parsing(part, mask)
    assert refined[3, 15] == 1  # above the face: hair
    assert refined[20, 7] == 2  # beside the torso: upper clothes
    assert refined[35, 10] == 0  # body outside the mask: background
    assert refined[0, 0] == 0 and set(np.unique(refined)) <= set(range(8))


def test_load_errors(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(InputError, match="not found"):
        AnnyBody.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="bad.safetensors"):
        AnnyBody.load(bad)
    with pytest.raises(ConfigError, match="unknown body model"):
        load_body_model("mannequin")
    with pytest.raises(ConfigError, match="needs a path"):
        load_body_model("smplx")
    assert math.isfinite(float(load_body_model("anny").metadata["pca_heldout_rms_mm"]))


def test_truncated_keypoints_marks_legs_cut_off_by_the_frame() -> None:
    from glocal_cli.body.fit import truncated_keypoints

    vis = torch.ones(3, 18, dtype=torch.bool)
    vis[0, [9, 10, 12, 13]] = False  # a close-up: ends above the knees
    vis[1, [10, 13]] = False  # ends above the ankles
    vis[2, [9, 10]] = False  # one leg hidden behind the other: not cut off
    t = truncated_keypoints(vis)
    assert t[0, [9, 10, 12, 13]].tolist() == [1.0] * 4 and float(t[0].sum()) == 4
    assert t[1, [10, 13]].tolist() == [1.0, 1.0] and float(t[1].sum()) == 2
    assert float(t[2].sum()) == 0


@pytest.mark.slow
def test_close_ups_keep_their_legs_below_the_frame(body: AnnyBody) -> None:
    """Real DeepFashion close-ups (knees and ankles missing): with the out-of-frame term the fitted knees lie
    below the bottom edge; without it a fit folds some of them into the picture."""
    from glocal_cli.body.fit import truncated_keypoints
    from glocal_cli.data.keypoints import read_keypoint_csv
    from glocal_cli.paths import shared_data_dir

    root = shared_data_dir()
    if root is None:
        pytest.skip("../shared/data not found (the DeepFashion annotations)")
    torch.set_num_threads(1)
    poses = read_keypoint_csv(root / "deepfashion" / "fasion-annotation-test.csv", frame="deepfashion-256x256",
                              to_frame="deepfashion-256x176")
    names = sorted({n for p in (root / "deepfashion" / "samples").glob("*.png") for n in (
        p.name[:-4].split(".jpg_")[0] + ".jpg", p.name[:-4].split(".jpg_")[1])})
    close = [poses[n] for n in names if n in poses and float(truncated_keypoints(
        torch.as_tensor(poses[n].visible)[None])[0, 9]) > 0][:16]
    assert len(close) == 16
    kp = torch.tensor(np.stack([p.xy for p in close])).float()
    vis = torch.tensor(np.stack([p.visible for p in close]))
    knee_y = {}
    w = BodyFitConfig().truncation_weight
    for key, cfg in {"lbfgs, no term": BodyFitConfig(truncation_weight=0.0, solver="lbfgs"),
                     "lbfgs": BodyFitConfig(solver="lbfgs"), "default": BodyFitConfig(truncation_weight=w)}.items():
        res = fit_keypoints(body, kp, vis, 256, 176, cfg)
        out = project(body(res.global_orient, res.body_pose, res.shape, vertices=False).keypoints, res.camera)
        knee_y[key] = out[:, [9, 12], 1].amin(1)
    assert int((knee_y["lbfgs, no term"] < 256 - 2).sum()) >= 3, knee_y  # the failure the term fixes
    assert bool((knee_y["lbfgs"] > 256 - 2).all()), knee_y
    assert bool((knee_y["default"] > 256 - 2).all()), knee_y  # the LM fit with the term
