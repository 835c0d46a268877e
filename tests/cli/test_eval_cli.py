"""``glocal eval`` through Typer's CliRunner (a small app registering the command)."""

from __future__ import annotations

import shutil

import pytest
import torch
import typer
from typer.testing import CliRunner

from glocal_cli.cli.eval_cmd import eval_command
from glocal_cli.metrics.fid import FID_WEIGHTS_NAME

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """glocal (test root)."""

    app.command("eval")(eval_command)
    return app


@pytest.fixture()
def panels(shared_data, tmp_path):
    folder = tmp_path / "panels"
    folder.mkdir()
    for f in sorted((shared_data / "market1501" / "samples").glob("*.png"))[:4]:
        shutil.copy(f, folder / f.name)
    return folder


def test_eval_panels_writes_report_and_table(panels, tmp_path):
    out = tmp_path / "report"
    args = ["eval", "--panel-dir", str(panels), "--protocol", "paper", "--metrics", "ssim,psnr_uint8_wraparound",
            "--out", str(out), "--workers", "0", "--worst-k", "2"]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "SSIM" in result.output and "uint8-wraparound" in result.output and "4 pairs" in result.output
    for name in ("metrics.json", "report.md", "per_image.csv", "histogram.png", "worst.png"):
        assert (out / name).is_file(), name
    again = runner.invoke(_app(), args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert runner.invoke(_app(), [*args, "--overwrite"]).exit_code == 0


def test_missing_inception_weights_fail_that_metric_only(panels, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    result = runner.invoke(_app(), ["eval", "--panel-dir", str(panels), "--metrics", "ssim,psnr,fid",
                                    "--workers", "0"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert FID_WEIGHTS_NAME in text and "--inception-weights" in text
    assert "1 metric(s) failed: fid" in text
    assert "PSNR (dB)" in text and "ok" in text  # the other metrics are still reported


def test_option_errors_exit_with_one_line(panels):
    result = runner.invoke(_app(), ["eval", "--panel-dir", str(panels), "--protocol", "gfal"])
    assert result.exit_code == 2 and "did you mean 'gfla'" in result.output
    result = runner.invoke(_app(), ["eval", "--panel-dir", str(panels), "--panels", "source,-,target,-,output"])
    assert result.exit_code == 1 and "no image width is divisible into 5 panels" in " ".join(result.output.split())


def test_root_app_wires_eval(panels):
    from glocal_cli.cli.app import app

    result = runner.invoke(app, ["eval", "--panel-dir", str(panels), "--metrics", "ssim", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "SSIM" in result.output


def test_model_mode_runs_inference_then_evaluates(tmp_path):
    from glocal_cli.config import resolve_config
    from glocal_cli.models.generator import GLocalModel
    from glocal_cli.synth.dataset import prepare_synthetic

    torch.manual_seed(0)
    GLocalModel(resolve_config("tiny").model, 32, 24).save_pretrained(tmp_path / "w")
    prepare_synthetic(tmp_path / "d", identities=3, poses_per_identity=3, size=(32, 24), seed=0, workers=1,
                      show_progress=False)
    out = tmp_path / "o"
    args = ["eval", "--weights", str(tmp_path / "w"), "--data", str(tmp_path / "d"), "--pairs-limit", "2",
            "--out", str(out), "--metrics", "ssim,psnr", "--workers", "0", "--device", "cpu"]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "2 generated" in text and "2 pairs" in text and "SSIM" in text
    assert len(list((out / "generated").glob("*.png"))) == 2 and (out / "metrics.json").is_file()
    again = runner.invoke(_app(), [*args, "--overwrite"])
    assert again.exit_code == 0 and "2 generated" in " ".join(again.output.split())
    bad = runner.invoke(_app(), ["eval", "--weights", str(tmp_path / "w"), "--out", str(out)])
    assert bad.exit_code == 2 and "--data" in bad.output
    bad = runner.invoke(_app(), [*args, "--generated", str(out / "generated")])
    assert bad.exit_code == 2 and "one input mode" in " ".join(bad.output.split())
