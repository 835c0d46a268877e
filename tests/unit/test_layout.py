"""The prepared dataset folder: manifest, lists, pairs and validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glocal_cli.data.images import save_image
from glocal_cli.data.keypoints import Pose, write_keypoint_csv
from glocal_cli.data.layout import (
    DatasetManifest,
    PreparedDataset,
    read_list,
    read_manifest,
    read_pairs_csv,
    write_list,
    write_manifest,
    write_pairs_csv,
)
from glocal_cli.data.parsing import write_parsing
from glocal_cli.errors import DataError, InputError


def _make_dataset(root, parsing: bool = True, names=("a.png", "b.png", "c.png")):
    h, w = 32, 24
    for n in names:
        save_image(root / "images" / n, np.full((h, w, 3), 200, np.uint8))
        if parsing:
            write_parsing(root / "parsing" / (n[:-4] + ".png"), np.zeros((h, w), np.uint8))
    pose = Pose(np.tile([[10.0, 12.0]], (18, 1)), np.r_[np.ones(17, bool), False])
    write_keypoint_csv(root / "keypoints.csv", {n: pose for n in names})
    write_list(root / "train.lst", names[:2])
    write_list(root / "test.lst", names[2:])
    write_pairs_csv(root / "pairs-train.csv", [(names[0], names[1]), (names[1], names[0])])
    write_manifest(
        root, kind="synthetic", height=h, width=w, counts={"train": 2}, seed=3, has_parsing=parsing
    )
    return pose


def test_manifest_round_trip(tmp_path):
    m = DatasetManifest(
        kind="market", height=128, width=64, counts={"test": 5}, options={"a": [1, 2]}, card="x"
    )
    path = write_manifest(tmp_path, m)
    data = json.loads(path.read_text())
    assert list(data)[:2] == ["format", "format_version"]
    assert data["format"] == "glocal-dataset" and data["format_version"] == 1
    assert read_manifest(tmp_path) == m
    write_manifest(tmp_path, kind="folder", height=8, width=8)
    assert read_manifest(tmp_path).glocal_version  # filled in automatically
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else"}, "not a glocal dataset"),
        ({"format_version": 2}, "format_version 2 is not supported"),
        ({"kind": "cats"}, "kind 'cats' is not one of"),
        ({"height": 0}, "height must be a positive integer"),
        ({"extra": 1}, "unknown keys extra"),
        ({"has_parsing": "yes"}, "has_parsing must be true or false"),
    ],
)
def test_manifest_validation_names_the_path(tmp_path, change, message):
    data = DatasetManifest(kind="synthetic", height=8, width=8).to_dict() | change
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=message) as info:
        read_manifest(tmp_path)
    assert str(tmp_path / "manifest.json") in str(info.value)


def test_missing_manifest_and_folder(tmp_path):
    with pytest.raises(DataError, match="manifest.json: missing; not a prepared dataset"):
        PreparedDataset(tmp_path)
    with pytest.raises(DataError, match="dataset folder not found"):
        PreparedDataset(tmp_path / "nope")
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_manifest(tmp_path)


def test_prepared_dataset_reads_everything(tmp_path):
    pose = _make_dataset(tmp_path)
    ds = PreparedDataset(tmp_path)
    assert (ds.kind, ds.height, ds.width, ds.has_parsing, ds.has_surface) == (
        "synthetic",
        32,
        24,
        True,
        False,
    )
    assert ds.names("train") == ["a.png", "b.png"] and ds.names("test") == ["c.png"]
    assert ds.pairs("train") == [("a.png", "b.png"), ("b.png", "a.png")]
    assert ds.image_path("a.png") == tmp_path / "images" / "a.png" and ds.images_dir.is_dir()
    assert ds.parsing_path("a.png") == tmp_path / "parsing" / "a.png"
    kp = ds.keypoints()
    assert kp is ds.keypoints() and kp["c.png"] == pose and ds.pose("a.png") == pose
    assert ds.check() == {"train": 2, "test": 1}
    with pytest.raises(DataError, match="no surface coordinates"):
        ds.surface_path("a.png")
    with pytest.raises(DataError, match="pairs-test.csv: missing"):
        ds.pairs("test")
    with pytest.raises(DataError, match="no keypoints for 'zzz.png'"):
        ds.pose("zzz.png")
    with pytest.raises(DataError, match="val.lst: missing"):
        ds.names("val")


def test_prepared_dataset_reports_missing_files(tmp_path):
    _make_dataset(tmp_path)
    (tmp_path / "images" / "c.png").unlink()
    with pytest.raises(DataError, match=r"images/c.png: listed in test.lst but missing"):
        PreparedDataset(tmp_path).check()
    (tmp_path / "parsing" / "a.png").unlink()
    with pytest.raises(DataError, match=r"parsing/a.png: missing"):
        PreparedDataset(tmp_path).check(["train"])
    (tmp_path / "keypoints.csv").unlink()
    with pytest.raises(DataError, match=r"keypoints.csv: missing from the prepared dataset"):
        PreparedDataset(tmp_path)
    write_manifest(tmp_path, kind="synthetic", height=32, width=24, has_surface=True)
    (tmp_path / "keypoints.csv").write_text("name:keypoints_y:keypoints_x\nbad row\n")
    with pytest.raises(DataError, match="surface: missing"):
        PreparedDataset(tmp_path)
    (tmp_path / "surface").mkdir()
    with pytest.raises(DataError, match="row 2"):
        PreparedDataset(tmp_path).keypoints()


def test_lists_and_pairs(tmp_path):
    write_list(tmp_path / "x.lst", ["a.jpg", "b.jpg"])
    assert read_list(tmp_path / "x.lst") == ["a.jpg", "b.jpg"]
    (tmp_path / "y.lst").write_text("a.jpg\n\n  b.jpg \n")
    assert read_list(tmp_path / "y.lst") == ["a.jpg", "b.jpg"]
    with pytest.raises(ValueError):
        write_list(tmp_path / "z.lst", ["a\nb"])
    write_pairs_csv(tmp_path / "p.csv", [("a.jpg", "b.jpg")])
    assert (tmp_path / "p.csv").read_text() == "from,to\na.jpg,b.jpg\n"
    assert read_pairs_csv(tmp_path / "p.csv") == [("a.jpg", "b.jpg")]
    (tmp_path / "q.csv").write_text("src,dst\na,b\n")
    with pytest.raises(InputError, match="row 1: expected header 'from,to'"):
        read_pairs_csv(tmp_path / "q.csv")
    (tmp_path / "q.csv").write_text("from,to\na,b\nc\n")
    with pytest.raises(InputError, match=r"q.csv: row 3: expected two names"):
        read_pairs_csv(tmp_path / "q.csv")


def test_pairs_with_extra_columns_for_inference(tmp_path):
    from glocal_cli.infer.io import read_pairs

    (tmp_path / "x.csv").write_text("\ufefffrom,to,note\na.png,t.json,first\n\nb.png, u.json\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 1: expected header"):
        read_pairs_csv(tmp_path / "x.csv")  # the prepared layout: exactly two columns
    assert read_pairs_csv(tmp_path / "x.csv", extra_columns=True) == [("a.png", "t.json"), ("b.png", "u.json")]
    assert read_pairs(tmp_path / "x.csv") == [("a.png", "t.json"), ("b.png", "u.json")]
    (tmp_path / "y.csv").write_text("from,to\na.png\n")
    with pytest.raises(InputError, match=r"y.csv: row 2: expected two names"):
        read_pairs(tmp_path / "y.csv")
    (tmp_path / "z.csv").write_text("from,to\n")
    with pytest.raises(InputError, match="z.csv: pairs CSV has no rows"):
        read_pairs(tmp_path / "z.csv")


def test_community_pairs_file_reads(shared_data):
    pairs = read_pairs_csv(shared_data / "deepfashion" / "fashion-pairs-test.csv")
    assert len(pairs) == 8570
    names = {n for pair in pairs for n in pair}
    assert len(names) == 3144
    assert names <= set(read_list(shared_data / "deepfashion" / "test.lst"))
