"""`prepare-data market` on a fake raw Market-1501 tree built from the real sample crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glocal_cli.data.backends import BackendSpec
from glocal_cli.data.images import load_image
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.data.layout import PreparedDataset, read_list, read_pairs_csv
from glocal_cli.data.naming import identity_of
from glocal_cli.prepare import PrepareOptions, prepare_market


def sample_pairs(shared: Path) -> list[tuple[str, str]]:
    """The (source, target) pairs the sample strips show."""
    out = []
    for strip in sorted((shared / "market1501" / "samples").glob("*.png")):
        base = strip.name[: -len(".png")]
        cut = base.index(".jpg_") + len(".jpg")
        out.append((base[:cut], base[cut + 1 :]))
    return out


def borrowed_annotation(shared: Path, names, path: Path) -> dict[str, str]:
    """A community-format CSV for ``names``: the sample crops have no row in the local annotation,
    so each borrows a real row (real 128x64-frame values; not the crop's own pose)."""
    src = (shared / "market1501" / "market-annotation-test.csv").read_text().splitlines()
    good = [line.split(":", 1)[1] for line in src[1:] if line.split(":")[1].count("-1") < 4]
    rows = {n: good[i] for i, n in enumerate(sorted(names))}
    path.write_text("\n".join([src[0]] + [f"{n}:{v}" for n, v in rows.items()]) + "\n")
    return rows


def market_crops(shared: Path) -> dict[str, np.ndarray]:
    """``{name: 128x64 crop}``: panel ``k`` of a 192x128 strip spans ``x in [64k, 64k + 64)``."""
    crops: dict[str, np.ndarray] = {}
    for strip in sorted((shared / "market1501" / "samples").glob("*.png")):
        base = strip.name[: -len(".png")]
        cut = base.index(".jpg_") + len(".jpg")
        img = np.asarray(Image.open(strip).convert("RGB"))
        for k, name in enumerate((base[:cut], base[cut + 1 :])):
            crops.setdefault(name, np.ascontiguousarray(img[:, 64 * k : 64 * k + 64]))
    return crops


@pytest.fixture()
def market_raw(tmp_path, shared_data) -> tuple[Path, dict[str, np.ndarray]]:
    if not (shared_data / "market1501" / "samples").is_dir():
        pytest.skip("Market-1501 samples not found")
    crops = market_crops(shared_data)
    root = tmp_path / "Market-1501"
    for i, (name, crop) in enumerate(sorted(crops.items())):
        folder = "query" if i % 3 == 0 else "bounding_box_test"
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(root / folder / name, quality=95)
    (root / "bounding_box_train").mkdir()
    first = sorted(crops)[0]  # the same name in both test folders: a duplicate
    Image.fromarray(crops[first]).save(root / "bounding_box_test" / first)
    (root / "query" / "notes.txt").write_text("stray")
    return root, crops


def test_market_with_annotation_and_given_pairs(market_raw, shared_data, tmp_path):
    raw, crops = market_raw
    ann = tmp_path / "ann.csv"
    borrowed_annotation(shared_data, crops, ann)
    given = tmp_path / "pairs.csv"
    pairs_in = sample_pairs(shared_data)
    given.write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs_in) + "9999_c1s1_000001_01.jpg,0007_c2s3_070952_01.jpg\n")
    out = tmp_path / "out"
    opts = PrepareOptions(out=out, height=128, width=64, keypoints=BackendSpec("csv"))
    result = prepare_market(raw, opts, annotations=[ann], pairs_test=given)
    ds = PreparedDataset(out)
    assert (ds.height, ds.width) == (128, 64) and ds.kind == "market"
    assert ds.check() == {"train": 0, "test": len(crops)}
    assert result.counts["images"] == len(crops)
    truth = read_keypoint_csv(ann)
    mine = read_keypoint_csv(out / "keypoints.csv")
    for n in crops:  # the 128x64 frame is the community's own: keypoints unchanged
        assert mine[n] == truth[n]
        assert load_image(out / "images" / n).shape == (128, 64, 3)
    assert read_pairs_csv(out / "pairs-test.csv") == pairs_in
    assert all(identity_of(a) == identity_of(b) for a, b in pairs_in)
    report = json.loads((out / "validation-report.json").read_text())
    dup = report["problems"]["duplicate_name"][0]["path"]
    assert dup.endswith(sorted(crops)[0])
    assert report["problems"]["unexpected_layout"][0]["path"] == "query/notes.txt"
    assert report["problems"]["pair_dropped"][0]["path"].startswith("9999_")
    assert "missing_split_file" not in report["problems"]  # all three folders exist


