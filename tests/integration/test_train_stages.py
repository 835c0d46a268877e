"""``glocal train`` on a tiny SynthPeople set: every stage, resume equivalence, DDP, failures, CLI.

The config is shrunk (the ``tiny`` preset: 32x24 frame, a few channels, random VGG-19); the code
path is the real one. Torch runs single-threaded here: on 2 shared cores, two OpenMP threads per
process are many times slower than one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from glocal_cli.errors import DataError, OutputExistsError, TrainingError
from glocal_cli.train.checkpoint import load_checkpoint
from glocal_cli.train.trainer import train
from tests.integration.conftest import make_synth

REPO = Path(__file__).resolve().parents[2]
FAST = ["train.log_every=1", "train.val_every=2", "train.val_pairs=4", "train.image_every=2"]


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory) -> Path:
    """SynthPeople at 32x24: 6 identities x 4 poses (4 train identities, 2 test), with surface maps."""
    return make_synth(tmp_path_factory, "synth", identities=6, poses=4, seed=0, test_fraction=0.34)


def _run(data: Path, runs: Path, name: str, stage: str = "all", steps: int = 2, extra=(), **kw):
    return train(data, "tiny", [*FAST, *extra], stage=stage, runs_dir=runs, name=name, max_steps=steps,
                 device="cpu", **kw)


def test_every_stage_smoke(synth_data: Path, tmp_path: Path) -> None:
    from glocal_cli.models.generator import GLocalModel

    res = _run(synth_data, tmp_path, "smoke")
    assert [r.stage for r in res.stages] == ["semantic", "flow", "generator", "inpaint"]
    run = tmp_path / "smoke"
    for r in res.stages:
        assert r.step == 2 and not r.interrupted
        assert (run / "checkpoints" / r.stage / "last.pt").is_file()
        assert (run / "checkpoints" / r.stage / "best.pt").is_file()
        assert r.metrics, f"{r.stage}: no validation metrics"
    assert "val/epe" in res.stages[1].metrics  # SynthPeople: supervised flow with ground truth
    assert {"val/l1", "val/ssim", "val/psnr"} <= set(res.stages[2].metrics)
    assert {"val/l1", "val/baseline_copy_l1", "val/baseline_copy_ssim"} <= set(res.stages[2].initial_metrics)
    assert (run / "config.yaml").is_file() and (run / "results.json").is_file()
    log = (run / "train.log").read_text()
    assert "RANDOMLY initialised VGG-19" in log and "generator validation at step 2" in log
    assert any((run / "tensorboard").iterdir())
    state = load_checkpoint(run / "checkpoints" / "generator" / "last.pt")  # weights_only=True
    assert state["step"] == 2 and state["complete"] and "numpy_keys" in state["rng"]
    model = GLocalModel.from_pretrained(res.weights_dir)
    from glocal_cli.config import resolve_config

    saved = resolve_config(str(res.weights_dir / "training-config.yaml"))  # resolved config beside the weights
    assert saved.model == model.cfg
    assert model.height == 32 and model.width == 24
    assert res.inpaint_weights_dir == run / "weights-inpaint"
    GLocalModel.from_pretrained(res.inpaint_weights_dir)


def _params(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)
    return {**{f"G.{k}": v for k, v in state["model"].items()},
            **{f"D.{k}": v for k, v in state["discriminator"].items()}}


def test_resume_is_bit_exact(synth_data: Path, tmp_path: Path) -> None:
    """2 steps + resume + 2 steps == 4 straight steps (models, D, optimiser moments), bit for bit."""
    extra = ["train.val_every=3", "train.ckpt_every=1", "train.allow_untrained_semantic=true"]
    _run(synth_data, tmp_path, "straight", stage="generator", steps=4, extra=extra)
    _run(synth_data, tmp_path, "split", stage="generator", steps=2, extra=extra)
    res = _run(synth_data, tmp_path, "split", stage="generator", steps=4, extra=extra, resume="auto")
    assert res.stages[0].start_step == 2 and res.stages[0].step == 4
    a = _params(tmp_path / "straight" / "checkpoints" / "generator" / "last.pt")
    b = _params(tmp_path / "split" / "checkpoints" / "generator" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa = load_checkpoint(tmp_path / "straight" / "checkpoints" / "generator" / "last.pt")["optimizers"]
    sb = load_checkpoint(tmp_path / "split" / "checkpoints" / "generator" / "last.pt")["optimizers"]
    for opt in sa:
        for pid, st in sa[opt]["state"].items():
            assert torch.equal(st["exp_avg"], sb[opt]["state"][pid]["exp_avg"])
    # keep_last prunes the periodic checkpoints
    periodic = sorted((tmp_path / "straight" / "checkpoints" / "generator").glob("step-*.pt"))
    assert [p.name for p in periodic] == ["step-00000001.pt", "step-00000002.pt", "step-00000003.pt"]


_DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    from glocal_cli.train.trainer import train
    data, runs, name, batch = sys.argv[1:5]
    train(data, "tiny", ["train.log_every=1", "train.val_every=0", "model.ggr_norm=instance",
                         "data.flip_prob=0.5", f"train.batch_size={batch}", "train.allow_untrained_semantic=true"],
          stage="generator", runs_dir=runs, name=name, max_steps=2, device="cpu")
    """
)


