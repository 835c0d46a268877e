"""The 8 canonical classes, the LIP/CIHP table, remaps, one-hot and label-map files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.data.parsing import (
    CLASS_NAMES,
    LIP20_NAMES,
    LIP20_TO_8,
    NUM_CLASSES,
    PALETTE,
    class_ids,
    colorize,
    one_hot,
    one_hot_torch,
    parse_remap,
    read_parsing,
    remap_labels,
    write_parsing,
)
from glocal_cli.errors import InputError


def test_classes_palette_and_lip_table():
    assert CLASS_NAMES == ("background", "hair", "upper", "lower", "shoes", "face", "arms", "legs")
    assert PALETTE.shape == (NUM_CLASSES, 3) and PALETTE.dtype == np.uint8
    assert len({tuple(c) for c in PALETTE}) == NUM_CLASSES  # distinct colours
    assert len(LIP20_TO_8) == 21 and len(LIP20_NAMES) == 20
    merged = {name: CLASS_NAMES[LIP20_TO_8[i]] for i, name in enumerate(LIP20_NAMES)}
    assert merged["hat"] == merged["hair"] == "hair"
    assert merged["coat"] == merged["upper_clothes"] == "upper"
    assert merged["dress"] == merged["pants"] == merged["skirt"] == "lower"
    assert merged["socks"] == merged["left_leg"] == merged["right_leg"] == "legs"
    assert merged["left_shoe"] == merged["right_shoe"] == "shoes"
    assert merged["face"] == "face" and merged["left_arm"] == merged["right_arm"] == "arms"
    assert LIP20_TO_8[20] == 0  # the 21st entry of PISE's table: background


def test_remap_labels_and_out_of_table_labels():
    labels = np.arange(21, dtype=np.uint8).reshape(3, 7)
    out = remap_labels(labels, LIP20_TO_8)
    assert out.dtype == np.uint8 and out.reshape(-1).tolist() == list(LIP20_TO_8)
    with pytest.raises(InputError, match=r"labels 21, 30 are outside the remap table \(0\.\.20\)"):
        remap_labels(np.array([[0, 21, 30, 21]]), LIP20_TO_8, where="x.png")


def test_parse_remap():
    assert parse_remap("0:0, 1:1,2:1") == (0, 1, 1)
    assert parse_remap("2:3,0:0,1:7") == (0, 7, 3)
    assert parse_remap(",".join(f"{i}:{v}" for i, v in enumerate(LIP20_TO_8))) == LIP20_TO_8
    for bad, message in [
        ("", "empty"),
        ("0:0,2:1", r"labels \[1\] are not mapped"),
        ("0:9", "not a class id"),
        ("0-0", "is not 'source:class'"),
        ("a:1", "not two integers"),
        ("0:0,0:1", "mapped twice"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_remap(bad)


def test_one_hot_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, (2, 5, 4))
    oh = one_hot(labels)
    assert oh.shape == (2, NUM_CLASSES, 5, 4) and oh.dtype == np.float32
    assert (oh.sum(axis=1) == 1).all() and (oh.argmax(axis=1) == labels).all()
    assert one_hot(labels[0]).shape == (NUM_CLASSES, 5, 4)
    ot = one_hot_torch(torch.from_numpy(labels))
    np.testing.assert_array_equal(ot.numpy(), oh)
    with pytest.raises(ValueError):
        one_hot(np.array([[8]]))


def test_colorize():
    labels = np.array([[0, 1], [7, 9]])
    img = colorize(labels)
    assert img.shape == (2, 2, 3) and img.dtype == np.uint8
    assert (img[0, 0] == PALETTE[0]).all() and (img[1, 0] == PALETTE[7]).all()
    assert (img[1, 1] == 0).all()  # beyond the palette: black


def test_write_read_round_trip_and_unknown_labels(tmp_path):
    labels = np.random.default_rng(1).integers(0, NUM_CLASSES, (16, 12)).astype(np.uint8)
    path = tmp_path / "p.png"
    write_parsing(path, labels)
    np.testing.assert_array_equal(read_parsing(path), labels)
    lip = np.random.default_rng(2).integers(0, 20, (16, 12)).astype(np.uint8)
    write_parsing(path, lip)
    np.testing.assert_array_equal(read_parsing(path, remap=LIP20_TO_8), np.array(LIP20_TO_8)[lip])
    with pytest.raises(InputError, match=r"p\.png.*labels (8|9|1\d).*outside") as info:
        read_parsing(path)
    assert "canonical 8-class map" in str(info.value)
    # palette PNGs: the indices are the labels
    pal = Image.new("P", (12, 16))
    pal.putpalette(PALETTE.reshape(-1).tolist())
    pal.putdata(labels.reshape(-1).tolist())
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(read_parsing(tmp_path / "pal.png"), labels)
    # colour images are rejected, grey RGB accepted
    Image.fromarray(colorize(labels)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="colour image"):
        read_parsing(tmp_path / "rgb.png")
    Image.fromarray(np.repeat(labels[..., None], 3, 2)).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_parsing(tmp_path / "grey.png"), labels)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match="broken.png: cannot read parsing map"):
        read_parsing(tmp_path / "broken.png")


def test_class_ids_with_did_you_mean():
    assert class_ids("hair,upper") == [1, 2]
    assert class_ids(["Face", " legs ", "face"]) == [5, 7]
    assert class_ids("3") == [3]
    with pytest.raises(InputError, match="did you mean 'upper'"):
        class_ids("hair,uper")
    with pytest.raises(InputError, match="no class names"):
        class_ids(" , ")
