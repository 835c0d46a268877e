"""`prepare-data folder`: a user's photos, the person located from keypoints and centred."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glocal_cli.data.backends import BackendSpec
from glocal_cli.data.images import load_image
from glocal_cli.data.keypoints import Pose, read_keypoint_csv, write_keypoint_csv, write_openpose_json
from glocal_cli.data.layout import PreparedDataset, read_list, read_pairs_csv
from glocal_cli.prepare import PrepareOptions, prepare_folder
from tests.integration.test_prepare_deepfashion import sample_photos


@pytest.fixture()
def user_photos(tmp_path, shared_data):
    """Wide photos (256x480) with a DeepFashion person pasted off-centre; keypoints in photo pixels."""
    photos = dict(sorted(sample_photos(shared_data).items())[:6])
    truth = read_keypoint_csv(shared_data / "deepfashion" / "fasion-annotation-test.csv",
                              frame="deepfashion-256x256", to_frame="deepfashion-256x176")
    root = tmp_path / "photos"
    poses: dict[str, Pose] = {}
    for i, (name, im) in enumerate(photos.items()):
        if truth[name].num_visible < 8:
            continue
        canvas = np.full((256, 480, 3), 255, np.uint8)
        x0 = 20 + 40 * i
        canvas[:, x0 : x0 + 176] = im
        person = f"person{i % 2}"
        (root / person).mkdir(parents=True, exist_ok=True)
        Image.fromarray(canvas).save(root / person / f"shot{i}.png")
        poses[f"{person}__shot{i}.png"] = truth[name].transform(1, 1, x0, 0)
        poses[f"{person}/shot{i}.png"] = poses[f"{person}__shot{i}.png"]
    return root, poses


def test_folder_centres_the_person_and_pairs_within_subfolders(user_photos, tmp_path):
    root, poses = user_photos
    ann = tmp_path / "kp.csv"
    write_keypoint_csv(ann, {k: v for k, v in poses.items() if "/" not in k})
    Image.new("RGB", (50, 50), "white").save(root / "person0" / "empty.png")  # no annotation row
    (root / "person0" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    out = tmp_path / "out"
    result = prepare_folder(root, PrepareOptions(out=out, keypoints=BackendSpec("csv")), annotations=[ann])
    names = [k for k in poses if "/" not in k]
    assert result.counts["images"] == len(names)
    ds = PreparedDataset(out)
    assert ds.kind == "folder" and ds.check() == {"train": 0, "test": len(names)}
    kp = read_keypoint_csv(out / "keypoints.csv")
    for n in names:
        img = load_image(out / "images" / n)
        assert img.shape == (256, 176, 3)
        x0, _, x1, _ = kp[n].bbox()
        assert abs((x0 + x1) / 2 - 87.5) < 20  # centred although pasted off-centre
    for a, b in read_pairs_csv(out / "pairs-test.csv"):
        assert a.split("__")[0] == b.split("__")[0]
    report = json.loads((out / "validation-report.json").read_text())
    assert report["problems"]["no_person"][0]["path"] == "person0/empty.png"
    assert report["problems"]["corrupt_image"][0]["path"] == "person0/broken.jpg"


def test_folder_reads_openpose_json_and_reports_duplicates(user_photos, tmp_path):
    root, poses = user_photos
    jdir = tmp_path / "json"
    jdir.mkdir()
    for key, pose in poses.items():
        if "/" in key:
            write_openpose_json(jdir / f"{key.replace('/', '__')[:-4]}_keypoints.json", pose)
    first = sorted(p for p in root.rglob("*.png"))[0]
    Image.open(first).save(root / f"{first.parent.name}__{first.name}")  # same dataset name as first
    out = tmp_path / "out"
    prepare_folder(root, PrepareOptions(out=out, keypoints=BackendSpec("json")), split="train", annotations=[jdir])
    assert len(read_list(out / "train.lst")) == len([k for k in poses if "/" in k])
    assert read_list(out / "test.lst") == []
    report = json.loads((out / "validation-report.json").read_text())
    assert report["problems"]["duplicate_name"][0]["path"] == f"{first.parent.name}__{first.name}"
