"""``infer.parsing_refine``: the colour guided filter (against an independent OpenCV/NumPy computation) and the
person outline snapped to the photo's edges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glocal_cli.infer.outline import guided_filter, parsing_labels, refine_radius, snap_person

cv2 = pytest.importorskip("cv2")


def _reference(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s colour guided filter with OpenCV box means (reflect-101 borders), solved per pixel in float64."""
    k = (2 * r + 1,) * 2
    mean = lambda x: cv2.blur(x, k)  # noqa: E731
    g, p = guide.astype(np.float64), src.astype(np.float64)
    mg, mp = np.stack([mean(g[..., c]) for c in range(3)], -1), mean(p)
    cov = np.stack([mean(g[..., c] * p) - mg[..., c] * mp for c in range(3)], -1)
    var = np.empty(g.shape[:2] + (3, 3))
    for a in range(3):
        for b in range(3):
            var[..., a, b] = mean(g[..., a] * g[..., b]) - mg[..., a] * mg[..., b]
    coef = np.linalg.solve(var + eps * np.eye(3), cov[..., None])[..., 0]
    offset = mp - (coef * mg).sum(-1)
    return (np.stack([mean(coef[..., c]) for c in range(3)], -1) * g).sum(-1) + mean(offset)


def test_guided_filter_matches_the_reference() -> None:
    rng = np.random.default_rng(0)
    guide = rng.random((2, 20, 16, 3)).astype(np.float32)
    src = rng.random((2, 20, 16)).astype(np.float32)
    got = guided_filter(torch.from_numpy(guide).permute(0, 3, 1, 2), torch.from_numpy(src)[:, None], 2, 1e-3)
    for i in range(2):
        np.testing.assert_allclose(got[i, 0].numpy(), _reference(guide[i], src[i], 2, 1e-3), atol=2e-4)


def test_an_affine_function_of_the_guide_passes_through() -> None:
    g = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    p = 0.3 * g[:, :1] - 0.2 * g[:, 2:] + 0.4
    torch.testing.assert_close(guided_filter(g, p, 3, 1e-8), p, atol=1e-3, rtol=0)


def test_the_outline_moves_onto_the_photos_edge() -> None:
    """A person whose true edge is at column 20 of the photo, estimated with a soft edge 2 pixels off."""
    h, w = 32, 40
    image = -torch.ones(1, 3, h, w)
    image[..., 20:] = torch.tensor([0.8, 0.2, -0.4])[:, None, None]  # the person (right) on a dark backdrop
    x = torch.arange(w, dtype=torch.float32)
    person = torch.sigmoid((x - 17.6) / 1.0).expand(1, 1, h, w)  # the estimate puts the edge 2 pixels early
    probs = torch.cat([1 - person, person * 0.7, person * 0.3], 1)
    truth = (x >= 20).expand(h, w)
    before = parsing_labels(probs)[0] > 0
    after_probs = snap_person(probs, image, refine_radius(256))  # a 9x9 window sees the edge
    after = parsing_labels(after_probs, person_first=True)[0] > 0
    iou = lambda a: float((a & truth).sum() / (a | truth).sum())  # noqa: E731
    assert iou(before) < 0.92, iou(before)
    assert iou(after) > 0.97, iou(after)
    torch.testing.assert_close(after_probs.sum(1), torch.ones(1, h, w))
    assert bool((parsing_labels(after_probs, person_first=True)[0][after] == 1).all())  # the top person class


def test_person_first_labels() -> None:
    probs = torch.tensor([0.4, 0.35, 0.25])[None, :, None, None]  # background most probable, but under one half
    assert int(parsing_labels(probs)[0, 0, 0]) == 0
    assert int(parsing_labels(probs, person_first=True)[0, 0, 0]) == 1
    assert refine_radius(128) == 2 and refine_radius(256) == 4


def test_the_pipeline_refines_its_estimate(tmp_path) -> None:
    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline
    from tests.infer_helpers import save_tiny_weights

    weights = save_tiny_weights(tmp_path / "w")
    plain = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0))
    refined = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0, parsing_refine=True))
    h, w = plain.frame_hw
    g = torch.Generator().manual_seed(0)
    image, pose = torch.rand(2, 3, h, w, generator=g) * 2 - 1, torch.rand(2, 18, h, w, generator=g)
    with torch.inference_mode():
        expected = snap_person(plain.source_parsing_probs(image, pose), image, refine_radius(h))
        torch.testing.assert_close(refined.source_parsing_probs(image, pose), expected)
        labels = refined.estimate_source_parsing(image, pose).argmax(1)
    assert torch.equal(labels, parsing_labels(expected, person_first=True))
    assert not torch.equal(expected, plain.source_parsing_probs(image, pose))
