"""The visibility head is trained on real-like data (issue 13, item 1).

* without ground truth (``flow_supervision: self``) by the warp's photometric error;
* with per-pair correspondence files (the 3D body pipeline's ``correspondence/<t>__<s>.npz``) by
  their visible / invisible classes, flips included.

The correspondence files are written here in the body pipeline's format: the flow from SynthPeople's
exact surface maps, the classes made learnable within a few dozen steps of the ``tiny`` config
(32x24): a target's arms, legs and shoes are marked invisible, the rest of its body visible. (The true
SynthPeople visibility depends on the turn between the two views; the tiny net does not learn that in
a hundred steps, which is a matter of training length, not of the plumbing tested here.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal_cli.train.trainer import train
from tests.integration.conftest import make_synth

FAST = ["train.log_every=5", "train.val_every=0", "train.image_every=1000", "train.ckpt_every=1000",
        "train.lr=5.0e-3", "train.batch_size=4"]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    return make_synth(tmp_path_factory, "synthvis", identities=8, poses=4, seed=2, test_fraction=0.25)


@pytest.fixture(scope="module")
def body3d_data(synth_data: Path, tmp_path_factory) -> Path:
    """The SynthPeople set as a real dataset with 3D-body ground truth: no surface maps, one
    correspondence file per training pair (classes 0 background, 1 visible, 2 invisible: limbs)."""
    from glocal_cli.body.correspond import save_correspondence
    from glocal_cli.data.correspondence import load_surface, pair_correspondence
    from glocal_cli.data.layout import PreparedDataset
    from glocal_cli.data.parsing import read_parsing

    out = tmp_path_factory.mktemp("body3d") / "data"
    shutil.copytree(synth_data, out, ignore=shutil.ignore_patterns("surface"))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.update(has_surface=False, has_correspondence=True)
    (out / "correspondence").mkdir()
    (out / "manifest.json").write_text(json.dumps(manifest))
    ds = PreparedDataset(out)
    for target_source in sorted({(b, a) for a, b in ds.pairs("train")}):
        t, s = (load_surface(synth_data / "surface" / f"{Path(n).stem}.npz") for n in target_source)
        corr = pair_correspondence(t, s)
        labels = read_parsing(ds.parsing_path(target_source[0]))
        classes = np.where(labels > 0, np.where(np.isin(labels, (4, 6, 7)), 2, 1), 0).astype(np.uint8)
        save_correspondence(ds.correspondence_path(*target_source), corr.flow, classes)
    return out


def _visibility(run: Path, data: Path, split: str = "train", count: int = 12):
    """The trained flow net's visibility on ``count`` pairs, with the batch it saw."""
    from glocal_cli.config import resolve_config
    from glocal_cli.data.datasets import PairDataset, batch_to_device
    from glocal_cli.models.generator import GLocalModel

    model = GLocalModel.from_pretrained(run / "weights").eval()
    ds = PairDataset(data, split, with_flow=(data / "correspondence").is_dir(), limit=count)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    cfg = resolve_config("tiny")
    batch = batch_to_device(batch, torch.device("cpu"), cfg.data.scaled_sigma, 32, 24)
    with torch.no_grad():
        flows, vis = model.flow(batch["source_image"], batch["source_pose"], batch["target_pose"])
    vis = torch.nn.functional.interpolate(vis, size=(32, 24), mode="bilinear", align_corners=False)
    return vis, flows[-1], batch


def test_without_ground_truth_the_warp_error_trains_the_visibility(synth_data: Path, tmp_path: Path) -> None:
    """Self-supervised flow stage: the head leaves 0.5 and agrees with the photometric target it learns
    from (visible where the warp reproduces the target); its mean and spread are logged."""
    from glocal_cli.losses.flow import photometric_visibility_target

    train(synth_data, "tiny", [*FAST, "train.flow_supervision=self"], stage="flow", runs_dir=tmp_path,
          name="self", max_steps=40, device="cpu")
    vis, flow, batch = _visibility(tmp_path / "self", synth_data)
    target = photometric_visibility_target(batch["source_image"], batch["target_image"], flow, 0.2)
    assert 0.1 < target.mean() < 0.9  # the data has both: the head has something to learn
    on, off = vis[target > 0.5].mean(), vis[target < 0.5].mean()
    assert on - off > 0.2, (float(on), float(off))  # before: 0.5 everywhere (never trained)
    assert vis.std() > 0.1
    log = (tmp_path / "self" / "train.log").read_text()
    assert "visibility_self" in log and "visibility_mean" in log and "visibility_std" in log
    # the switch: 'none' leaves the head where it starts
    train(synth_data, "tiny", [*FAST, "train.flow_supervision=self", "train.visibility_self=none"], stage="flow",
          runs_dir=tmp_path, name="none", max_steps=5, device="cpu")
    vis_none, _, _ = _visibility(tmp_path / "none", synth_data)
    assert (vis_none - 0.5).abs().max() < 0.02


def test_correspondence_files_are_loaded_flipped_and_supervise_the_visibility(body3d_data: Path,
                                                                                tmp_path: Path) -> None:
    from glocal_cli.data.datasets import PairDataset
    from glocal_cli.data.layout import PreparedDataset

    ds = PreparedDataset(body3d_data)
    assert ds.has_correspondence and not ds.has_surface
    plain = PairDataset(ds, "train", with_flow=True)
    flipped = PairDataset(ds, "train", with_flow=True, flip_prob=1.0)
    item, mirror = plain[0], flipped[0]
    assert {"flow", "flow_valid", "flow_body"} <= set(item)
    assert item["flow_valid"].sum() > 0 and (item["flow_body"] >= item["flow_valid"]).all()
    assert torch.equal(mirror["flow_body"], item["flow_body"].flip(-1))
    assert torch.allclose(mirror["flow"][0], -item["flow"][0].flip(-1)) and torch.allclose(
        mirror["flow"][1], item["flow"][1].flip(-1))
    # pixel offsets -> grid_sample offsets, exactly: the file's flow over the width's half
    from glocal_cli.body.correspond import load_correspondence

    pair = plain.pairs[0]
    maps = load_correspondence(ds.correspondence_path(pair.target, pair.source))
    vis1 = torch.from_numpy(maps.visibility == 1)
    assert torch.allclose(item["flow"][0][vis1], torch.from_numpy(maps.flow[..., 0])[vis1] * 2 / 24)
    # a pair without a file has no ground truth (all zero), not an error
    path = ds.correspondence_path(plain.pairs[1].target, plain.pairs[1].source)
    path.rename(path.with_suffix(".off"))
    try:
        assert plain[1]["flow_body"].sum() == 0
    finally:
        path.with_suffix(".off").rename(path)

    train(body3d_data, "tiny", FAST, stage="flow", runs_dir=tmp_path, name="gt", max_steps=80, device="cpu")
    log = (tmp_path / "gt" / "train.log").read_text()
    assert "flow_supervised" in log and "visibility_self" in log  # auto: both, on real-like data
    vis, _, batch = _visibility(tmp_path / "gt", body3d_data)
    visible = batch["flow_valid"] > 0.5
    hidden = (batch["flow_body"] > 0.5) & ~visible
    assert hidden.sum() > 20 and visible.sum() > 20
    # before: the files were not read, the head never saw a label and stayed at 0.5 on both
    assert vis[visible].mean() - vis[hidden].mean() > 0.15, (float(vis[visible].mean()), float(vis[hidden].mean()))
