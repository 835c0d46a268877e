"""Python API geometry: a downscaled source keeps its given pose (and parsing, target pose, mask) aligned,
and paste-back of a cropped source lands on the original photo."""

from __future__ import annotations

import numpy as np
import pytest

from glocal_cli.data.images import resize_image
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from tests.infer_helpers import save_tiny_weights, standing_pose


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    weights = save_tiny_weights(tmp_path_factory.mktemp("weights"))
    return GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0))


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_downscaled_source_keeps_its_given_pose_aligned(pipe):
    img = _photo(256, 192)
    pose = standing_pose(256, 192)
    target = standing_pose(256, 192)
    target[4, :2] = (20, 40)  # a raised right wrist, in the source photo's pixels
    labels = np.zeros((256, 192), np.uint8)
    labels[40:220, 60:130] = 3
    full = pipe.with_config(pose_frame="source").transfer(img, target, source_pose=pose, source_parsing=labels,
                                                          return_details=True)
    small = pipe.with_config(pose_frame="source", max_input_side=128).transfer(
        img, target, source_pose=pose, source_parsing=labels, return_details=True)
    assert any("downscaled" in n for n in small.notes)
    # the same person lands on the same frame pixels whether or not the photo was downscaled on load
    assert np.array_equal(full.source.pose.visible, small.source.pose.visible)
    assert np.abs(full.source.pose.xy - small.source.pose.xy).max() < 0.75
    assert np.abs(full.target_pose.xy - small.target_pose.xy).max() < 0.75
    assert np.abs(full.source.pose.xy[4] - small.source.pose.xy[4]).max() < 0.75
    assert not any("parsing resized" in n for n in small.notes)  # the parsing follows the photo silently


def test_downscaled_source_mask_at_photo_size_is_not_resized_with_a_warning(pipe):
    img = _photo(256, 192, seed=1)
    hole = np.zeros((256, 192), bool)
    hole[60:140, 50:120] = True
    small = pipe.with_config(max_input_side=128).inpaint(img, hole, source_pose=standing_pose(256, 192),
                                                         return_details=True)
    assert not any("resized" in n for n in small.notes)
    assert np.asarray(small.image).shape == (256, 192, 3)
    assert np.array_equal(small.image[~hole], img[~hole])


def test_paste_back_of_a_cropped_source_lands_on_the_original(pipe):
    img = _photo(128, 400, seed=2)  # a wide photo: the frame shows a crop around the person
    pose = standing_pose(64, 40)
    pose[:, 0] += 180
    pose[:, 1] += 32
    # the plain paste-back (infer.full_res_blend off): the frame result resized into the crop
    res = pipe.with_config(full_res_blend=False).transfer(img, pose, source_pose=pose, paste_back=True,
                                                          return_details=True)
    out = res.image
    t = res.source.transform
    assert t.offset_x < 0  # the photo was cropped to fit
    assert out.shape == img.shape
    # columns the crop leaves out keep the original pixels (not a white canvas)
    left = round(-t.offset_x / t.scale_x)
    right = round((t.frame_width - t.offset_x) / t.scale_x)
    assert left > 40 and right < 360
    assert np.array_equal(out[:, : left - 1], img[:, : left - 1])
    assert np.array_equal(out[:, right + 1:], img[:, right + 1:])
    # inside the crop: the frame result, resized back
    x0, y0, x1, y1 = t.content_box()
    back = resize_image(np.ascontiguousarray(res.frame_image[y0:y1, x0:x1]), 128, right - left, "bicubic")
    assert np.array_equal(out[:, left:right], back)
