"""GLocalPipeline (Python API) and folder jobs on a tiny random model saved with save_pretrained."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.errors import InputError, WeightsError
from glocal_cli.infer.batch import JobSpec, run_job
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from tests.infer_helpers import copy_examples, openpose_json, save_tiny_weights, standing_pose


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def pipe(weights):
    return GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(batch_size=4, workers=0))


def test_transfer_returns_the_input_kind(pipe):
    pose = standing_pose(120, 80)
    img = (np.random.default_rng(0).random((120, 80, 3)) * 255).astype(np.uint8)
    out = pipe.transfer(Image.fromarray(img), pose, source_pose=pose)  # default: the photo's own size
    assert isinstance(out, Image.Image) and out.size == (80, 120)
    frame = pipe.transfer(Image.fromarray(img), pose, source_pose=pose, paste_back=False)
    assert isinstance(frame, Image.Image) and frame.size == (24, 32)
    arr = pipe.transfer(img, pose, source_pose=pose, paste_back=True)
    assert isinstance(arr, np.ndarray) and arr.shape == (120, 80, 3) and arr.dtype == np.uint8
    t = pipe.transfer(torch.rand(3, 32, 24) * 2 - 1, standing_pose(32, 24), source_pose=standing_pose(32, 24))
    assert isinstance(t, torch.Tensor) and t.shape == (3, 32, 24) and t.abs().max() <= 1
    details = pipe.transfer(img, pose, source_pose=pose, return_details=True)
    assert details.parsing.shape == (32, 24) and details.parsing.max() < 8


def test_batched_equals_single_and_is_deterministic(pipe):
    rng = np.random.default_rng(1)
    imgs = [(rng.random((64, 48, 3)) * 255).astype(np.uint8) for _ in range(3)]
    pose = standing_pose(64, 48)
    many = pipe.transfer_batch(imgs, [pose] * 3, [pose] * 3)
    one = pipe.transfer(imgs[1], pose, source_pose=pose)
    assert np.abs(many[1].astype(int) - one.astype(int)).max() <= 1


def test_inpaint_irregular_semantic_and_array_mask(pipe):
    pose = standing_pose(64, 48)
    img = np.full((64, 48, 3), 128, np.uint8)
    r = pipe.inpaint(img, "irregular", source_pose=pose, return_details=True)
    assert r.masked is not None and (r.masked == 255).any()
    labels = np.zeros((64, 48), np.uint8)
    labels[20:40] = 2
    r2 = pipe.inpaint(img, "semantic", source_pose=pose, source_parsing=labels, return_details=True)
    assert r2.frame_image.shape == (32, 24, 3)
    soft = np.zeros((32, 24), np.float32)
    soft[:10] = 0.7  # another size and not binary: resized and thresholded, both warned
    r3 = pipe.inpaint(img, soft, source_pose=pose, return_details=True)
    assert any("not binary" in n for n in r3.notes) and any("resized" in n for n in r3.notes)


def test_bad_weights_clear_errors(tmp_path, weights):
    import json
    import shutil

    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel", "sample_size": 64}))
    with pytest.raises(WeightsError, match="not a GLocal weights folder"):
        GLocalPipeline.from_pretrained(other)
    cut = tmp_path / "cut"
    shutil.copytree(weights, cut)
    f = cut / "generator" / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(WeightsError, match="generator"):
        GLocalPipeline.from_pretrained(cut)


def test_folder_job_all_combinations_resume_and_grid(tmp_path, pipe):
    src, poses = copy_examples(tmp_path, sources=2, poses=2)
    cfg = InferConfig(batch_size=3, workers=0, grid=True, save_parsing=True, save_flow=True)
    out = tmp_path / "out"
    report = run_job(pipe, JobSpec("transfer", src, out, pose=poses), cfg, show_progress=False)
    assert (report.done, report.failed, report.total) == (4, 0, 4)
    names = sorted(p.name for p in out.glob("*_to_*.png") if p.stem.count("_") == 4)
    assert names == ["person_00_to_pose_00.png", "person_00_to_pose_01.png",
                     "person_01_to_pose_00.png", "person_01_to_pose_01.png"]
    grid = np.asarray(Image.open(out / "person_00_to_pose_00_grid.png"))
    assert grid.shape == (32, 24 * 5, 3)
    assert (out / "person_00_to_pose_00_flow.png").is_file()
    again = run_job(pipe, JobSpec("transfer", src, out, pose=poses), cfg, show_progress=False)
    assert (again.done, again.skipped) == (0, 4)
    forced = run_job(pipe, JobSpec("transfer", src, out, pose=poses, overwrite=True), cfg, show_progress=False)
    assert forced.done == 4


def test_folder_job_pairs_failures_and_video(tmp_path, pipe):
    src, poses = copy_examples(tmp_path, sources=2, poses=3)
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    openpose_json(poses / "pose_empty.json", [])
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("from,to\nperson_00.png,pose_00\nbroken.png,pose_01\nperson_01.png,pose_empty\n"
                     "person_01.png,pose_02.json\n")
    cfg = InferConfig(batch_size=2, workers=1)
    report = run_job(pipe, JobSpec("transfer", src, tmp_path / "out", pose=poses, pairs=pairs), cfg,
                     show_progress=False)
    assert (report.total, report.done, report.failed) == (4, 2, 2)
    rows = list(csv.DictReader((tmp_path / "out" / "failures.csv").open()))
    assert {r["source"].split("/")[-1] for r in rows} == {"broken.png", "person_01.png"}
    assert any("no people" in r["error"] for r in rows)
    video = tmp_path / "anim.gif"
    report = run_job(pipe, JobSpec("transfer", src / "person_00.png", tmp_path / "vid", pose=poses,
                                   video=video), InferConfig(workers=0), show_progress=False)
    assert video.is_file() and Image.open(video).n_frames == 3  # pose_empty fails, three frames remain
    assert report.failed == 1


def test_folder_job_inpaint_and_sharding(tmp_path, pipe, monkeypatch):
    src, _ = copy_examples(tmp_path, sources=3, poses=0)
    cfg = InferConfig(workers=0, mask_ratio_bin=3)
    report = run_job(pipe, JobSpec("inpaint", src, tmp_path / "a", mask="irregular"), cfg, show_progress=False)
    assert report.done == 3 and (tmp_path / "a" / "person_02_masked.png").is_file()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    shard = run_job(pipe, JobSpec("inpaint", src, tmp_path / "b", mask="semantic"), cfg, show_progress=False)
    assert shard.done == 1 and [p.name for p in (tmp_path / "b").glob("*_masked.png")] == ["person_01_masked.png"]


def test_output_folder_that_is_a_file(tmp_path, pipe):
    src, poses = copy_examples(tmp_path, sources=1, poses=1)
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(InputError, match="is an existing file"):
        run_job(pipe, JobSpec("transfer", src, target, pose=poses), InferConfig(workers=0), show_progress=False)
