"""``glocal transfer`` through Typer's CliRunner: options, bad input, exit codes."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from glocal_cli.cli.transfer_cmd import transfer_command
from tests.infer_helpers import copy_examples, openpose_json, save_tiny_weights, standing_pose

app = typer.Typer()
app.command("transfer")(transfer_command)
app.command("other")(lambda: None)  # two commands keep the subcommand name on the command line
runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("w"))


def run(*args):
    return runner.invoke(app, ["transfer", *map(str, args), "--workers", "0", "--device", "cpu"])


def test_folder_transfer_and_summary(tmp_path, weights):
    src, poses = copy_examples(tmp_path, 1, 2)
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--weights", weights, "--grid")
    assert r.exit_code == 0, r.output
    assert "transfer summary" in r.output and len(list((tmp_path / "o").glob("*_grid.png"))) == 2


def test_odd_images_and_pose_warnings(tmp_path, weights):
    base = np.zeros((60, 40, 3), np.uint8)
    base[10:50, 10:30] = (200, 80, 40)
    d = tmp_path / "src"
    d.mkdir()
    Image.fromarray(base[..., 0]).save(d / "gray.png")
    Image.fromarray(np.dstack([base, np.full((60, 40), 128, np.uint8)]), "RGBA").save(d / "rgba.png")
    Image.fromarray(base[..., 0].astype(np.uint16) * 257).save(d / "deep.png")
    Image.fromarray(base).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(np.zeros((3000, 2000, 3), np.uint8)).save(d / "huge.jpg")
    for stem, hw in (("gray", (60, 40)), ("rgba", (60, 40)), ("deep", (60, 40)), ("cmyk", (60, 40)),
                     ("huge", (3000, 2000))):
        openpose_json(d / f"{stem}.json", [standing_pose(*hw)])
    far = standing_pose(60, 40)
    far[:12, 0] += 500  # most points far outside the canvas
    two = [standing_pose(60, 40, score=0.2), far * np.array([1, 1, 0.9], np.float32)]
    openpose_json(tmp_path / "target.json", two)
    r = run("--source", d, "--pose", tmp_path / "target.json", "--out", tmp_path / "o", "--weights", weights,
            "--set", "infer.max_input_side=1024", "--set", "infer.pose_frame=source")
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "o").glob("*.png"))) == 5
    text = " ".join(r.output.split())
    assert "downscaled" in text and "kept person 1" in text
    assert "outside the frame" in text and "keypoints visible" in text


def test_unreadable_image_and_empty_pose_fail_with_exit_1(tmp_path, weights):
    d = tmp_path / "src"
    d.mkdir()
    (d / "bad.jpg").write_bytes(b"garbage")
    openpose_json(tmp_path / "none.json", [])
    r = run("--source", d / "bad.jpg", "--pose", tmp_path / "none.json", "--source-pose", tmp_path / "none.json",
            "--out", tmp_path / "o", "--weights", weights)
    assert r.exit_code == 1
    assert "bad.jpg" in " ".join(r.output.split()) and (tmp_path / "o" / "failures.csv").is_file()
    src, _ = copy_examples(tmp_path / "ex", 1, 0)
    r = run("--source", src, "--pose", tmp_path / "none.json", "--out", tmp_path / "o2", "--weights", weights)
    assert r.exit_code == 1 and "holds no people" in (tmp_path / "o2" / "failures.csv").read_text()


def test_bad_weights_and_output_file_write_nothing(tmp_path, weights):
    import shutil

    src, poses = copy_examples(tmp_path, 1, 1)
    cut = tmp_path / "cut"
    shutil.copytree(weights, cut)
    f = cut / "semantic" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--weights", cut)
    assert r.exit_code == 1 and "semantic" in r.output and not (tmp_path / "o").exists()
    (tmp_path / "file").write_text("x")
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "file", "--weights", weights)
    assert r.exit_code == 1 and "is an existing file" in " ".join(r.output.split())


def test_no_weights_says_so(tmp_path, monkeypatch):
    import glocal_cli.paths

    monkeypatch.setattr(glocal_cli.paths, "default_weights_dir", lambda: None)
    src, poses = copy_examples(tmp_path, 1, 1)
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--video", tmp_path / "a.gif")
    assert r.exit_code == 0, r.output
    assert "NO WEIGHTS FOUND" in r.output and "randomly initialised" in " ".join(r.output.split())
    assert (tmp_path / "a.gif").is_file()


def test_video_is_not_replaced_without_overwrite(tmp_path):
    src, poses = copy_examples(tmp_path, 1, 2)
    video = tmp_path / "mine.gif"
    video.write_bytes(b"a file the user made")
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--video", video)
    assert r.exit_code == 0, r.output
    assert video.read_bytes() == b"a file the user made" and "--overwrite" in " ".join(r.output.split())
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--video", video, "--overwrite")
    assert r.exit_code == 0, r.output
    assert video.read_bytes()[:3] == b"GIF"
