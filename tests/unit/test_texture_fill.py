"""The texture fill (``infer.inpaint_fill: texture``): the semantic fill plus the detail of patches copied, PatchMatch
style, from known pixels of the same class (``glocal_cli.data.patchmatch``)."""

from __future__ import annotations

import numpy as np
import pytest

from glocal_cli.data.patchmatch import synthesize_texture
from glocal_cli.data.prefill import semantic_fill, telea_fill, texture_fill

pytest.importorskip("cv2")


def _stripes(h: int = 96, w: int = 96, period: int = 10) -> np.ndarray:
    """Slanted black and white stripes (a shirt's print): no smooth fill can continue them."""
    yy, xx = np.mgrid[:h, :w]
    on = ((yy + xx // 3) // (period // 2)) % 2 == 0
    return np.repeat(np.where(on, 230, 30)[..., None], 3, 2).astype(np.uint8)


def _box(h: int = 96, w: int = 96) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[30:62, 30:70] = True
    return hole


def _error(out: np.ndarray, img: np.ndarray, hole: np.ndarray) -> float:
    return float(np.abs(out[hole].astype(float) - img[hole].astype(float)).mean())


def test_stripes_continue_into_the_hole() -> None:
    img, hole = _stripes(), _box()
    probs = np.ones((1, 12, 12), np.float32)
    telea = telea_fill(img, hole)
    semantic = semantic_fill(img, hole, probs)
    assert _error(telea, img, hole) > 60 and _error(semantic, img, hole) > 60  # a grey blur: stripes lost
    synth, textured = synthesize_texture(img.astype(np.float32), hole, np.zeros(hole.shape, int),
                                         semantic.astype(np.float32))
    assert textured[hole].all()
    assert _error(synth, img, hole) < 5  # the synthesis alone continues the stripes in phase
    # texture_fill adds only the synthesis's detail (above a Gaussian of sigma 2) to the grey semantic fill: at a
    # period of 10 pixels that is about half the stripes' contrast, in phase; by default half of that, fading out
    # over 8 px into the hole
    full = texture_fill(img, hole, probs, weight=1.0, taper=None)
    assert _error(full, img, hole) < 0.6 * _error(telea, img, hole)
    assert full[hole].std() > 0.5 * img[hole].std()
    default = texture_fill(img, hole, probs)
    rim = hole.copy()
    rim[34:58, 34:66] = False  # the hole's outer 4 pixels
    assert _error(default, img, rim) < 0.85 * _error(telea, img, rim)

    def corr(a: np.ndarray, where: np.ndarray) -> float:  # light where the stripes are light: the right phase
        return float(np.corrcoef(a[where][:, 0].astype(float), img[where][:, 0].astype(float))[0, 1])

    assert corr(full, hole) > 0.7 and corr(default, rim) > 0.45 and corr(telea, hole) < 0.3


def test_known_pixels_never_change_and_a_flat_part_stays_the_semantic_fill() -> None:
    img = _stripes()
    img[:, 48:] = (40, 90, 200)  # the right half is a flat blue part
    hole = _box()
    probs = np.zeros((2, 96, 96), np.float32)
    probs[0, :, :48], probs[1, :, 48:] = 1, 1
    out = texture_fill(img, hole, probs, weight=1.0, taper=None)
    assert np.array_equal(out[~hole], img[~hole])
    right = hole.copy()
    right[:, :52] = False  # away from the class edge: nothing to add to a flat colour
    semantic = semantic_fill(img, hole, probs)
    assert np.abs(out[right].astype(int) - semantic[right].astype(int)).max() <= 1


def test_a_class_never_copies_from_another_class() -> None:
    """Class 0 knows only colours without blue, class 1 only colours without red: every synthesised pixel of the
    hole is a vote of its own class's colours, whatever the start."""
    rng = np.random.default_rng(0)
    h, w = 80, 80
    left = np.zeros((h, w), bool)
    left[:, :40] = True
    img = np.zeros((h, w, 3), np.float32)
    img[left, 0] = rng.integers(50, 255, int(left.sum()))
    img[left, 1] = rng.integers(0, 255, int(left.sum()))
    img[~left, 1] = rng.integers(0, 255, int((~left).sum()))
    img[~left, 2] = rng.integers(50, 255, int((~left).sum()))
    hole = np.zeros((h, w), bool)
    hole[20:60, 22:58] = True  # straddles the classes' edge
    init = np.full((h, w, 3), 128, np.float32)  # a start that mixes everything
    synth, textured = synthesize_texture(img, hole, left.astype(int) ^ 1, init)
    assert textured[hole].all()
    assert np.all(synth[hole & left, 2] == 0) and np.all(synth[hole & ~left, 0] == 0)
    assert synth[hole & left, 0].min() >= 50 and synth[hole & ~left, 2].min() >= 50


def test_a_class_without_known_patches_keeps_the_semantic_fill() -> None:
    img = _stripes()
    probs = np.zeros((2, 96, 96), np.float32)
    probs[0, :, :48], probs[1, :, 48:] = 1, 1
    hole = np.zeros((96, 96), bool)
    hole[:, 45:] = True  # every pixel of class 1 is missing
    hole[20:40, 30:45] = True
    out = texture_fill(img, hole, probs, weight=1.0)
    semantic = semantic_fill(img, hole, probs)
    far = hole.copy()
    far[:, :56] = False
    assert np.array_equal(out[far], semantic[far])
    assert np.array_equal(out[~hole], img[~hole])


def test_deterministic_given_a_seed_and_a_large_window_is_synthesised_smaller() -> None:
    img, hole = _stripes(160, 160), _box(160, 160)
    probs = np.ones((1, 8, 8), np.float32)
    a = texture_fill(img, hole, probs, seed=3)
    assert np.array_equal(a, texture_fill(img, hole, probs, seed=3))
    small = texture_fill(img, hole, probs, weight=1.0, taper=None, max_pixels=4000)  # the window is ~5,000 pixels
    assert np.array_equal(small[~hole], img[~hole])
    assert _error(small, img, hole) < 0.7 * _error(telea_fill(img, hole), img, hole)


def _striped_person() -> tuple[np.ndarray, np.ndarray, object]:
    from glocal_cli.data.keypoints import Pose

    h, w = 96, 64
    photo = _stripes(h, w, period=8)
    hole = np.zeros((h, w), bool)
    hole[36:60, 20:44] = True
    xy = np.array([[32, 10], [32, 20], [22, 20], [18, 35], [16, 48], [42, 20], [46, 35], [48, 48], [26, 50],
                   [26, 70], [26, 88], [38, 50], [38, 70], [38, 88], [29, 8], [35, 8], [26, 9], [38, 9]], np.float32)
    return photo, hole, Pose(xy, np.ones(18, bool))


def test_texture_strength_and_depth_reach_the_fill_the_pipeline_writes() -> None:
    """``infer.texture_strength`` / ``texture_depth`` are the options of both texture fills the pipeline runs (the
    frame's prefill and the photo's fill): 0 gives the semantic fill's result exactly, 1 everywhere (depth 0) more of
    the stripes' contrast in the hole than the default; the known pixels never change."""
    import torch

    from glocal_cli.config import resolve_config
    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline
    from glocal_cli.models.generator import GLocalModel

    cfg = resolve_config("tiny", ["model.inpaint_prefill=true"])
    torch.manual_seed(0)
    model = GLocalModel(cfg.model, cfg.data.height, cfg.data.width, cfg.data.num_classes).eval()
    photo, hole, pose = _striped_person()
    parsing = np.full(hole.shape, 3, np.uint8)  # one striped garment (the tiny random model's own guess is noise)

    def run(**kw: object) -> np.ndarray:
        pipe = GLocalPipeline(model, "cpu", config=InferConfig(workers=0, **kw))
        out = np.asarray(pipe.inpaint(photo, hole, source_pose=pose, source_parsing=parsing))
        assert np.array_equal(out[~hole], photo[~hole])
        return out

    semantic = run(inpaint_fill="semantic")
    assert np.array_equal(run(inpaint_fill="texture", texture_strength=0.0), semantic)
    default, full = run(inpaint_fill="texture"), run(inpaint_fill="texture", texture_strength=1.0, texture_depth=0)
    spread = [float(x[hole].astype(float).std()) for x in (semantic, default, full)]
    assert spread[0] < spread[1] < spread[2], spread


@pytest.mark.parametrize("bad", [{"texture_strength": 1.5}, {"texture_strength": -0.1}, {"texture_depth": -1.0}])
def test_texture_settings_out_of_range_are_refused(bad: dict) -> None:
    from glocal_cli.infer.config import InferConfig

    with pytest.raises(ValueError, match=next(iter(bad))):
        InferConfig(**bad)


def test_the_detail_never_exceeds_the_class_texture_level() -> None:
    """``clip``: the detail added to a class is at most ``clip`` times the class's texture level next to the hole
    (the known stripes' level here); the clip binds (without it the detail goes further)."""
    from glocal_cli.data.prefill import TEXTURE_RING, TEXTURE_SIGMA, _texture_levels

    img, hole = _stripes(), _box()
    probs = np.ones((1, 12, 12), np.float32)
    level = _texture_levels(img.astype(np.float32), hole, np.zeros(hole.shape, int), np.array([0]), TEXTURE_SIGMA,
                            TEXTURE_RING)[0]
    assert 30 < level < 120  # stripes 200 levels apart, their detail above a sigma-2 blur
    semantic = semantic_fill(img, hole, probs).astype(int)
    for clip in (0.25, 1.0):
        out = texture_fill(img, hole, probs, weight=1.0, taper=None, clip=clip).astype(int)
        assert np.abs(out - semantic)[hole].max() <= clip * level + 1
    free = texture_fill(img, hole, probs, weight=1.0, taper=None, clip=None).astype(int)
    assert np.abs(free - semantic)[hole].max() > 0.25 * level + 5