def test_market_generated_pairs_skip_junk_identities(market_raw, shared_data, tmp_path):
    raw, crops = market_raw
    junk = raw / "bounding_box_test" / "-1_c1s1_000001_01.jpg"
    Image.fromarray(crops[sorted(crops)[1]]).save(junk)
    Image.fromarray(crops[sorted(crops)[2]]).save(raw / "bounding_box_test" / "-1_c2s1_000002_01.jpg")
    rows = {"-1_c1s1_000001_01.jpg", "-1_c2s1_000002_01.jpg"}
    ann = tmp_path / "ann.csv"
    borrowed_annotation(shared_data, set(crops) | rows, ann)
    out = tmp_path / "out"
    prepare_market(raw, PrepareOptions(out=out, height=128, width=64, keypoints=BackendSpec("csv")), annotations=[ann])
    names = set(read_list(out / "test.lst"))
    assert rows <= names
    pairs = read_pairs_csv(out / "pairs-test.csv")
    assert pairs and not any(a in rows or b in rows for a, b in pairs)


def test_market_benchmark_layout_as_shared(shared_data, tmp_path):
    """The layout of ../shared/data/market1501 (train/, test/ and the community CSVs beside them) is read as it
    is: keypoints from the CSVs without --annotations, the complete test-pair file chosen over a larger one
    whose photos are missing, generated training pairs within each identity."""
    from typer.testing import CliRunner

    from glocal_cli.cli.app import app

    if not (shared_data / "market1501" / "samples").is_dir():
        pytest.skip("Market-1501 samples not found")
    crops = market_crops(shared_data)
    pairs = sample_pairs(shared_data)
    root = tmp_path / "market1501"
    test_names = {n for p in pairs[:6] for n in p}
    for name, crop in sorted(crops.items()):
        folder = root / ("test" if name in test_names else "train")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(folder / name, quality=95)
    rows = borrowed_annotation(shared_data, crops, tmp_path / "all.csv")
    header = (tmp_path / "all.csv").read_text().splitlines()[0]
    for split, names in (("train", set(crops) - test_names), ("test", test_names)):
        (root / f"market-annotation-{split}.csv").write_text(
            "\n".join([header] + [f"{n}:{rows[n]}" for n in sorted(names)]) + "\n")
    (root / "market-pairs-test-6.csv").write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs[:6]))
    (root / "market-pairs-test.csv").write_text(  # the whole community file: most of its photos are absent
        "from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs) + "".join(f"{a},{b}\n" for a, b in pairs))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["prepare-data", "market", "--raw", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    ds = PreparedDataset(out)
    assert ds.kind == "market" and (ds.height, ds.width) == (128, 64)
    assert set(read_list(out / "test.lst")) == test_names
    assert set(read_list(out / "train.lst")) | set(read_list(out / "val.lst") if (out / "val.lst").is_file() else []) \
        == set(crops) - test_names
    assert read_pairs_csv(out / "pairs-test.csv") == pairs[:6]
    truth = read_keypoint_csv(tmp_path / "all.csv")
    mine = read_keypoint_csv(out / "keypoints.csv")
    assert all(mine[n] == truth[n] for n in crops)  # csv keypoints, not a detector's
    train_pairs = read_pairs_csv(out / "pairs-train.csv")
    assert train_pairs and all(identity_of(a) == identity_of(b) and a != b for a, b in train_pairs)
