"""The command-line root: help, version, info, unavailable subcommands, error edge."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from glocal_cli import __version__
from glocal_cli.cli.app import app

runner = CliRunner()


def test_help_lists_the_six_subcommands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("prepare-data", "train", "transfer", "inpaint", "eval", "info"):
        assert name in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_python_dash_m_runs_the_same_cli():
    out = subprocess.run([sys.executable, "-m", "glocal_cli", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    assert __version__ in out.stdout


def test_info_reports_environment():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    for word in ("torch", "cuda", "default weights", "optional backends"):
        assert word in result.output


def test_info_show_config_and_errors():
    result = runner.invoke(app, ["info", "--config", "tiny", "--set", "data.height=64"])
    assert result.exit_code == 0, result.output
    assert "height: 64" in result.output
    bad = runner.invoke(app, ["info", "--config", "tiny", "--set", "data.heigth=64"])
    assert bad.exit_code == 2
    assert "unknown key 'data.heigth'" in bad.output
    assert "Traceback" not in bad.output


def test_info_fields_lists_documented_keys():
    result = runner.invoke(app, ["info", "--fields"])
    assert result.exit_code == 0
    assert "data.height" in result.output


def test_info_shows_keypoint_backends_and_why_not(monkeypatch):
    import glocal_cli.data.backends as backends

    monkeypatch.setattr(backends, "backend_status",
                        lambda: {"mediapipe": (True, "mediapipe 9.9"), "mmpose": (False, "no mmcv ops")})
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "keypoint backends" in result.output
    assert "mediapipe 9.9" in result.output
    assert "not usable" in result.output and "no mmcv ops" in result.output


def test_info_survives_a_crashing_backend_probe(monkeypatch):
    import glocal_cli.data.backends as backends

    def boom():
        raise TypeError("protobuf clash")

    monkeypatch.setattr(backends, "backend_status", boom)
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "protobuf clash" in result.output


def test_info_reports_lpips_weights(monkeypatch, tmp_path):
    import glocal_cli.metrics.lpips as lpips
    from glocal_cli.env_info import lpips_weights_status
    from glocal_cli.errors import NotAvailableError

    heads, backbone = tmp_path / "alex.pth", tmp_path / "alexnet-owt-7be5be79.pth"

    def fake(net, path=None):
        if net == "alex":
            return lpips.LPIPSWeights(heads=heads, backbone=backbone)
        raise NotAvailableError("no vgg heads")

    import glocal_cli.env_info

    monkeypatch.setattr(glocal_cli.env_info, "find_lpips_weights", fake)
    status = lpips_weights_status()
    assert status["LPIPS alex (eval)"] == f"{heads} + {backbone.name}"
    assert status["LPIPS vgg (eval)"] == "missing (no vgg heads)"
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "LPIPS vgg" in result.output and "no vgg heads" in result.output


def test_the_root_loads_only_the_command_that_runs():
    """``glocal transfer ...`` builds the root with ``transfer`` alone (its module and library only); help, the
    version and unknown names get every command."""
    import subprocess
    import sys

    from glocal_cli.cli.app import _command_in, build_app

    assert _command_in(["-q", "transfer", "--source", "x"]) == "transfer"
    assert _command_in(["prepare-data", "ccp"]) == "prepare-data"
    assert _command_in(["--help"]) is None and _command_in(["bogus"]) is None and _command_in([]) is None
    import typer.main

    names = set(typer.main.get_command(build_app("transfer")).commands)
    assert names == {"transfer"}
    assert {"transfer", "inpaint", "train", "eval", "serve", "info", "prepare-data"} <= \
        set(typer.main.get_command(build_app()).commands)
    code = "import sys; sys.argv = ['glocal', 'transfer', '--help']; from glocal_cli.cli.app import main; main()"
    out = subprocess.run([sys.executable, "-c", code + "\n"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--source" in out.stdout
    probe = ("import sys; from glocal_cli.cli.app import build_app; build_app('transfer'); "
             "print(*(m in sys.modules for m in ('glocal_cli.train.trainer', 'glocal_cli.prepare', "
             "'glocal_cli.serve.app', 'glocal_cli.cli.transfer_cmd')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert loaded.stdout.split() == ["False", "False", "False", "True"], loaded.stdout + loaded.stderr
    bad = subprocess.run([sys.executable, "-m", "glocal_cli", "transfer", "--no-such-option"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2  # a usage error keeps its exit code through the quick exit
