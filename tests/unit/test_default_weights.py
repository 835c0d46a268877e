"""Which weights a command uses when none is given: the transfer default and the inpainting default."""

from __future__ import annotations

from pathlib import Path

from glocal_cli import paths


def test_inpainting_default_prefers_its_own_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("GLOCAL_WEIGHTS", raising=False)
    monkeypatch.delenv("GLOCAL_INPAINT_WEIGHTS", raising=False)
    repo = tmp_path / "repo"
    (repo / "weights" / "default").mkdir(parents=True)
    (repo / "weights" / "default" / "config.json").write_text("{}")
    monkeypatch.setattr(paths, "REPO_DIR", repo)
    # no weights/inpaint: inpainting uses the transfer weights
    assert paths.default_inpaint_weights_dir() == repo / "weights" / "default"
    (repo / "weights" / "inpaint").mkdir()
    assert paths.default_inpaint_weights_dir() == repo / "weights" / "default"  # a folder without config.json
    (repo / "weights" / "inpaint" / "config.json").write_text("{}")
    assert paths.default_inpaint_weights_dir() == repo / "weights" / "inpaint"
    assert paths.default_weights_dir() == repo / "weights" / "default"
    # a user's $GLOCAL_WEIGHTS means their weights for both tasks; $GLOCAL_INPAINT_WEIGHTS for inpainting alone
    monkeypatch.setenv("GLOCAL_WEIGHTS", str(tmp_path / "mine"))
    assert paths.default_inpaint_weights_dir() == Path(tmp_path / "mine")
    monkeypatch.setenv("GLOCAL_INPAINT_WEIGHTS", str(tmp_path / "fill"))
    assert paths.default_inpaint_weights_dir() == Path(tmp_path / "fill")
    assert paths.default_weights_dir() == Path(tmp_path / "mine")
