"""Pairing generated images with ground truth: name rules, unmatched lists, datasets and panels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glocal_cli.errors import InputError
from glocal_cli.metrics.matching import match_folders, parse_panel_layout, split_panels


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.new("RGB", (4, 4)).save(folder / n, format="PNG")


def test_name_rules_and_unmatched_lists(tmp_path):
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    _touch(ref, "fashionMENJackets_Vestsid0000432802_6flat.jpg", "0007_c3s3_077419_03.jpg", "B.png",
           "C.jpg", "unused.jpg")
    _touch(
        gen,
        "fashionMENJackets_Vestsid0000432802_4full.jpg_fashionMENJackets_Vestsid0000432802_6flat.jpg.png",
        "0007_c2s3_070952_01_0007_c3s3_077419_03.png",  # market names without extensions
        "X_2_B_vis.png",  # GFLA
        "Y___C_vis.png",  # PATN
        "C.png",  # same stem as C.jpg
        "nothing_here.png",
    )
    m = match_folders(gen, ref)
    got = {p.name: (p.reference.path.name, p.rule) for p in m.pairs}
    assert got == {
        "fashionMENJackets_Vestsid0000432802_4full.jpg_fashionMENJackets_Vestsid0000432802_6flat.jpg.png": (
            "fashionMENJackets_Vestsid0000432802_6flat.jpg", "from_to"),
        "0007_c2s3_070952_01_0007_c3s3_077419_03.png": ("0007_c3s3_077419_03.jpg", "from_to"),
        "X_2_B_vis.png": ("B.png", "gfla-vis"),
        "Y___C_vis.png": ("C.jpg", "patn-vis"),
        "C.png": ("C.jpg", "same-name"),
    }
    assert m.unmatched_generated == ["nothing_here.png"]
    assert m.unmatched_reference == ["unused.jpg"]
    assert m.rule_counts()["from_to"] == 2


def test_prepared_dataset_as_reference_reports_missing_test_pairs(tmp_path):
    data = tmp_path / "data"
    _touch(data / "images", "a.jpg", "b.jpg", "c.jpg")
    (data / "manifest.json").write_text(json.dumps({"format": "glocal-dataset"}))
    (data / "pairs-test.csv").write_text("from,to\na.jpg,b.jpg\nb.jpg,c.jpg\n")
    _touch(tmp_path / "gen", "a.jpg_b.jpg.png")
    m = match_folders(tmp_path / "gen", data)
    assert m.dataset_dir == data and m.reference_dir == data / "images"
    assert [p.reference.path.name for p in m.pairs] == ["b.jpg"]
    assert m.missing_expected == ["b.jpg_c.jpg"]


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    _touch(tmp_path / "ref", "a.png")
    with pytest.raises(InputError, match="no images"):
        match_folders(tmp_path / "empty", tmp_path / "ref")
    with pytest.raises(InputError, match="not a folder"):
        match_folders(tmp_path / "missing", tmp_path / "ref")


def test_panel_split_on_real_samples(shared_data):
    folder = shared_data / "deepfashion" / "samples"
    m = split_panels(folder, "source,target,output", pad=40)
    assert len(m.pairs) == len(list(folder.glob("*.png"))) and not m.unmatched_generated
    pair = m.pairs[0]
    full = np.asarray(Image.open(pair.generated.path).convert("RGB"))
    np.testing.assert_array_equal(pair.reference.load(), full[:, 296:472])
    np.testing.assert_array_equal(pair.generated.load(), full[:, 552:728])
    assert pair.name.endswith(".jpg") and "_fashion" in pair.name  # <from>_<to> without .png
    market = split_panels(shared_data / "market1501" / "samples", ["source", "target", "output"])
    assert market.pairs[0].generated.load().shape == (128, 64, 3)


def test_panel_layout_validation(tmp_path):
    assert parse_panel_layout("source,-,target,-,output") == ("source", "-", "target", "-", "output")
    for bad in ("source,target", "source,target,output,output", "src,target,output"):
        with pytest.raises(InputError, match="--panels"):
            parse_panel_layout(bad)
    _touch(tmp_path / "p", "x.png")  # 4 px wide: cannot hold 3 panels
    with pytest.raises(InputError, match="divisible"):
        split_panels(tmp_path / "p", "source,target,output")
