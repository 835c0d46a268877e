"""SynthPeople on Anny body shapes (glocal_cli.synth.anny_*, prepare_synthetic(body="anny"))."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from glocal_cli.body.anny_body import DEFAULT_ANNY_FILE
from glocal_cli.body.correspond import INVISIBLE, VISIBLE, load_correspondence, warp_image
from glocal_cli.data.config import AnnySynthConfig
from glocal_cli.data.parsing import CLASS_NAMES

pytestmark = pytest.mark.skipif(not DEFAULT_ANNY_FILE.is_file(), reason="the Anny body export is not in this checkout")

FACE, SHOES, LOWER, LEGS, HAIR = (CLASS_NAMES.index(n) for n in ("face", "shoes", "lower", "legs", "hair"))
CLEAN = AnnySynthConfig(shading=False, noise=0, antialias=False, closeup=0.0)


@pytest.fixture(scope="module")
def body():
    from glocal_cli.synth.anny_people import load_anny_body

    return load_anny_body()


@pytest.fixture(scope="module")
def real():
    from glocal_cli.synth.anny_poses import REAL_POSES_FILE, RealPoses

    return RealPoses(REAL_POSES_FILE)


def _standing(body, k: int, yaws=None):
    """``k`` front-facing poses: arms a little away from the body, legs straight."""
    from glocal_cli.synth.anny_poses import sample_poses

    orient, pose = body.zero_pose(k)
    orient = orient.numpy()
    if yaws is not None:
        orient[:, 1] = yaws
    names = list(body.pose_joints)
    pose = pose.numpy()
    for side, sign in (("l", 1.0), ("r", -1.0)):
        pose[:, names.index(f"shoulder_{side}"), 2] = sign * 0.55  # arms down, off the hips
    del sample_poses
    return orient, pose


def _tree_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes_for_any_worker_count_and_resumes(tmp_path):
    from glocal_cli.synth.dataset import prepare_synthetic
    from glocal_cli.synth.writer import marker_path

    kw = dict(identities=2, poses_per_identity=3, size=(64, 44), seed=5, show_progress=False, body="anny")
    a = prepare_synthetic(tmp_path / "a", workers=1, **kw)
    prepare_synthetic(tmp_path / "b", workers=2, **kw)
    files_a, files_b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert files_a.keys() == files_b.keys()
    assert [k for k in files_a if files_a[k] != files_b[k]] == []
    from glocal_cli.synth.anny_people import anny_pairs

    n_pairs = 2 * len(anny_pairs(3))  # each pose the target of the next one (and of the half-way one, K >= 4)
    assert a.counts["images"] == 6 and a.counts["pairs-train"] + a.counts["pairs-test"] == n_pairs == 6
    assert len(list((tmp_path / "a" / "correspondence").glob("*.npz"))) == n_pairs
    # interrupted run: identity 1 lost its marker and an image; a rerun redoes exactly that
    marker_path(tmp_path / "a", 1).unlink()
    (tmp_path / "a" / "images" / "synth_id00001_02.png").unlink()
    again = prepare_synthetic(tmp_path / "a", workers=1, **kw)
    assert again.rendered_identities == 1 and again.skipped_identities == 1
    assert _tree_bytes(tmp_path / "a") == files_a
    # a lost correspondence file (marker kept) is noticed too
    next((tmp_path / "a" / "correspondence").glob("synth_id00000_*.npz")).unlink()
    again = prepare_synthetic(tmp_path / "a", workers=1, **kw)
    assert again.rendered_identities == 1 and again.skipped_identities == 1
    assert _tree_bytes(tmp_path / "a") == files_a
    # another seed is another dataset (refused without --overwrite)
    from glocal_cli.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        prepare_synthetic(tmp_path / "a", workers=1, **{**kw, "seed": 6})


def test_parsing_classes_are_sane_and_keypoints_land_on_the_body(body, real):
    from glocal_cli.synth.anny_people import render_anny_identity

    h, w = 128, 88
    fronts = 0
    for index in range(4):
        ident = render_anny_identity(body, 1, index, 4, h, w, real, CLEAN)
        assert ident.images.shape == (4, h, w, 3) and ident.parsing.max() <= 7
        person = ident.parsing > 0
        assert np.array_equal(person, ident.part > 0)  # every drawn pixel has a class, the background none
        for k in range(4):
            labels = ident.parsing[k]
            rows = np.arange(h)[:, None].repeat(w, 1)
            if (labels == FACE).sum() > 4 and (labels == SHOES).sum() > 4:
                assert rows[labels == FACE].mean() < rows[labels == SHOES].mean()  # face above shoes
                fronts += 1
            kp = ident.keypoints[k]
            assert kp.visible.sum() >= 3
            grown = np.zeros_like(person[k])
            grown[1:-1, 1:-1] = person[k][1:-1, 1:-1]
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    grown |= np.roll(np.roll(person[k], dy, 0), dx, 1)
            for x, y in kp.xy[kp.visible]:
                assert grown[int(round(float(y))), int(round(float(x)))], "a visible keypoint off the body"
    assert fronts >= 4


def test_a_back_view_hides_the_face_keypoints(body, real):
    from glocal_cli.synth.anny_people import render_anny_identity

    orient, pose = _standing(body, 2, yaws=[0.0, math.pi])
    ident = render_anny_identity(body, 0, 3, 2, 128, 88, real, CLEAN, poses=(orient, pose))
    front, back = ident.keypoints
    assert front.visible[[0, 14, 15]].all()  # nose and eyes seen from the front
    assert not back.visible[[0, 14, 15]].any()  # never from behind
    assert ident.views == ["front", "back"]
    assert (ident.parsing[1] == FACE).sum() < 0.1 * (ident.parsing[0] == FACE).sum()


def _plain(look):
    """The look with plain (single-colour) clothes: warped pixels then differ only at part edges."""
    from glocal_cli.synth.anny_look import Pattern

    def plain(p):
        return Pattern("plain", (np.full((1, 1, 3), p.base, np.float32),), p.size, p.base)

    return dataclasses.replace(look, top=plain(look.top), bottom=plain(look.bottom))


@pytest.mark.parametrize("plain", [False, True], ids=["patterned", "plain"])
def test_pair_flow_warps_the_source_onto_the_target(body, real, plain):
    """Exact geometry: the surface coordinates warped by the flow match the target's on visible pixels
    (sub-centimetre), and the warped picture matches the target (unlit, noise-free)."""
    from glocal_cli.body.render import interpolate
    from glocal_cli.synth.anny_people import (
        anny_pairs,
        identity_correspondence,
        render_anny_identity,
        sample_identity_look,
    )

    h, w = 128, 88
    pos_err, img_err, n_vis = [], [], 0
    for index in range(3):
        look = _plain(sample_identity_look(body, 2, index)) if plain else None
        ident = render_anny_identity(body, 2, index, 4, h, w, real, CLEAN, look=look)
        pairs = anny_pairs(4)
        corr = identity_correspondence(ident, pairs)
        coords = interpolate(ident.attributes[None, :, 1:4].expand(4, -1, -1), ident.faces, ident.bodies.raster)
        images = torch.from_numpy(ident.images).permute(0, 3, 1, 2).float()
        for p, (s, t) in enumerate(pairs):
            vis = corr.visibility[p] == VISIBLE
            on_body = ident.part[t] > 0
            assert np.array_equal(corr.visibility[p].numpy() > 0, on_body)
            assert set(np.unique(corr.visibility[p].numpy())) <= {0, VISIBLE, INVISIBLE}
            if int(vis.sum()) < 50:
                continue
            n_vis += int(vis.sum())
            warped = warp_image(coords[s:s + 1].permute(0, 3, 1, 2), corr.flow[p:p + 1])[0].permute(1, 2, 0)
            # interior pixels in both pictures (the bilinear sample does not straddle a part edge)
            gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            sx = (gx + corr.flow[p, ..., 0]).round().long().clamp(0, w - 1)
            sy = (gy + corr.flow[p, ..., 1]).round().long().clamp(0, h - 1)
            inner = vis & torch.from_numpy(_interior(ident.part[t])) & torch.from_numpy(_interior(ident.part[s]))[sy, sx]
            pos_err.append((warped - coords[t]).norm(dim=-1)[inner])
            warped_img = warp_image(images[s:s + 1], corr.flow[p:p + 1])[0]
            img_err.append((warped_img - images[t]).abs().mean(0)[inner])
    pos = torch.cat(pos_err)
    assert n_vis > 2000
    # metres on the template (measured: median 0.1 mm, 90% under 1 mm)
    assert float(pos.median()) < 0.002 and float(torch.quantile(pos, 0.9)) < 0.01
    # grey levels: plain clothes differ only by the resampling of garment edges and facial features
    # (measured ~1); patterns add the resampling of stripes and checks a few pixels wide (~7)
    assert float(torch.cat(img_err).mean()) < (3.0 if plain else 12.0)


def _interior(part: np.ndarray) -> np.ndarray:
    from scipy.ndimage import maximum_filter, minimum_filter

    return (maximum_filter(part, 3) == part) & (minimum_filter(part, 3) == part) & (part > 0)


def test_a_skirt_covers_both_legs_and_is_lower_clothes(body, real):
    from glocal_cli.synth.anny_mesh import SKIRT_PART
    from glocal_cli.synth.anny_people import render_anny_identity, sample_identity_look

    look = dataclasses.replace(sample_identity_look(body, 0, 0), bottom_kind="skirt", skirt_length=1.3,
                               skirt_flare=0.2, hair_style="short")
    orient, pose = _standing(body, 2)
    names = list(body.pose_joints)
    pose[1, names.index("hip_l"), 0], pose[1, names.index("hip_r"), 0] = -0.3, 0.25  # a stride
    ident = render_anny_identity(body, 0, 0, 2, 128, 88, real, CLEAN, look=look, poses=(orient, pose))
    for k in range(2):
        skirt = ident.part[k] == SKIRT_PART
        assert skirt.sum() > 200
        assert (ident.parsing[k][skirt] == LOWER).all()
        rows = np.flatnonzero(skirt.any(1))
        top, hem = rows.min(), rows.max()
        kp = ident.keypoints[k]
        knees = kp.xy[[9, 12]]
        assert top < knees[:, 1].min() < hem  # from the waist past the knees
        # no bare leg shows through the skirt: in every column, leg pixels only below the skirt's hem there
        legs = ident.parsing[k] == LEGS
        last = np.where(skirt.any(0), skirt.shape[0] - 1 - np.argmax(skirt[::-1], 0), -1)  # hem row per column
        rows_grid = np.arange(skirt.shape[0])[:, None]
        assert (legs & (rows_grid < last[None, :] - 1) & (rows_grid > top)).sum() <= 2
        # one piece over both legs: at knee height the skirt spans both knees
        row = skirt[int(round(float(knees[:, 1].mean())))]
        cols = np.flatnonzero(row)
        assert cols.min() <= knees[:, 0].min() and cols.max() >= knees[:, 0].max()
        assert (np.diff(cols) == 1).all()  # no gap between the legs


def test_children_are_smaller_than_adults(body, real):
    from glocal_cli.synth.anny_people import render_anny_identity, sample_identity_look

    samples = body.phenotype_samples.numpy()
    from glocal_cli.synth.anny_people import _heights

    heights = _heights(body)
    child = int(np.flatnonzero((samples[:, 1] < 0.2) & (heights > 1.0) & (heights < 1.3))[0])
    adult = int(np.flatnonzero((np.abs(samples[:, 1] - 0.5) < 0.05) & (heights > 1.65) & (heights < 1.8))[0])
    base = sample_identity_look(body, 0, 1)
    tall = []
    for i in (child, adult):
        look = dataclasses.replace(base, shape=body.phenotype_coeffs[i].numpy(), phenotype=samples[i])
        ident = render_anny_identity(body, 0, 1, 1, 128, 88, real, CLEAN, look=look, poses=_standing(body, 1))
        rows = np.flatnonzero(ident.parsing[0].any(1))
        tall.append(rows.max() - rows.min())
    assert tall[0] < 0.85 * tall[1]


def test_without_the_fitted_poses_it_samples_and_says_so(tmp_path, monkeypatch):
    from glocal_cli.data.datasets import PairDataset
    from glocal_cli.synth import anny_poses
    from glocal_cli.synth.dataset import prepare_synthetic

    monkeypatch.setattr(anny_poses, "REAL_POSES_FILE", tmp_path / "missing.npz")
    s = prepare_synthetic(tmp_path / "d", identities=1, poses_per_identity=4, size=(64, 44), workers=1,
                          show_progress=False, body="anny", test_fraction=0.0)
    assert any("pose sampler" in n for n in s.warnings) and s.pose_source == "none"
    ds = PairDataset(tmp_path / "d", "train", with_flow=True)
    assert len(ds) == 8 and ds.flow_from == "correspondence"
    item = ds[0]
    assert float(item["flow_body"].sum()) > 0 and float(item["flow_valid"].sum()) <= float(item["flow_body"].sum())
    maps = load_correspondence(next((tmp_path / "d" / "correspondence").glob("*.npz")))
    assert maps.flow.shape == (64, 44, 2)
    one = prepare_synthetic(tmp_path / "e", identities=1, poses_per_identity=4, size=(64, 44), workers=1,
                            show_progress=False, body="anny", test_fraction=0.0,
                            anny=AnnySynthConfig(pairs_per_image=1))
    assert one.counts["pairs-train"] == 4 == len(list((tmp_path / "e" / "correspondence").glob("*.npz")))
