"""``glocal inpaint`` through Typer's CliRunner."""

from __future__ import annotations

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from glocal_cli.cli.inpaint_cmd import inpaint_command
from tests.infer_helpers import copy_examples, save_tiny_weights

app = typer.Typer()
app.command("inpaint")(inpaint_command)
app.command("other")(lambda: None)
runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("w"))


def run(*args):
    return runner.invoke(app, ["inpaint", *map(str, args), "--workers", "0", "--device", "cpu"])


def test_irregular_semantic_and_file_masks(tmp_path, weights):
    src, _ = copy_examples(tmp_path, 2, 0)
    r = run("--source", src, "--out", tmp_path / "a", "--weights", weights, "--ratio-bin", "4", "--grid")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "a").glob("*_masked.png")) == ["person_00_masked.png",
                                                                             "person_01_masked.png"]
    r = run("--source", src, "--out", tmp_path / "b", "--weights", weights, "--mask", "semantic",
            "--classes", "hair,upper")
    assert r.exit_code == 0, r.output
    mask = np.zeros((100, 80), np.uint8)
    mask[20:60, 10:50] = 180  # another size and not binary
    Image.fromarray(mask).save(tmp_path / "m.png")
    r = run("--source", src / "person_00.png", "--out", tmp_path / "c", "--weights", weights,
            "--mask", tmp_path / "m.png")
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "resized" in text and "not binary" in text


def test_unknown_class_is_a_clear_error(tmp_path, weights):
    src, _ = copy_examples(tmp_path, 1, 0)
    r = run("--source", src, "--out", tmp_path / "a", "--weights", weights, "--mask", "semantic", "--classes", "hiar")
    assert r.exit_code == 1 and "did you mean 'hair'" in r.output
