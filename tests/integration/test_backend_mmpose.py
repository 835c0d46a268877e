"""The mmpose backend: a real RTMPose at random weights (shapes, frames and the 17 -> 18 mapping).

mmpose's package imports ``mmcv.ops``, which only the full mmcv provides; with ``mmcv-lite``
(what ``make mmpose`` installs) this test registers a placeholder ``mmcv.ops`` package first, in
``sys.modules`` only for this process: the top-down RTMPose path never calls a compiled op. Skips
when mmpose is not installed. Random weights: accuracy is not tested here.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import numpy as np
import pytest


class _Placeholder(types.ModuleType):
    """``mmcv.ops`` stand-in: any attribute is a class or function that fails when used."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"{self.__name__}.{name} is a test placeholder (mmcv-lite has no compiled ops)")

        return type(name, (), {"__init__": unavailable}) if name[:1].isupper() else unavailable


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "mmcv.ops" or fullname.startswith("mmcv.ops."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _Placeholder(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        return None


def _install_mmcv_ops_placeholder() -> None:
    if importlib.util.find_spec("mmcv") is None:
        return
    try:
        import mmcv.ops  # noqa: F401 - the full mmcv needs no placeholder
    except ImportError:
        sys.modules.pop("mmcv.ops", None)
        sys.meta_path.insert(0, _PlaceholderFinder())


if importlib.util.find_spec("mmpose") is None:
    pytest.skip("mmpose is not installed (make mmpose)", allow_module_level=True)
_install_mmcv_ops_placeholder()

from glocal_cli.data.backends.mmpose_backend import MmposeBackend, _resolve_alias, mmpose_status  # noqa: E402
from glocal_cli.data.keypoints import COCO17_NAMES, KEYPOINT_NAMES  # noqa: E402

_OK, _REASON = mmpose_status()
pytestmark = pytest.mark.skipif(not _OK, reason=f"mmpose unavailable: {_REASON}")

ALIAS = "rtmpose-t_8xb256-420e_coco-256x192"


@pytest.fixture(scope="module")
def backend():
    import torch

    torch.manual_seed(0)  # the random weights, fixed (module fixtures run before the per-test seeding)
    config, url = _resolve_alias(ALIAS)
    assert config.endswith(".py") and url and url.startswith("https://")
    with MmposeBackend(config, checkpoint=None, random_weights=True, min_score=-1e9, batch_size=4) as b:
        yield b


def test_shapes_frames_and_17_to_18_mapping(backend):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (256, 176, 3), dtype=np.uint8), rng.integers(0, 255, (128, 64, 3), dtype=np.uint8),
              rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)]
    raw = backend.predict_coco17(images)
    poses = backend.detect_batch(images)
    assert len(raw) == len(poses) == 3
    found = 0
    for img, (xy17, sc17), pose in zip(images, raw, poses):
        h, w = img.shape[:2]
        assert xy17.shape == (17, 2) and sc17.shape == (17,)
        inside = (xy17[:, 0] >= -0.5) & (xy17[:, 0] < w - 0.5) & (xy17[:, 1] >= -0.5) & (xy17[:, 1] < h - 0.5)
        if pose is None:  # random weights may put every point in the box's margin, outside the image
            assert not inside.any()
            continue
        found += 1
        assert len(pose) == 18 and pose.xy.shape == (18, 2)
        for i, name in enumerate(KEYPOINT_NAMES):
            if name == "neck":
                continue
            j = COCO17_NAMES.index(name)
            assert pose.visible[i] == inside[j]  # in the image's own pixels, clipped to it
            if pose.visible[i]:
                assert np.allclose(pose.xy[i], xy17[j], atol=1e-3)
        # the neck is the midpoint of the two shoulders (then clipped to the image like every point)
        mid = (xy17[COCO17_NAMES.index("r_shoulder")] + xy17[COCO17_NAMES.index("l_shoulder")]) / 2
        mid_inside = -0.5 <= mid[0] < w - 0.5 and -0.5 <= mid[1] < h - 0.5
        assert pose.visible[1] == mid_inside
        if pose.visible[1]:
            assert np.allclose(pose.xy[1], mid, atol=1e-3)
    assert found >= 1
    # batching gives the same answer as one image at a time
    single = backend.predict_coco17(images[1:2])[0]
    assert np.allclose(single[0], raw[1][0], atol=1e-3) and np.allclose(single[1], raw[1][1], atol=1e-4)


def test_checkpoint_is_required_without_random_weights():
    from glocal_cli.errors import WeightsError

    config, _ = _resolve_alias(ALIAS)
    with pytest.raises(WeightsError, match="no checkpoint"):
        MmposeBackend(config, checkpoint=None)
    with pytest.raises(WeightsError, match="not found"):
        MmposeBackend(config, checkpoint="/nonexistent/weights.pth")
    with pytest.raises(WeightsError, match="not a config file"):
        _resolve_alias("no-such-model-alias")
