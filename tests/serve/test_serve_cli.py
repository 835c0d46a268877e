"""``glocal serve`` on the command line: options, and failing fast before loading anything."""

from __future__ import annotations

import socket

import pytest
import typer
from typer.testing import CliRunner

from glocal_cli.cli.serve_cmd import serve_command
from glocal_cli.serve.app import is_loopback

app = typer.Typer()
app.command("serve")(serve_command)
app.command("other")(lambda: None)  # two commands keep the subcommand name on the command line
runner = CliRunner()


def test_help_lists_the_options():
    r = runner.invoke(app, ["serve", "--help"])
    assert r.exit_code == 0
    for opt in ("--weights", "--host", "--port", "--out", "--max-upload-mb", "--keypoints"):
        assert opt in r.output


def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = runner.invoke(app, ["serve", "--port", str(port), "--out", str(tmp_path / "o"),
                                "--weights", str(tmp_path / "no-weights")])
    assert r.exit_code == 2 and "cannot listen" in r.output and "--port" in r.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, text", [
    (["--keypoints", "openpose"], "keypoints"),
    (["--examples", "no/such/folder"], "examples folder not found"),
    (["--set", "serve.max_upload_mb=-1"], "max_upload_mb"),
])
def test_bad_options_fail_before_serving(args, text, tmp_path):
    r = runner.invoke(app, ["serve", "--out", str(tmp_path / "o"), *args])
    assert r.exit_code in (1, 2) and text in r.output, r.output


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
