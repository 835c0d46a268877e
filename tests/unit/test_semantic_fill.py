"""The semantic fill (``infer.inpaint_fill: semantic``): each class's part of a hole filled from that class's own
pixels, mixed by the class probabilities; and the pipeline never looks under a hole the user gave."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal_cli.config import resolve_config
from glocal_cli.data.keypoints import Pose
from glocal_cli.data.prefill import semantic_fill, telea_fill
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from glocal_cli.models.generator import GLocalModel

pytest.importorskip("cv2")

A, B = np.array([200, 40, 40]), np.array([30, 60, 210])


def _two_parts(h: int = 60, w: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A photo of two flat parts (left red, right blue, a little noise) and its one-hot probabilities."""
    rng = np.random.default_rng(seed)
    left = np.zeros((h, w), bool)
    left[:, : w // 2 + 3] = True
    img = np.where(left[..., None], A, B) + rng.normal(0, 3, (h, w, 3))
    probs = np.stack([left, ~left]).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), probs


def _band(h: int = 60, w: int = 80) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[10:50, w // 2 - 12: w // 2 + 16] = True  # straddles the boundary between the parts
    return hole


def _error(out: np.ndarray, img: np.ndarray, hole: np.ndarray) -> float:
    return float(np.abs(out[hole].astype(float) - img[hole].astype(float)).mean())


def test_each_part_of_the_hole_continues_its_own_part() -> None:
    img, probs = _two_parts()
    hole = _band()
    out = semantic_fill(img, hole, probs)
    assert np.array_equal(out[~hole], img[~hole])
    telea = telea_fill(img, hole)
    assert _error(out, img, hole) < 3.5  # the noise's own level (sigma 3)
    assert _error(telea, img, hole) > 2.5 * _error(out, img, hole)  # Telea mixes red and blue across the edge
    left = hole & (probs[0] > 0.5)
    assert np.abs(out[left].astype(float) - A).mean() < 10
    assert np.abs(out[hole & ~left].astype(float) - B).mean() < 10


def test_one_class_is_telea_and_probabilities_at_another_resolution_are_resampled() -> None:
    img, probs = _two_parts()
    hole = _band()
    one = np.ones((1, 15, 20), np.float32)
    assert np.array_equal(semantic_fill(img, hole, one, radius=4.0), telea_fill(img, hole, radius=4.0))
    k, h, w = probs.shape
    half = probs.reshape(k, h // 2, 2, w // 2, 2).mean((2, 4))  # the frame's probabilities are coarser
    out = semantic_fill(img, hole, half)
    assert np.array_equal(out[~hole], img[~hole])
    assert _error(out, img, hole) < 0.5 * _error(telea_fill(img, hole), img, hole)


def test_a_part_the_hole_removes_whole_falls_back_to_telea() -> None:
    img, probs = _two_parts()
    hole = np.zeros(img.shape[:2], bool)
    hole[:, img.shape[1] // 2 + 3:] = True  # every blue pixel is missing: nothing of its class to continue
    out = semantic_fill(img, hole, probs)
    assert np.array_equal(out, telea_fill(img, hole, radius=3.0))


def test_a_large_window_is_filled_at_a_reduced_size() -> None:
    img, probs = _two_parts(120, 160)
    hole = _band(120, 160)
    full = semantic_fill(img, hole, probs)
    small = semantic_fill(img, hole, probs, max_pixels=2000)  # the window is ~12,000 pixels
    assert np.array_equal(small[~hole], img[~hole])
    assert _error(small, img, hole) < 0.5 * _error(telea_fill(img, hole), img, hole)
    assert _error(small, full, hole) < 15


def test_bad_shapes_are_refused() -> None:
    img, probs = _two_parts()
    with pytest.raises(ValueError, match="hole is"):
        semantic_fill(img, np.zeros((5, 5), bool), probs)
    with pytest.raises(ValueError, match="probs"):
        semantic_fill(img, _band(), probs[0])


@pytest.mark.parametrize("fill", ["texture", "semantic", "telea"])
def test_the_pipeline_never_looks_under_a_given_hole(fill: str) -> None:
    """Two photos that differ only under the hole give the same inpainting: the parsing the fill is mixed by is
    estimated from the photo with the hole Telea-filled, not from what the hole covers."""
    cfg = resolve_config("tiny", ["model.inpaint_prefill=true"])
    torch.manual_seed(0)
    model = GLocalModel(cfg.model, cfg.data.height, cfg.data.width, cfg.data.num_classes).eval()
    pipe = GLocalPipeline(model, "cpu", config=InferConfig(workers=0, inpaint_fill=fill))
    h, w = 96, 64
    rng = np.random.default_rng(1)
    photo = np.clip(np.stack(np.mgrid[0:h, 0:w], -1).sum(-1, keepdims=True) * [2, 1, 3] % 255
                    + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[30:60, 15:45] = True
    other = photo.copy()
    other[hole] = rng.integers(0, 256, (int(hole.sum()), 3))
    xy = np.array([[32, 10], [32, 20], [22, 20], [18, 35], [16, 48], [42, 20], [46, 35], [48, 48], [26, 50],
                   [26, 70], [26, 88], [38, 50], [38, 70], [38, 88], [29, 8], [35, 8], [26, 9], [38, 9]], np.float32)
    pose = Pose(xy, np.ones(18, bool))
    a = np.asarray(pipe.inpaint(photo, hole, source_pose=pose))
    b = np.asarray(pipe.inpaint(other, hole, source_pose=pose))
    assert np.array_equal(a[~hole], photo[~hole]) and np.array_equal(b[~hole], other[~hole])
    assert np.array_equal(a, b)
