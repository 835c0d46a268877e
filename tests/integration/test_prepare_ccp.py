"""`prepare-data ccp` on a few real Clothing Co-Parsing photos, and the skin split it relies on."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from glocal_cli.data.backends import BackendSpec
from glocal_cli.data.keypoints import Pose, write_keypoint_csv
from glocal_cli.data.layout import PreparedDataset, read_list, read_pairs_csv
from glocal_cli.data.parsing import CCP59_NAMES, CCP59_TO_8, SKIN, read_parsing, split_skin
from glocal_cli.errors import InputError
from glocal_cli.prepare import PrepareOptions, prepare_ccp


def _skeleton(w: float, h: float) -> Pose:
    """A standing person filling a w x h photo (COCO-18, x y in pixels)."""
    rel = [(0.5, 0.1), (0.5, 0.2), (0.35, 0.2), (0.3, 0.35), (0.28, 0.48), (0.65, 0.2), (0.7, 0.35), (0.72, 0.48),
           (0.42, 0.5), (0.42, 0.7), (0.42, 0.9), (0.58, 0.5), (0.58, 0.7), (0.58, 0.9), (0.47, 0.08), (0.53, 0.08),
           (0.44, 0.09), (0.56, 0.09)]
    return Pose(np.array([(x * w, y * h) for x, y in rel], np.float32), np.ones(18, bool))


def test_ccp_table_covers_the_59_labels():
    assert len(CCP59_NAMES) == len(CCP59_TO_8) == 59
    named = dict(zip(CCP59_NAMES, CCP59_TO_8))
    assert named["null"] == 0 and named["hair"] == 1 and named["t-shirt"] == 2 and named["jeans"] == 3
    assert named["sneakers"] == 4 and named["sunglasses"] == 5 and named["socks"] == 7 and named["skin"] == SKIN
    assert set(CCP59_TO_8) <= set(range(9))


def test_split_skin_follows_the_nearest_body_segment():
    pose = _skeleton(100, 200)
    labels = np.full((200, 100), SKIN, np.uint8)
    labels[:, :5] = 0  # not skin: untouched
    out = split_skin(labels, pose.xy, pose.visible)
    assert (out[:, :5] == 0).all() and SKIN not in out
    assert out[18, 50] == 5  # between the eyes: face
    assert out[int(0.42 * 200), 28] == 6  # at the right forearm
    assert out[int(0.8 * 200), 42] == 7  # at the right shin
    assert out[int(0.98 * 200), 58] == 7  # below the left ankle: the foot
    # a pose without its legs: the lower skin goes to the nearest remaining segment, never to a missing class
    vis = pose.visible.copy()
    vis[[9, 10, 12, 13]] = False
    assert 7 in split_skin(labels, pose.xy, vis)  # the hips alone still mark the legs' start
    vis[[8, 11]] = False
    assert 7 not in split_skin(labels, pose.xy, vis)
    # no keypoints at all: the upper third of the skin is face, the rest arms
    none = split_skin(labels, pose.xy, np.zeros(18, bool))
    assert none[10, 50] == 5 and none[150, 50] == 6


def test_prepare_ccp_maps_labels_splits_skin_and_pairs_each_photo_with_itself(shared_data, tmp_path):
    ccp = shared_data / "ccp"
    if not (ccp / "parsing").is_dir():
        pytest.skip("Clothing Co-Parsing not found in ../shared/data")
    stems = sorted(p.stem for p in (ccp / "parsing").glob("*.png"))[:6]
    raw = tmp_path / "ccp"
    (raw / "photos").mkdir(parents=True)
    (raw / "parsing").mkdir()
    shutil.copy(ccp / "labels.txt", raw / "labels.txt")
    rows = {}
    from PIL import Image

    for stem in stems:
        shutil.copy(ccp / "photos" / f"{stem}.jpg", raw / "photos")
        shutil.copy(ccp / "parsing" / f"{stem}.png", raw / "parsing")
        w, h = Image.open(ccp / "photos" / f"{stem}.jpg").size
        rows[f"ccp{stem}.jpg"] = _skeleton(w, h)
    shutil.copy(ccp / "photos" / "0002.jpg", raw / "photos" / "9999.jpg")  # no parsing: not prepared
    ann = tmp_path / "kp.csv"
    write_keypoint_csv(ann, rows)
    out = tmp_path / "out"
    opts = PrepareOptions(out=out, height=64, width=44, keypoints=BackendSpec("csv"), test_fraction=0.34, seed=1)
    result = prepare_ccp(raw, opts, annotations=[ann])
    ds = PreparedDataset(out)
    assert ds.kind == "ccp" and ds.has_parsing and (ds.height, ds.width) == (64, 44)
    names = set(read_list(out / "train.lst")) | set(read_list(out / "test.lst"))
    if (out / "val.lst").is_file():
        names |= set(read_list(out / "val.lst"))
    assert names == set(rows) and result.counts["images"] == len(rows)
    assert read_list(out / "test.lst")  # a seeded share is held out
    for split in ("train", "test"):
        assert all(a == b for a, b in read_pairs_csv(out / f"pairs-{split}.csv"))
    seen = set()
    for n in rows:
        labels = read_parsing(out / "parsing" / f"{n[:-4]}.png")
        assert labels.shape == (64, 44) and labels.max() <= 7
        seen |= set(np.unique(labels).tolist())
    assert {0, 2, 5} <= seen  # background, upper clothes and a face (split from skin) in these street photos
    # the same seed holds out the same photos
    again = prepare_ccp(raw, PrepareOptions(out=tmp_path / "again", height=64, width=44, keypoints=BackendSpec("csv"),
                                            test_fraction=0.34, seed=1), annotations=[ann])
    assert again.counts["images"] == len(rows)
    assert read_list(tmp_path / "again" / "test.lst") == read_list(out / "test.lst")
    (raw / "labels.txt").write_text("0 null\n1 jacket\n")
    with pytest.raises(InputError, match="59 labels"):
        prepare_ccp(raw, PrepareOptions(out=tmp_path / "bad", height=64, width=44, keypoints=BackendSpec("csv")),
                    annotations=[ann])
