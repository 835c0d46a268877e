"""The mediapipe backend on real DeepFashion photos, scored against the community annotation.

Skips when mediapipe is not installed (``make install`` installs it). The floor is set below the
measured value (benchmarks/bench_keypoints.py: PCKh@0.5 0.919, PCKt@0.5 0.935 on all 116 photos;
0.904 / 0.922 on the first 30 used here) so that only a real regression fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from glocal_cli.data.backends.mediapipe_backend import mediapipe_status

REPO = Path(__file__).resolve().parents[2]
PCKH_FLOOR = 0.85
PCKT_FLOOR = 0.85

_OK, _REASON = mediapipe_status()
pytestmark = pytest.mark.skipif(not _OK, reason=f"mediapipe backend unavailable: {_REASON}")


@pytest.fixture(scope="module")
def bench(shared_data):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_keypoints
    finally:
        sys.path.pop(0)
    return bench_keypoints


def test_mediapipe_pck_on_real_samples(bench):
    result = bench.run("mediapipe", limit=30)
    assert result["images"] == 30
    assert result["PCKh@0.5"] >= PCKH_FLOOR, result
    assert result["PCKt@0.5"] >= PCKT_FLOOR, result
    assert result["no person"] <= 2


def test_mediapipe_finds_nobody_on_a_blank_image_and_keeps_frames():
    from glocal_cli.data.backends import make_backend

    with make_backend("mediapipe") as backend:
        assert backend.detect(np.full((256, 176, 3), 255, np.uint8)) is None
        assert "mediapipe" in backend.describe()


def test_prepare_folder_with_mediapipe(bench, tmp_path):
    from PIL import Image

    from glocal_cli.data.backends import BackendSpec
    from glocal_cli.data.layout import PreparedDataset
    from glocal_cli.prepare import PrepareOptions, prepare_folder

    photos = {n: im for n, im in bench.load_samples().items() if "front" in n}  # "flat" shots show no person
    photos = dict(list(photos.items())[:4])
    root = tmp_path / "photos"
    root.mkdir()
    for i, im in enumerate(photos.values()):
        canvas = np.full((300, 400, 3), 255, np.uint8)
        canvas[20:276, 200:376] = im
        Image.fromarray(canvas).save(root / f"p{i}.jpg")
    Image.new("RGB", (200, 300), "white").save(root / "blank.jpg")
    out = tmp_path / "out"
    result = prepare_folder(root, PrepareOptions(out=out, keypoints=BackendSpec("mediapipe"), workers=0))
    assert result.counts["images"] == 4
    assert result.problems.get("no_person") == 1
    kp = PreparedDataset(out).keypoints()
    for pose in kp.values():
        x0, _, x1, _ = pose.bbox()
        assert abs((x0 + x1) / 2 - 87.5) < 25


def test_small_crops_are_detected_at_their_own_pixels(shared_data):
    """Market-1501's 64x128 crops: upscaled with a margin before detection, keypoints back in the crop's pixels,
    close to the community's annotation."""
    import os

    from glocal_cli.data.backends.mediapipe_backend import MediapipeBackend
    from glocal_cli.data.images import load_image
    from glocal_cli.data.keypoints import read_keypoint_csv

    test = shared_data / "market1501" / "test"
    if not test.is_dir():
        pytest.skip("Market-1501 test photos not found")
    kp = read_keypoint_csv(shared_data / "market1501" / "market-annotation-test.csv")
    names = [n for n in sorted(os.listdir(test)) if n in kp][:24]
    backend = MediapipeBackend()
    found, errors = 0, []
    for n in names:
        pose = backend.detect(load_image(test / n))
        if pose is None:
            continue
        found += 1
        assert pose.xy[pose.visible].min() >= -0.5 and pose.xy[pose.visible, 0].max() <= 63.5
        both = pose.visible & kp[n].visible
        if both.any():
            errors.append(float(np.linalg.norm(pose.xy[both] - kp[n].xy[both], axis=1).mean()))
    assert found >= 0.7 * len(names), f"{found} of {len(names)} crops found"
    assert np.median(errors) < 6.0, errors
