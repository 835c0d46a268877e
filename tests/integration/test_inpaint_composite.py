"""Inpainting keeps every known pixel: the model's fill goes into the holes only, at the photo's own size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from glocal_cli.data.images import fit_to_frame, load_image, resize_image
from glocal_cli.data.keypoints import read_pose_file
from glocal_cli.infer.batch import JobSpec, run_job
from glocal_cli.infer.composite import feather_fill
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from tests.infer_helpers import copy_examples, save_tiny_weights, standing_pose


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    weights = save_tiny_weights(tmp_path_factory.mktemp("weights"))
    return GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(batch_size=2, workers=0))


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def _far_from_known(hole: np.ndarray, d: int) -> np.ndarray:
    """Hole pixels more than ``d`` pixels (chessboard) away from every known pixel."""
    import cv2

    return cv2.erode(hole.astype(np.uint8), np.ones((2 * d + 1, 2 * d + 1), np.uint8),
                     borderType=cv2.BORDER_REPLICATE).astype(bool)


def test_api_keeps_known_pixels_and_fills_holes_from_the_model(pipe):
    img = _photo(64, 48)  # exactly twice the 32x24 frame: the frame shows the whole photo
    hole = np.zeros((64, 48), bool)
    hole[16:44, 8:36] = True
    pose = standing_pose(64, 48)
    res = pipe.inpaint(img, hole, source_pose=pose, return_details=True)
    out = res.image
    assert out.shape == (64, 48, 3)  # the source's own size, not the 32x24 model frame
    assert np.array_equal(out[~hole], img[~hole])  # every known pixel identical
    model_fill = resize_image(res.frame_image, 64, 48, "bicubic")
    deep = _far_from_known(hole, 5)  # beyond the 2-frame-pixel (= 4 photo pixels) feather
    assert deep.sum() > 100 and np.array_equal(out[deep], model_fill[deep])
    assert not np.array_equal(out[hole], img[hole])

    hard = pipe.with_config(inpaint_feather=0.0).inpaint(img, hole, source_pose=pose)
    assert np.array_equal(hard[hole], model_fill[hole]) and np.array_equal(hard[~hole], img[~hole])

    frame = pipe.inpaint(img, hole, source_pose=pose, paste_back=False)
    assert frame.shape == (32, 24, 3) and np.array_equal(frame, res.frame_image)


def test_api_irregular_holes_map_back_to_the_photo(pipe):
    img = _photo(96, 72, seed=3)
    res = pipe.inpaint(Image.fromarray(img), "irregular", source_pose=standing_pose(96, 72), return_details=True)
    out = np.asarray(res.image)
    assert out.shape == (96, 72, 3)
    changed = (out != img).any(axis=2)
    assert changed.any() and changed.mean() < 0.9  # the holes changed, the rest is the photo


def test_feather_eases_the_seam_inside_the_hole_only():
    orig = np.full((20, 20, 3), 100, np.uint8)
    hole = np.zeros((20, 20), bool)
    hole[5:15, 5:15] = True
    orig[hole] = 0  # the hole's own content (an object to remove, or a benchmark's ground truth)
    fill = np.full((20, 20, 3), 160, np.uint8)
    out = feather_fill(orig, fill, hole, feather=4.0)
    assert np.array_equal(out[~hole], orig[~hole])
    row = out[10, 5:10, 0].astype(int)  # from the hole's border inwards
    assert row[0] < 130 and (np.diff(row) >= 0).all() and out[10, 9, 0] == 160
    other = orig.copy()
    other[hole] = 255
    assert np.array_equal(feather_fill(other, fill, hole, 4.0), out)  # the hole's content is never used
    hard = feather_fill(orig, fill, hole, 0.0)
    assert (hard[hole] == 160).all() and np.array_equal(hard[~hole], orig[~hole])


def test_cli_job_writes_the_photo_at_its_size_with_known_pixels_kept(tmp_path, pipe):
    src, _ = copy_examples(tmp_path, sources=1, poses=0)
    photo = load_image(src / "person_00.png")
    h, w = photo.shape[:2]
    hole = np.zeros((h, w), bool)
    hole[60:160, 40:130] = True
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "hole.png")
    cfg = InferConfig(workers=0, inpaint_feather=0.0)
    report = run_job(pipe, JobSpec("inpaint", src, tmp_path / "a", mask=str(tmp_path / "hole.png")), cfg,
                     show_progress=False)
    assert report.done == 1
    out = load_image(tmp_path / "a" / "person_00.png")
    assert out.shape == photo.shape and np.array_equal(out[~hole], photo[~hole])
    masked = load_image(tmp_path / "a" / "person_00_masked.png")
    assert masked.shape == photo.shape and (masked[hole] == 255).all()

    frame_cfg = InferConfig(workers=0, inpaint_output="frame")
    run_job(pipe, JobSpec("inpaint", src, tmp_path / "b", mask=str(tmp_path / "hole.png")), frame_cfg,
            show_progress=False)
    frame = load_image(tmp_path / "b" / "person_00.png")
    assert frame.shape == (32, 24, 3)
    # the holes hold the frame result resized back over the region the frame shows
    pose, _ = read_pose_file(src / "person_00.json")
    _, t = fit_to_frame(photo, 32, 24, pose=pose, margin=frame_cfg.fit_margin)
    x0, y0, x1, y1 = t.content_box()
    assert (t.resized_height, t.resized_width) == (y1 - y0, x1 - x0)  # whole photo in view
    fill = resize_image(np.ascontiguousarray(frame[y0:y1, x0:x1]), h, w, "bicubic")
    assert np.array_equal(out[hole], fill[hole])


def test_cli_job_irregular_mask_keeps_known_pixels(tmp_path, pipe):
    src, _ = copy_examples(tmp_path, sources=1, poses=0)
    photo = load_image(src / "person_00.png")
    run_job(pipe, JobSpec("inpaint", src, tmp_path / "a", mask="irregular"), InferConfig(workers=0),
            show_progress=False)
    out = load_image(tmp_path / "a" / "person_00.png")
    masked = load_image(tmp_path / "a" / "person_00_masked.png")
    hole = (masked == 255).all(axis=2) & ~(photo == 255).all(axis=2)
    assert out.shape == photo.shape and hole.any()
    known = ~(masked == 255).all(axis=2)
    assert np.array_equal(out[known], photo[known])
