"""Paste-back values: what lands where in the photo, not only the output size.

``fit_to_frame`` puts a photo into the model frame; ``FrameTransform.paste_back`` puts a frame-sized
result back into the photo's geometry. We paint a block into the frame and check that it lands on
the photo rectangle the documented mapping gives (``x_frame = x_src * scale_x + offset_x`` for pixel
edges), that everything away from it is unchanged, that the frame's padding never leaks into the
photo, and that a cropped photo keeps its own pixels outside the crop, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from glocal_cli.data.images import FrameTransform, fit_to_frame
from glocal_cli.data.keypoints import Pose

BLOCK = np.array([10, 200, 30], np.uint8)


def _photo(h: int, w: int) -> np.ndarray:
    """A smooth photo-like image (slow colour gradients) of ``h x w``."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(3 * xx), 0.5 + 0.4 * np.cos(2 * yy), 0.5 + 0.3 * np.sin(2 * (xx + yy))], 2)
    return np.round(img * 255).astype(np.uint8)


def _paint_block(frame: np.ndarray, t: FrameTransform) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A copy of ``frame`` with a block over the middle half of the content box; returns the block box."""
    x0, y0, x1, y1 = t.content_box()
    bx0, bx1 = x0 + (x1 - x0) // 4, x0 + 3 * (x1 - x0) // 4
    by0, by1 = y0 + (y1 - y0) // 4, y0 + 3 * (y1 - y0) // 4
    out = frame.copy()
    out[by0:by1, bx0:bx1] = BLOCK
    return out, (bx0, by0, bx1, by1)


def _to_source(t: FrameTransform, box: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    """Frame pixel-edge box -> photo pixel-edge box (the documented affine map, inverted)."""
    bx0, by0, bx1, by1 = box
    return ((bx0 - t.offset_x) / t.scale_x, (by0 - t.offset_y) / t.scale_y,
            (bx1 - t.offset_x) / t.scale_x, (by1 - t.offset_y) / t.scale_y)


def _masks(shape: tuple[int, int], box: tuple[float, float, float, float], margin: float) -> tuple[np.ndarray, ...]:
    """Pixels whose centre lies inside ``box`` shrunk by ``margin``, and outside it grown by ``margin``."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    x0, y0, x1, y1 = box
    inner = (xx > x0 + margin) & (xx < x1 - margin) & (yy > y0 + margin) & (yy < y1 - margin)
    outer = (xx < x0 - margin) | (xx > x1 + margin) | (yy < y0 - margin) | (yy > y1 + margin)
    return inner, outer


@pytest.mark.parametrize(
    ("photo", "frame"),
    [((300, 500), (256, 176)), ((90, 60), (256, 176)), ((1000, 200), (64, 44)), ((130, 97), (32, 24))],
    ids=["wide-down", "small-up", "tall-down", "odd-sizes"],
)
def test_a_block_in_the_frame_lands_on_the_mapped_photo_rectangle(photo: tuple[int, int],
                                                                   frame: tuple[int, int]) -> None:
    img = _photo(*photo)
    framed, t = fit_to_frame(img, *frame)
    painted, box = _paint_block(framed, t)
    back = t.paste_back(painted)
    plain = t.paste_back(framed)
    assert back.shape == img.shape and back.dtype == np.uint8
    # bicubic support: 2 frame pixels on either side, in photo pixels, plus one pixel of rounding
    margin = 2.0 / min(t.scale_x, t.scale_y) + 1.0
    inner, outer = _masks(img.shape[:2], _to_source(t, box), margin)
    assert inner.sum() > 0 and outer.sum() > 0
    assert np.abs(back[inner].astype(int) - BLOCK).max() <= 2
    assert np.array_equal(back[outer], plain[outer])
    # the block's edges (where the result turns closer to the block than to the unpainted paste) sit on
    # the mapped rectangle within half a frame pixel: an offset or scale off by one frame pixel fails here
    closer = np.abs(back.astype(int) - BLOCK).sum(2) < np.abs(back.astype(int) - plain).sum(2)
    ys, xs = np.nonzero(closer)
    found = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    tol = 0.5 / min(t.scale_x, t.scale_y) + 1.0
    assert np.abs(np.subtract(found, _to_source(t, box))).max() <= tol, (found, _to_source(t, box))
    # away from the block the pasted-back frame reproduces the photo (smooth content: small error)
    assert np.abs(plain.astype(int) - img).mean() < 2.0


def test_frame_padding_never_reaches_the_photo() -> None:
    img = _photo(300, 500)  # wide photo: padded above and below in a 256x176 frame
    framed, t = fit_to_frame(img, 256, 176)
    x0, y0, x1, y1 = t.content_box()
    assert (y0, y1) != (0, 256)  # there is padding to poison
    poisoned = framed.copy()
    poisoned[:y0] = (255, 0, 0)
    poisoned[y1:] = (0, 0, 255)
    assert np.array_equal(t.paste_back(poisoned), t.paste_back(framed))


def test_cropped_photo_keeps_its_pixels_outside_the_crop() -> None:
    img = _photo(200, 600)
    xy = np.stack([np.full(18, 470.0), np.linspace(30, 180, 18)], 1)  # a person near the right edge
    framed, t = fit_to_frame(img, 128, 64, pose=Pose(xy, np.ones(18, bool)))
    assert t.offset_x < 0  # the wide photo was cropped around the person
    painted, box = _paint_block(framed, t)
    back = t.paste_back(painted, img)
    crop = _to_source(t, t.content_box())
    margin = 2.0 / min(t.scale_x, t.scale_y) + 1.0
    _, outside_crop = _masks(img.shape[:2], crop, 1.0)
    assert outside_crop.sum() > 0.5 * img.shape[0] * img.shape[1]
    assert np.array_equal(back[outside_crop], img[outside_crop])  # the photo itself, bit for bit
    inner, _ = _masks(img.shape[:2], _to_source(t, box), margin)
    assert inner.sum() > 0 and np.abs(back[inner].astype(int) - BLOCK).max() <= 2
    # inside the crop but away from the block: the frame content, resized back (close to the photo)
    _, outside_block = _masks(img.shape[:2], _to_source(t, box), margin)
    in_crop, _ = _masks(img.shape[:2], crop, margin)
    keep = in_crop & outside_block
    assert keep.sum() > 0 and np.abs(back[keep].astype(int) - img[keep]).mean() < 3.0
