"""The default install detects keypoints out of the box (mediapipe), and a missing detector is one clear
error naming the install command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from glocal_cli.cli.transfer_cmd import transfer_command
from glocal_cli.data.backends import BackendSpec, require_detector
from glocal_cli.data.backends.mediapipe_backend import MEDIAPIPE_VERSION, mediapipe_status
from glocal_cli.errors import NotAvailableError
from tests.infer_helpers import EXAMPLES, REPO, save_tiny_weights

app = typer.Typer()
app.command("transfer")(transfer_command)
app.command("other")(lambda: None)
runner = CliRunner()


def _make_dry_run(target: str, tmp_path: Path) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-n", target, f"VENV={tmp_path / 'venv'}"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("target", ["install", "demo", "dev", "test", "mediapipe"])
def test_make_installs_mediapipe_without_its_numpy_pin(target, tmp_path):
    commands = _make_dry_run(target, tmp_path)
    lines = [ln for ln in commands.splitlines() if "pip" in ln and "install" in ln]
    assert any(re.search(r"-e \"?\.\[mediapipe", ln) for ln in lines), commands  # its real dependencies
    assert any("--no-deps" in ln and ln.rstrip().endswith("mediapipe") and "-c requirements/constraints.txt" in ln
               for ln in lines), commands


def test_the_constraints_pin_the_offline_release():
    text = (REPO / "requirements" / "constraints.txt").read_text()
    assert re.search(rf"^mediapipe=={re.escape(MEDIAPIPE_VERSION)}$", text, re.M)


def test_without_mediapipe_the_error_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` fails, as after `pip install -e .`
    usable, reason = mediapipe_status()
    assert not usable and "make install" in reason and f"pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}" in reason
    with pytest.raises(NotAvailableError, match=r"make install.*mediapipe\]"):
        require_detector(BackendSpec("auto"))
    with pytest.raises(NotAvailableError, match="make install"):
        require_detector("mediapipe")


def test_transfer_without_a_detector_stops_at_once(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    shutil.copy(EXAMPLES / "sources" / "person_00.png", tmp_path / "a.png")  # no sidecar pose
    weights = save_tiny_weights(tmp_path / "w")
    r = runner.invoke(app, ["transfer", "--source", str(tmp_path / "a.png"), "--pose",
                            str(EXAMPLES / "poses" / "pose_00.json"), "--out", str(tmp_path / "out"),
                            "--weights", str(weights), "--workers", "0", "--device", "cpu"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "make install" in text, r.output
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not mediapipe_status()[0], reason="mediapipe is not installed (make install installs it)")
def test_fresh_install_transfers_a_photo_without_a_pose_file(tmp_path):
    assert require_detector("auto").name == "mediapipe"
    shutil.copy(EXAMPLES / "sources" / "person_00.png", tmp_path / "a.png")  # no sidecar: detected
    weights = save_tiny_weights(tmp_path / "w")
    r = runner.invoke(app, ["transfer", "--source", str(tmp_path / "a.png"), "--pose",
                            str(EXAMPLES / "poses" / "pose_00.json"), "--out", str(tmp_path / "out"),
                            "--weights", str(weights), "--workers", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "a_to_pose_00.png").is_file()
