"""``benchmarks/ablation.py`` end to end on a tiny SynthPeople set: train, evaluate, report, resume.

The study is shrunk (the ``tiny`` preset at 32x24, 2 steps per stage, one seed, two variants); the
code path is the script's own: dataset preparation, the shared semantic/flow stages, the generator
runs, the evaluation with the exact visibility, the table and the picture. A second call must skip
every finished run; a run cut short (only its step-1 checkpoint left) must continue through the
trainer's resume.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
METRIC_KEYS = ("ssim", "psnr", "l1", "l1_invisible", "l1_visible", "miou")


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation_script", REPO / "benchmarks" / "ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _argv(tmp_path: Path) -> list[str]:
    return ["--out", str(tmp_path / "out"), "--data", str(tmp_path / "synth"), "--size", "32x24", "--config", "tiny",
            "--identities", "5", "--poses", "3", "--steps", "2", "--seeds", "0", "--variants", "full,wo_fl",
            "--ckpt-every", "1", "--picture-pairs", "2"]


def test_ablation_end_to_end_and_resume(tmp_path: Path, ablation, capsys) -> None:
    assert ablation.main(_argv(tmp_path)) == 0
    out = tmp_path / "out"
    report = json.loads((out / "ablation.json").read_text())
    assert report["variants"] == ["full", "wo_fl"] and report["seeds"] == [0]
    assert report["steps"] == {"semantic": 2, "flow": 2, "generator": 2}
    assert report["pixels_invisible"] > 0 and report["pixels_visible"] > 0  # the exact visibility was read
    for variant in ("full", "wo_fl"):
        run = report["per_run"][f"{variant}/s0"]
        for key in METRIC_KEYS:
            assert math.isfinite(run[key]), (variant, key, run[key])
            assert key in report["summary"][variant]
        assert 0.0 <= run["miou"] <= 1.0 and run["l1"] > 0
        if run["fid"] is None:
            assert run["fid_note"].startswith("skipped")
        else:
            assert math.isfinite(run["fid"])
    diff = report["summary"]["wo_fl"]["l1_invisible"]["diff_vs_full"]
    assert diff["exceeds_spread"] is None  # one seed: no spread, no verdict
    assert math.isclose(diff["mean"], report["per_run"]["wo_fl/s0"]["l1_invisible"]
                        - report["per_run"]["full/s0"]["l1_invisible"])
    # the w/o FL generator read a semantic network trained with cross-entropy, the full one with focal loss
    assert "semantic_loss: ce" in (out / "runs" / "s0-semantic-ce" / "config.yaml").read_text()
    assert "semantic_loss: focal" in (out / "runs" / "s0-semantic-flow" / "config.yaml").read_text()
    table = (out / "ablation.md").read_text()
    assert "| full |" in table and "| w/o FL |" in table and "L1 invisible" in table
    with Image.open(out / "ablation.png") as im:
        assert im.width > 5 * 24 and im.height > 2 * 32  # 3 fixed columns + 2 variants, 2 rows
    assert len(report["picture_pairs"]) == 2

    # a second call skips every finished run and trains nothing
    capsys.readouterr()
    assert ablation.main(_argv(tmp_path)) == 0
    said = capsys.readouterr().out
    for name in ("s0-semantic-flow", "s0-semantic-ce", "s0-full", "s0-wo_fl"):
        assert f"{name}: finished earlier, skipped" in said
        timing = json.loads((out / "runs" / name / "ablation-timing.json").read_text())
        assert len(timing["calls"]) == 1

    # a run cut short after step 1 continues from its checkpoint through the trainer's resume
    run = out / "runs" / "s0-full"
    for path in [run / ablation.DONE_FILE, run / ablation.EVAL_FILE, *(run / "checkpoints" / "generator").glob("*.pt")]:
        if path.name != "step-00000001.pt":
            path.unlink()
    import shutil

    shutil.rmtree(run / "weights")
    assert ablation.main(_argv(tmp_path)) == 0
    said = capsys.readouterr().out
    assert "s0-full: resuming" in said and "s0-wo_fl: finished earlier, skipped" in said
    assert "generator: resumed at step 1/2" in (run / "train.log").read_text()
    again = json.loads((out / "ablation.json").read_text())
    assert math.isfinite(again["per_run"]["full/s0"]["l1_invisible"])
    assert len(json.loads((run / "ablation-timing.json").read_text())["calls"]) == 2


def test_another_plan_in_the_same_folder_is_refused(tmp_path: Path, ablation) -> None:
    ablation.base_config(ablation.parse_args(_argv(tmp_path)), tmp_path / "out")
    with pytest.raises(SystemExit, match="another training plan"):
        ablation.base_config(ablation.parse_args([*_argv(tmp_path), "--steps-generator", "3"]), tmp_path / "out")
