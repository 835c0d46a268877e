"""Robust image loading, atomic saving, resizing and the invertible fit to the model frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from glocal_cli.data.images import (
    FrameTransform,
    fit_to_frame,
    load_image,
    pil_to_rgb,
    resize_image,
    save_image,
)
from glocal_cli.data.keypoints import Pose
from glocal_cli.errors import InputError


def _gradient(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack(
        [xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 255 // (h + w)], 2
    ).astype(np.uint8)


# ------------------------------------------------------------------------------------------ loading


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :3, 3] = 255  # left half opaque red-ish, right half fully transparent
    rgba[0, 0, 3] = 128
    Image.fromarray(rgba).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    assert tuple(img[1, 1]) == (200, 0, 0) and tuple(img[1, 5]) == (255, 255, 255)
    assert tuple(img[0, 0]) == (227, 127, 127)  # alpha 128: 200 * 128/255 + 255 * 127/255
    np.testing.assert_array_equal(pil_to_rgb(Image.fromarray(rgba)), img)


def test_gray_palette_and_16_bit(tmp_path):
    gray = (np.arange(48).reshape(6, 8) * 5).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    assert img.shape == (6, 8, 3) and (img == gray[..., None]).all()

    pal = Image.fromarray(_gradient(6, 8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), np.asarray(pal.convert("RGB")))

    transparent = Image.new("P", (4, 4))
    transparent.putpalette([0, 0, 0, 10, 20, 30])
    transparent.putdata([0, 1] * 8)
    transparent.save(tmp_path / "t.png", transparency=0)
    t = load_image(tmp_path / "t.png")
    assert tuple(t[0, 0]) == (255, 255, 255) and tuple(t[0, 1]) == (10, 20, 30)

    g16 = (np.arange(48).reshape(6, 8) * 1300).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    img16 = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(img16[..., 0], np.rint(g16 / 257).astype(np.uint8))

    rgb16 = (np.random.default_rng(0).integers(0, 65536, (5, 7, 3))).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    img = load_image(tmp_path / "c16.png")
    assert img.dtype == np.uint8
    assert np.abs(img.astype(int) - rgb16 / 257).max() <= 1.0


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((10, 20, 3), np.uint8)
    stored[:, :10] = (255, 0, 0)  # left half red
    stored[:, 10:] = (0, 0, 255)
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    img = load_image(tmp_path / "rot.jpg")
    assert img.shape == (20, 10, 3)
    assert img[2, 5, 0] > 200 and img[2, 5, 2] < 60  # the stored left half is now on top
    assert img[17, 5, 2] > 200 and img[17, 5, 0] < 60


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # pure red in CMYK
    img = load_image(tmp_path / "cmyk.jpg")
    assert img.shape == (6, 8, 3)
    assert img[3, 4, 0] > 230 and img[3, 4, 1] < 30 and img[3, 4, 2] < 30


def test_unreadable_truncated_and_missing_files(tmp_path):
    save_image(tmp_path / "ok.jpg", _gradient(64, 64))
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.jpg: cannot read image"):
        load_image(tmp_path / "cut.jpg")
    save_image(tmp_path / "ok.png", _gradient(64, 64))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) - 40])
    with pytest.raises(InputError, match="cut.png"):
        load_image(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InputError, match="text.png: not a readable image"):
        load_image(tmp_path / "text.png")
    with pytest.raises(InputError, match="absent.png: image file not found"):
        load_image(tmp_path / "absent.png")


def test_save_image_formats_and_atomicity(tmp_path):
    img = _gradient(16, 12)
    save_image(tmp_path / "a.png", img)
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), img)
    save_image(tmp_path / "a.jpeg", img)
    assert np.abs(load_image(tmp_path / "a.jpeg").astype(int) - img).mean() < 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpeg", "a.png"]  # no temporary files left
    with pytest.raises(ValueError, match="unsupported image suffix"):
        save_image(tmp_path / "a.gif2", img)
    with pytest.raises(ValueError, match="uint8"):
        save_image(tmp_path / "f.png", img.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpeg", "a.png"]


def test_resize_image():
    img = _gradient(40, 30)
    out = resize_image(img, 20, 15, "area")
    assert out.shape == (20, 15, 3) and out.dtype == np.uint8
    labels = np.random.default_rng(0).integers(0, 8, (40, 30)).astype(np.uint8)
    assert set(np.unique(resize_image(labels, 13, 7, "nearest"))) <= set(range(8))
    with pytest.raises(ValueError, match="unknown resample"):
        resize_image(img, 2, 2, "cubic")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------- fit to frame


def test_fit_to_frame_pads_with_white_and_is_invertible():
    img = _gradient(300, 500)  # wide: padded above and below
    frame, t = fit_to_frame(img, 256, 176)
    assert frame.shape == (256, 176, 3)
    assert (t.resized_height, t.resized_width) == (106, 176) and t.offset_x == 0 and t.offset_y == 75
    assert (frame[:75] == 255).all() and (frame[75 + 106 :] == 255).all()
    back = t.paste_back(frame)
    assert back.shape == img.shape
    assert np.abs(back.astype(int) - img).mean() < 2.0
    assert FrameTransform.from_dict(t.to_dict()) == t
    # keypoints: source -> frame -> source is exact, and they land on the same content
    pose = Pose(np.array([[10.0, 20.0], [499.0, 299.0]] + [[250.0, 150.0]] * 16), np.ones(18, bool))
    in_frame = t.apply_to_pose(pose)
    assert in_frame.num_visible == 18
    assert t.invert_pose(in_frame).allclose(pose, atol=1e-3)
    x, y = np.rint(in_frame.xy[0]).astype(int)
    assert np.abs(frame[y, x].astype(int) - img[20, 10]).max() <= 6


def test_fit_to_frame_tall_and_huge_images():
    tall = _gradient(1000, 200)
    frame, t = fit_to_frame(tall, 64, 44)
    assert t.resized_height == 64 and t.offset_y == 0 and t.offset_x == (44 - t.resized_width) // 2
    assert (frame[:, : t.offset_x] == 255).all()
    huge = np.zeros((6000, 4000, 3), np.uint8)
    huge[:3000] = 200
    frame, t = fit_to_frame(huge, 256, 176)
    assert frame.shape == (256, 176, 3) and abs(t.scale - 256 / 6000) < 1e-3
    assert t.paste_back(frame).shape == huge.shape


def test_fit_to_frame_with_pose_centres_and_crops_around_the_person():
    img = np.full((200, 600, 3), 255, np.uint8)
    img[20:190, 440:500] = (30, 60, 90)  # a "person" near the right edge of a wide photo
    xy = np.stack([np.full(18, 470.0), np.linspace(30, 180, 18)], 1)
    pose = Pose(xy, np.ones(18, bool))
    frame, t = fit_to_frame(img, 128, 64, pose=pose)
    # the photo fills the frame height and is cropped around the person
    assert t.resized_height == 128 and t.offset_x < 0
    in_frame = t.apply_to_pose(pose)
    assert in_frame.num_visible == 18
    assert abs(in_frame.xy[:, 0].mean() - 31.5) <= 1.0
    assert (frame[64, 28:36] == (30, 60, 90)).all()
    # inverse keypoints and paste-back with the original for the cropped-away part
    assert t.invert_pose(in_frame).allclose(pose, atol=1e-3)
    back = t.paste_back(frame, img)
    assert back.shape == img.shape and np.abs(back.astype(int) - img).mean() < 3
    with pytest.raises(ValueError, match="pass original_image"):
        t.paste_back(frame)
    # without a pose the whole photo is shown
    _, plain = fit_to_frame(img, 128, 64)
    assert plain.offset_x == 0 and plain.resized_width == 64
    # a person too wide for a crop falls back to showing the whole photo
    wide = Pose(np.stack([np.linspace(10, 590, 18), np.full(18, 100.0)], 1), np.ones(18, bool))
    _, t2 = fit_to_frame(img, 128, 64, pose=wide)
    assert t2.resized_width == 64
