"""`prepare-data deepfashion` on a fake raw In-shop tree built from the real sample photos.

The photos are cut out of ``../shared/data/deepfashion/samples`` (panel ``k`` of a 768x256 strip
spans ``x in [256k + 40, 256k + 216)``) and stored under their raw In-shop paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from glocal_cli.cli.prepare_real import deepfashion_command
from glocal_cli.data.backends import BackendSpec
from glocal_cli.data.images import load_image
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.data.layout import PreparedDataset, read_list, read_pairs_csv
from glocal_cli.data.naming import deepfashion_path_from_name, identity_of
from glocal_cli.data.parsing import LIP20_TO_8, read_parsing
from glocal_cli.errors import DataError, OutputExistsError
from glocal_cli.prepare import PrepareOptions, prepare_deepfashion
from glocal_cli.prepare.engine import JOURNAL_FILE

EMPTY_ROW = "fashionWOMENShortsid0000074801_2side.jpg"  # all -1 in the community annotation


def sample_photos(shared: Path) -> dict[str, np.ndarray]:
    photos: dict[str, np.ndarray] = {}
    for strip in sorted((shared / "deepfashion" / "samples").glob("*.png")):
        base = strip.name[: -len(".png")]
        cut = base.index(".jpg_") + len(".jpg")
        img = np.asarray(Image.open(strip).convert("RGB"))
        for k, name in enumerate((base[:cut], base[cut + 1 :])):
            photos.setdefault(name, np.ascontiguousarray(img[:, 256 * k + 40 : 256 * k + 216]))
    return photos


def write_raw(root: Path, photos: dict[str, np.ndarray], folder: str = "img", scale: int = 1) -> None:
    for name, im in photos.items():
        dst = root / deepfashion_path_from_name(name, prefix=folder)
        dst.parent.mkdir(parents=True, exist_ok=True)
        pic = Image.fromarray(im)
        if scale != 1:
            pic = pic.resize((im.shape[1] * scale, im.shape[0] * scale), Image.Resampling.BICUBIC)
        pic.save(dst, quality=95)


@pytest.fixture(scope="module")
def photos(shared_data) -> dict[str, np.ndarray]:
    return sample_photos(shared_data)


@pytest.fixture()
def raw(tmp_path, photos) -> Path:
    root = tmp_path / "raw"
    write_raw(root, photos)
    return root


@pytest.fixture()
def small_raw(tmp_path, photos) -> Path:
    """24 photos (for the tests that prepare several times)."""
    root = tmp_path / "small_raw"
    write_raw(root, dict(sorted(photos.items())[:24]))
    return root


def _options(out: Path, **kw) -> PrepareOptions:
    return PrepareOptions(out=out, keypoints=BackendSpec("csv"), **kw)


def test_community_split_pairs_and_keypoint_frames(raw, photos, shared_data, tmp_path):
    df = shared_data / "deepfashion"
    out = tmp_path / "out"
    result = prepare_deepfashion(raw, _options(out), split_dir=df)
    assert result.counts["images"] == len(photos) == 116
    ds = PreparedDataset(out)
    assert ds.kind == "deepfashion" and (ds.height, ds.width) == (256, 176)
    assert ds.check() == {"train": 0, "test": 116}
    assert set(read_list(out / "test.lst")) == set(photos)
    # the community pairs among the available photos, in the community's order
    community = read_pairs_csv(df / "fashion-pairs-test.csv")
    expected = [p for p in community if p[0] in photos and p[1] in photos]
    assert read_pairs_csv(out / "pairs-test.csv") == expected and len(expected) >= 58
    # keypoints: the community 256x256 frame minus 40 px, exactly (the photos are 256x176 already)
    truth = read_keypoint_csv(df / "fasion-annotation-test.csv")
    mine = read_keypoint_csv(out / "keypoints.csv")
    for name, pose in mine.items():
        ref = truth[name]
        assert np.array_equal(pose.visible, ref.visible)
        assert np.array_equal(pose.xy[pose.visible], ref.xy[ref.visible] - [40, 0])
    # and they land on the person: the neighbourhood of a visible point is not plain background
    on_person = total = 0
    for name, pose in mine.items():
        img = load_image(out / "images" / name)
        assert img.shape == (256, 176, 3)
        for x, y in np.rint(pose.xy[pose.visible]).astype(int):
            patch = img[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4].astype(int)
            total += 1
            on_person += int(np.ptp(patch.reshape(-1, 3), axis=0).max() > 12 or patch.mean() < 200)
    assert on_person / total > 0.9
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["pairs-test"] == len(expected)
    assert set(manifest["options"]["checksums"]) >= {"keypoints.csv", "images", "test.lst", "pairs-test.csv"}
    report = json.loads((out / "validation-report.json").read_text())
    assert report["counts"]["unknown_csv_row"] == 4038 - 116
    assert "pairs-train" in report["problems"]["missing_split_file"][0]["path"]


def test_highres_source_is_resized_into_the_frame(tmp_path, photos, shared_data):
    chosen = dict(list(photos.items())[:6])
    write_raw(tmp_path / "raw", chosen, folder="img_highres", scale=3)
    out = tmp_path / "out"
    prepare_deepfashion(tmp_path / "raw", _options(out), annotations=[shared_data / "deepfashion" / "fasion-annotation-test.csv"])
    mine = read_keypoint_csv(out / "keypoints.csv")
    truth = read_keypoint_csv(shared_data / "deepfashion" / "fasion-annotation-test.csv")
    for name in chosen:
        img = load_image(out / "images" / name)
        assert img.shape == (256, 176, 3)
        # bicubic down-scaling of the 3x up-scaled photo gives the photo back, aligned (a one-pixel
        # shift would be worse than the JPEG and resampling error)
        err = np.abs(img.astype(int) - chosen[name].astype(int)).mean()
        shifted = np.abs(np.roll(img, 1, axis=1).astype(int) - chosen[name].astype(int)).mean()
        assert err < 10 and err < shifted
        ref = truth[name]
        assert np.abs(mine[name].xy[ref.visible] - (ref.xy[ref.visible] - [40, 0])).max() <= 1


def test_bad_input_is_reported_and_skipped(raw, photos, shared_data, tmp_path):
    df = shared_data / "deepfashion"
    img_root = raw / "img"
    names = sorted(photos)
    # corrupt: a truncated JPEG and an empty file, both under valid names
    victim = img_root / deepfashion_path_from_name(names[0], prefix="")
    victim.write_bytes(victim.read_bytes()[:300])
    empty = img_root / deepfashion_path_from_name(names[1], prefix="")
    empty.write_bytes(b"")
    # no person: a photo whose community row is all -1
    nobody = img_root / deepfashion_path_from_name(EMPTY_ROW, prefix="")
    nobody.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (176, 256), "white").save(nobody)
    # unexpected layout: a stray file and a photo one folder too high
    (img_root / "README.txt").write_text("stray")
    misplaced = img_root / "MEN" / "02_1_front.jpg"
    Image.fromarray(photos[names[2]]).save(misplaced)
    # a train-list name with no annotation row (only the test annotation exists locally)
    train_name = read_list(df / "train.lst")[0]
    no_row = img_root / deepfashion_path_from_name(train_name, prefix="")
    no_row.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photos[names[3]]).save(no_row)

    out = tmp_path / "out"
    result = prepare_deepfashion(raw, _options(out), split_dir=df)
    report = json.loads((out / "validation-report.json").read_text())
    paths = {k: [p["path"] for p in v] for k, v in report["problems"].items()}
    assert any(str(victim.relative_to(raw)) == p for p in paths["corrupt_image"])
    assert any(str(empty.relative_to(raw)) == p for p in paths["corrupt_image"])
    assert str(nobody.relative_to(raw)) in paths["no_person"]
    assert "README.txt" in paths["unexpected_layout"] and "MEN/02_1_front.jpg" in paths["unexpected_layout"]
    assert str(no_row.relative_to(img_root)) in paths["no_keypoints"]
    assert result.counts["images"] == 116 - 2
    md = (out / "validation-report.md").read_text()
    assert str(victim.relative_to(raw)) in md and "no_person" in md
    kept = set(read_list(out / "test.lst"))
    assert names[0] not in kept and EMPTY_ROW not in kept
    assert all(a in kept and b in kept for a, b in read_pairs_csv(out / "pairs-test.csv"))


def test_nothing_usable_fails_after_writing_the_report(tmp_path):
    bad = tmp_path / "raw" / "img" / "MEN" / "Denim" / "id_00000080" / "01_1_front.jpg"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\xff\xd8\xff not a jpeg")
    opts = PrepareOptions(out=tmp_path / "out", keypoints=BackendSpec("json", annotations=tmp_path))
    with pytest.raises(DataError, match="no usable image"):
        prepare_deepfashion(tmp_path / "raw", opts)
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    assert report["problems"]["corrupt_image"][0]["path"].endswith("01_1_front.jpg")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_generated_split_and_pairs_share_no_identity(raw, shared_data, tmp_path):
    out = tmp_path / "out"
    ann = shared_data / "deepfashion" / "fasion-annotation-test.csv"
    prepare_deepfashion(raw, _options(out, test_fraction=0.3, seed=1, min_keypoints=6), annotations=[ann])
    train, test = read_list(out / "train.lst"), read_list(out / "test.lst")
    assert train and test
    assert {identity_of(n) for n in train}.isdisjoint({identity_of(n) for n in test})
    kp = read_keypoint_csv(out / "keypoints.csv")
    for split, names in (("train", set(train)), ("test", set(test))):
        for a, b in read_pairs_csv(out / f"pairs-{split}.csv"):
            assert a in names and b in names and a != b and identity_of(a) == identity_of(b)
            assert kp[a].num_visible >= 6 and kp[b].num_visible >= 6


def test_resume_skips_finished_images_and_refuses_to_overwrite(small_raw, shared_data, tmp_path):
    raw = small_raw
    out = tmp_path / "out"
    opts = _options(out)
    df = shared_data / "deepfashion"
    prepare_deepfashion(raw, opts, split_dir=df)
    first_kp = (out / "keypoints.csv").read_text()
    with pytest.raises(OutputExistsError):
        prepare_deepfashion(raw, opts, split_dir=df)
    # simulate a crash: no manifest, a few images lost, a torn journal line
    (out / "manifest.json").unlink()
    lost = sorted((out / "images").iterdir())[:5]
    for p in lost:
        p.unlink()
    with (out / JOURNAL_FILE).open("a") as f:
        f.write('{"name": "torn')
    kept = sorted((out / "images").iterdir())[0]
    os.utime(kept, (1, 1))
    result = prepare_deepfashion(raw, opts, split_dir=df)
    assert result.counts["images"] == 24
    assert kept.stat().st_mtime == 1  # not rewritten
    assert all(p.exists() for p in lost)
    assert (out / "keypoints.csv").read_text() == first_kp
    # other options on an unfinished folder need --overwrite
    (out / "manifest.json").unlink()
    with pytest.raises(OutputExistsError, match="other options"):
        prepare_deepfashion(raw, _options(out, resample="area"), split_dir=df)
    prepare_deepfashion(raw, _options(out, resample="area", overwrite=True), split_dir=df)
    assert json.loads((out / "manifest.json").read_text())["options"]["resample"] == "area"


def test_dry_run_writes_nothing(raw, shared_data, tmp_path):
    out = tmp_path / "out"
    result = prepare_deepfashion(raw, _options(out, dry_run=True), split_dir=shared_data / "deepfashion")
    assert result.dry_run and result.counts["to process"] == 116
    assert not out.exists()


def test_parsing_import_lip20_and_missing_maps(raw, photos, shared_data, tmp_path):
    parsing = tmp_path / "parsing"
    parsing.mkdir()
    names = sorted(photos)[:8]
    rng = np.random.default_rng(0)
    maps = {}
    for n in names[:-1]:  # the last one has no map
        labels = rng.integers(0, 20, size=(256, 176)).astype(np.uint8)
        maps[n] = labels
        Image.fromarray(labels, mode="L").save(parsing / f"{Path(n).stem}.png")
    sub = tmp_path / "raw_small"
    write_raw(sub, {n: photos[n] for n in names})
    out = tmp_path / "out"
    ann = shared_data / "deepfashion" / "fasion-annotation-test.csv"
    result = prepare_deepfashion(sub, _options(out, parsing_dir=parsing, parsing_format="lip20"), annotations=[ann])
    assert result.counts["images"] == 7
    ds = PreparedDataset(out)
    assert ds.has_parsing
    for n in names[:-1]:
        got = read_parsing(ds.parsing_path(n))
        assert np.array_equal(got, np.asarray(LIP20_TO_8, np.uint8)[maps[n]])
    report = json.loads((out / "validation-report.json").read_text())
    assert report["problems"]["parsing_missing"][0]["path"].endswith(deepfashion_path_from_name(names[-1], prefix=""))


def test_cli_summary_and_exit_codes(small_raw, shared_data, tmp_path):
    raw = small_raw
    app = typer.Typer()
    app.command()(deepfashion_command)
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["--raw", str(raw), "--out", str(out), "--split-dir", str(shared_data / "deepfashion")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "manifest.json").is_file()
    res = runner.invoke(app, args)
    assert res.exit_code != 0
    res = runner.invoke(app, [*args, "--overwrite", "--size", "128x88"])
    assert res.exit_code == 0, res.output
    assert load_image(next((out / "images").iterdir())).shape == (128, 88, 3)
    truth = read_keypoint_csv(shared_data / "deepfashion" / "fasion-annotation-test.csv",
                              frame="deepfashion-256x256", to_frame=(128, 88))
    for name, pose in read_keypoint_csv(out / "keypoints.csv").items():  # half the 256x176 frame
        assert np.abs(pose.xy[pose.visible] - truth[name].xy[pose.visible]).max() <= 0.5 + 1e-6
    res = runner.invoke(app, ["--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert res.exit_code != 0


def test_parallel_workers_give_the_same_dataset(small_raw, shared_data, tmp_path):
    df = shared_data / "deepfashion"
    prepare_deepfashion(small_raw, _options(tmp_path / "one"), split_dir=df)
    prepare_deepfashion(small_raw, _options(tmp_path / "two", workers=2, chunk_size=4), split_dir=df)
    for f in ("keypoints.csv", "test.lst", "pairs-test.csv"):
        assert (tmp_path / "one" / f).read_text() == (tmp_path / "two" / f).read_text()
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())["options"]["checksums"]
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())["options"]["checksums"]
    assert one == two
