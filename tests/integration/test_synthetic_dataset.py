"""`prepare-data synthetic` end to end: layout, determinism across workers, resume, refusals, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from glocal_cli.data.correspondence import pair_correspondence_files
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.data.layout import PreparedDataset, write_manifest
from glocal_cli.errors import ConfigError, OutputExistsError
from glocal_cli.synth.dataset import PREVIEW_FILE, prepare_synthetic
from glocal_cli.synth.writer import identity_key, marker_path

SMALL = {"identities": 5, "poses_per_identity": 3, "size": "64x44", "seed": 7, "test_fraction": 0.4}


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a prepared folder except the state folder and the preview."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".synthpeople" not in p.parts and p.name != PREVIEW_FILE
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "one-worker"
    summary = prepare_synthetic(out, workers=1, preview=True, show_progress=False, **SMALL)
    assert summary.rendered_identities == 5 and summary.images == 15
    assert summary.preview is not None and summary.preview.is_file()
    return out


def test_layout_is_a_prepared_dataset(prepared):
    ds = PreparedDataset(prepared)
    assert ds.kind == "synthetic" and (ds.height, ds.width) == (64, 44)
    assert ds.has_parsing and ds.has_surface
    counts = ds.check()
    assert counts["train"] + counts["test"] == 15 and counts["test"] > 0
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["counts"]["images"] == 15
    assert "SynthPeople" in manifest["card"] and manifest["options"]["content"]["renderer_version"] >= 1
    train_ids = {identity_key(n) for n in ds.names("train")}
    test_ids = {identity_key(n) for n in ds.names("test")}
    assert train_ids and test_ids and not train_ids & test_ids
    for split in ("train", "test"):
        pairs = ds.pairs(split)
        assert pairs and all(identity_key(a) == identity_key(b) and a != b for a, b in pairs)
    assert len(ds.pairs("train")) == len(train_ids) * 3 * 2  # all ordered pairs of 3 poses


def test_keypoint_csv_round_trips_through_the_contract_readers(prepared):
    poses = read_keypoint_csv(prepared / "keypoints.csv")
    assert len(poses) == 15
    for i in range(5):
        record = json.loads(marker_path(prepared, i).read_text())
        for item in record["images"]:
            pose = poses[item["name"]]
            assert pose.visible.tolist() == item["visible"]
            xy = np.asarray(item["xy"], np.float32)[pose.visible]
            np.testing.assert_allclose(pose.xy[pose.visible], np.maximum(np.rint(xy), 0))
            assert pose.in_frame(64, 44)[pose.visible].all()


def test_images_parsing_and_surface_agree(prepared):
    from glocal_cli.data.correspondence import load_surface
    from glocal_cli.data.images import load_image
    from glocal_cli.data.parsing import read_parsing

    ds = PreparedDataset(prepared)
    name = ds.names("train")[0]
    image = load_image(ds.image_path(name))
    labels = read_parsing(ds.parsing_path(name))
    surface = load_surface(ds.surface_path(name))
    assert image.shape == (64, 44, 3) and labels.shape == surface.part.shape == (64, 44)
    assert np.array_equal(labels > 0, surface.part > 0)
    a, b = ds.pairs("train")[0]
    corr = pair_correspondence_files(prepared, b, a)
    assert corr.flow.shape == (64, 44, 2) and 0 < corr.visible.sum() <= (surface.part > 0).sum() * 2


def test_workers_give_byte_identical_files(prepared, tmp_path):
    out = tmp_path / "two-workers"
    prepare_synthetic(out, workers=2, show_progress=False, **SMALL)
    assert _files(out) == _files(prepared)


def test_resume_renders_only_unfinished_identities(prepared, tmp_path):
    import shutil

    out = tmp_path / "resume"
    shutil.copytree(prepared, out)
    marker_path(out, 2).unlink()
    (out / "images" / "synth_id00002_01.png").unlink()
    (out / "keypoints.csv").unlink()
    summary = prepare_synthetic(out, workers=1, show_progress=False, **SMALL)
    assert summary.rendered_identities == 1 and summary.skipped_identities == 4
    assert _files(out) == _files(prepared)
    again = prepare_synthetic(out, workers=1, show_progress=False, **SMALL)
    assert again.rendered_identities == 0


def test_fewer_identities_drop_the_extra_files(prepared, tmp_path):
    import shutil

    out = tmp_path / "shrink"
    shutil.copytree(prepared, out)
    prepare_synthetic(out, workers=1, show_progress=False, **{**SMALL, "identities": 3})
    assert not list((out / "images").glob("synth_id00004_*"))
    assert PreparedDataset(out).check()["train"] + PreparedDataset(out).check().get("test", 0) == 9


def test_refuses_a_different_dataset_unless_overwrite(prepared, tmp_path):
    import shutil

    out = tmp_path / "other"
    shutil.copytree(prepared, out)
    with pytest.raises(OutputExistsError, match="seed 7 .now 8.*--overwrite"):
        prepare_synthetic(out, workers=1, show_progress=False, **{**SMALL, "seed": 8})
    summary = prepare_synthetic(out, workers=1, show_progress=False, overwrite=True, **{**SMALL, "seed": 8})
    assert summary.rendered_identities == 5

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not a SynthPeople dataset"):
        prepare_synthetic(foreign, workers=1, show_progress=False, **SMALL)

    real = tmp_path / "real"
    write_manifest(real, kind="deepfashion", height=64, width=44)
    with pytest.raises(OutputExistsError, match="deepfashion dataset"):
        prepare_synthetic(real, workers=1, show_progress=False, **SMALL)
    prepare_synthetic(real, workers=1, show_progress=False, overwrite=True, **SMALL)
    assert PreparedDataset(real).kind == "synthetic"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": "66x44"}, "multiples of 4"),
        ({"size": "0x44"}, "multiples of 4"),
        ({"size": "64by44"}, "HEIGHTxWIDTH"),
        ({"identities": 0}, "at least one identity"),
        ({"poses_per_identity": 1}, "at least 2 poses"),
        ({"test_fraction": 1.0}, "test-fraction"),
    ],
)
def test_bad_options_are_one_line_config_errors(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message) as info:
        prepare_synthetic(tmp_path / "x", show_progress=False, **{**SMALL, **changes})
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x").exists()


def test_training_loader_reads_it_with_ground_truth_flow(prepared):
    datasets = pytest.importorskip("glocal_cli.data.datasets")
    item = datasets.PairDataset(prepared, split="train", with_flow=True)[0]
    assert tuple(item["source_image"].shape) == (3, 64, 44)
    assert tuple(item["flow"].shape) == (2, 64, 44) and float(item["flow_valid"].sum()) > 0


def test_cli_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from glocal_cli.cli.prepare_synthetic import synthetic_command

    app = typer.Typer()
    app.command()(synthetic_command)
    out = tmp_path / "cli"
    args = ["--out", str(out), "-n", "2", "-k", "2", "--size", "32x24", "-j", "1", "--preview"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file() and (out / PREVIEW_FILE).is_file()
    bad = CliRunner().invoke(app, ["--out", str(tmp_path / "bad"), "--size", "30x24"])
    assert bad.exit_code == 2 and "multiples of 4" in bad.output