def _zero_gradient_params(ckpt: Path) -> set[str]:
    """Generator parameters whose true gradient is 0 (e.g. a bias right before an InstanceNorm): Adam's
    first moment stays at float round-off (< 1e-8) there and its normalised step turns the round-off
    into +-lr updates whose sign depends on summation order."""
    from glocal_cli.config import resolve_config
    from glocal_cli.models.generator import GLocalModel

    cfg = resolve_config("tiny", ["model.ggr_norm=instance"])
    names = [f"G.generator.{n}" for n, _ in GLocalModel(cfg.model, 32, 24).generator.named_parameters()]
    moments = load_checkpoint(ckpt)["optimizers"]["generator"]["state"]
    return {names[i] for i, st in moments.items() if i < len(names) and st["exp_avg"].abs().max() < 1e-8}


def test_ddp_two_gloo_processes_match_one(synth_data: Path, tmp_path: Path) -> None:
    """torchrun, 2 CPU processes (gloo) x batch 1 == 1 process x batch 2 after 2 generator + D steps.

    Tolerance: 1e-5 on every parameter with a non-zero gradient (only the order of float sums
    differs); parameters with an exactly-zero true gradient only within Adam's step bound 2 * lr * steps.
    """
    script = tmp_path / "ddp_train.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    single = [sys.executable, str(script), str(synth_data), str(tmp_path), "single", "2"]
    subprocess.run(single, check=True, env=env, capture_output=True, timeout=300)
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(synth_data), str(tmp_path), "ddp", "1"]
    proc = subprocess.run(ddp, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = tmp_path / "single" / "checkpoints" / "generator" / "last.pt"
    a = _params(ckpt)
    b = _params(tmp_path / "ddp" / "checkpoints" / "generator" / "last.pt")
    degenerate = _zero_gradient_params(ckpt)
    assert len(degenerate) < 5
    diff = {k: (a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point()}
    worst = max(v for k, v in diff.items() if k not in degenerate)
    assert worst < 1e-5, f"largest parameter difference {worst:.3g}"
    assert max(diff.values()) <= 2 * 1e-4 * 2 + 1e-6
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "generator" / "last.pt")
    assert state["world_size"] == 2 and state["global_batch"] == 2


def test_nonfinite_loss_stops_and_names_it(synth_data: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"non-finite .*total.* loss between steps 1 and 1"):
        _run(synth_data, tmp_path, "nan", stage="semantic", extra=["loss.w_semantic=.nan"])
    assert not (tmp_path / "nan" / "weights").exists()


def test_ctrl_c_saves_and_resume_finishes(synth_data: Path, tmp_path: Path, monkeypatch) -> None:
    from glocal_cli.train import stages

    calls = {"n": 0}
    original = stages.SemanticStage.train_step

    def interrupting(self, batch, backward):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the handler only sets a flag: the step completes
        return original(self, batch, backward)

    monkeypatch.setattr(stages.SemanticStage, "train_step", interrupting)
    res = _run(synth_data, tmp_path, "intr", stage="semantic", steps=4)
    assert res.interrupted and res.stages[0].step == 2 and res.weights_dir is None
    assert load_checkpoint(tmp_path / "intr" / "checkpoints" / "semantic" / "last.pt")["step"] == 2
    monkeypatch.setattr(stages.SemanticStage, "train_step", original)
    res = _run(synth_data, tmp_path, "intr", stage="semantic", steps=4, resume="auto")
    assert not res.interrupted and res.stages[0].start_step == 2 and res.stages[0].step == 4


def test_existing_run_needs_resume_or_overwrite(synth_data: Path, tmp_path: Path) -> None:
    _run(synth_data, tmp_path, "dup", stage="flow", steps=1)
    with pytest.raises(OutputExistsError, match="--resume auto"):
        _run(synth_data, tmp_path, "dup", stage="flow", steps=1)
    res = _run(synth_data, tmp_path, "dup", stage="flow", steps=1, overwrite=True)
    assert res.stages[0].step == 1


def test_dataset_problems_are_one_line_errors(synth_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"images are 32x24 but --set asks for the frame 64x44"):
        train(synth_data, "synthetic-64", ["data.height=64", "data.width=44"], stage="semantic", runs_dir=tmp_path,
              name="m", max_steps=1, device="cpu")
    empty = tmp_path / "empty"
    import shutil

    shutil.copytree(synth_data, empty)
    (empty / "pairs-train.csv").write_text("from,to\n")
    with pytest.raises(DataError, match="no pairs"):
        _run(empty, tmp_path, "e", stage="semantic")
    with pytest.raises(DataError, match="global batch of 64"):
        _run(synth_data, tmp_path, "big", stage="semantic", extra=["train.batch_size=64"])


def test_cli_train_command(synth_data: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from glocal_cli.cli.train_cmd import train_command

    app = typer.Typer()
    app.command("train")(train_command)
    app.command("other")(lambda: None)
    args = ["train", "--data", str(synth_data), "--config", "tiny", "--set", "train.val_every=0", "--stage", "flow",
            "--out", str(tmp_path), "--name", "cli", "--max-steps", "1", "--device", "cpu", "--workers", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / "weights" / "config.json").is_file()
    result = CliRunner().invoke(app, [*args[:-6], "--stage", "bogus", "--out", str(tmp_path), "--name", "x"])
    assert result.exit_code == 2 and "bogus" in result.output


def test_static_background_visibility():
    import torch

    from glocal_cli.train.stages import static_background_flow

    body = torch.tensor([[[[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])  # target person on the first two pixels
    src_labels = torch.tensor([[[0, 3, 2], [0, 0, 5]]])  # source person covers (0,1), (0,2) and (1,2)
    visible = static_background_flow(body, src_labels)
    # body pixels are not background; a background pixel is visible unless the source person stands there
    assert visible[0, 0].tolist() == [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]


def test_learning_curve_and_checkpoint_export(synth_data: Path, tmp_path: Path) -> None:
    """validation.jsonl holds one row per validation (the learning curve), and a checkpoint exports to a
    weights folder that loads strictly and equals the checkpoint's model."""
    from glocal_cli.errors import InputError
    from glocal_cli.models.generator import GLocalModel
    from glocal_cli.train.export import export_checkpoint
    from glocal_cli.train.logging import read_validation

    _run(synth_data, tmp_path, "curve", stage="generator", steps=4, extra=["train.allow_untrained_semantic=true"])
    rows = read_validation(tmp_path / "curve" / "validation.jsonl")
    assert [(r["stage"], r["step"]) for r in rows] == [("generator", 0), ("generator", 2), ("generator", 4)]
    assert all({"ssim", "psnr", "elapsed_s"} <= set(r) for r in rows)
    assert [r["elapsed_s"] for r in rows] == sorted(r["elapsed_s"] for r in rows)
    ckpt = tmp_path / "curve" / "checkpoints" / "generator" / "last.pt"
    info = export_checkpoint(ckpt, tmp_path / "exported")
    assert info["stage"] == "generator" and info["step"] == 4
    model = GLocalModel.from_pretrained(tmp_path / "exported")
    state = load_checkpoint(ckpt)["model"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    with pytest.raises(InputError, match="already exists"):
        export_checkpoint(ckpt, tmp_path / "exported")
    export_checkpoint(ckpt, tmp_path / "exported", overwrite=True, discriminator=True)
    assert (tmp_path / "exported" / "config.json").is_file()


def test_semantic_holes_show_the_network_telea_filled_photos(synth_data: Path, tmp_path: Path, monkeypatch) -> None:
    """``train.semantic_holes``: that fraction of each batch reaches the semantic network as the photo with an
    irregular hole Telea-filled (what inpainting gives it), the rest as it is; the target stays the whole parsing."""
    import glocal_cli.data.datasets as datasets
    from glocal_cli.models.semantic import SemanticPredictor

    filled: list[torch.Tensor] = []
    seen: list[torch.Tensor] = []
    prefill = datasets.prefill_tensor

    def record_prefill(image, mask, *args, **kwargs):
        out = prefill(image, mask, *args, **kwargs)
        filled.append(out.clone())
        assert not torch.equal(out, image)  # a hole was filled
        return out

    forward = SemanticPredictor.forward

    def record_forward(self, image, *args, **kwargs):
        if self.training:
            seen.append(image.detach().clone())
        return forward(self, image, *args, **kwargs)

    monkeypatch.setattr(datasets, "prefill_tensor", record_prefill)
    monkeypatch.setattr(SemanticPredictor, "forward", record_forward)
    _run(synth_data, tmp_path, "holes", stage="semantic", steps=2,
         extra=["train.semantic_holes=0.5", "train.batch_size=4", "data.workers=0"])
    assert len(seen) == 2 and filled
    for batch in seen:  # items 0-1 are filled photos, items 2-3 are not
        assert all(any(torch.equal(batch[i], f) for f in filled) for i in range(2))
        assert not any(any(torch.equal(batch[i], f) for f in filled) for i in range(2, 4))
