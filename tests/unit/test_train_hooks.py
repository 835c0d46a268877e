"""The step loop of ``glocal train`` and its hooks (glocal_cli/train/trainer.py): the order in which the loop
calls the hooks, and a custom hook added to a stage's list, which sees every optimiser step.

The config is shrunk (the ``tiny`` preset on a 32x24 SynthPeople set, a few steps); the code path is the
real one: :func:`train` with the stage's hook list extended by one hook (``_Trainer._hooks``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from glocal_cli.errors import TrainingError
from glocal_cli.train import trainer as trainer_mod
from glocal_cli.train.checkpoint import load_checkpoint
from glocal_cli.train.trainer import TrainResult, train
from tests.integration.conftest import make_synth

FAST = ["train.log_every=1", "train.val_every=2", "train.val_pairs=4", "train.image_every=2"]
Run = trainer_mod._StageRun
BUILT_IN = ["_ScheduleHook", "_LogHook", "_StopHook", "_ValidationHook", "_CheckpointHook"]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synth(tmp_path_factory, "synth-hooks", identities=6, poses=4, seed=0, test_fraction=0.34)


class _Probe(trainer_mod._Hook):
    """A custom hook: records what it sees at each point of the loop."""

    def __init__(self) -> None:
        self.before_steps: list[int] = []
        self.steps: list[int] = []
        self.losses: list[dict[str, float]] = []
        self.lr_steps: list[int] = []
        self.outcome = ""
        self.stages = 0

    def before_stage(self, run: Run) -> None:
        self.stages += 1

    def before_step(self, run: Run) -> None:
        self.before_steps.append(run.step)

    def after_step(self, run: Run) -> None:
        self.steps.append(run.step)
        self.losses.append({k: float(v) for k, v in run.losses.items()})
        self.lr_steps.append(next(iter(run.scheds.values())).last_epoch)

    def after_stage(self, run: Run) -> None:
        self.outcome = run.outcome


class _Recorded(trainer_mod._Hook):
    """Wraps a hook and notes each call as ``(hook class, method, run.step)``."""

    def __init__(self, inner: trainer_mod._Hook, calls: list[tuple[str, str, int]]) -> None:
        self.inner, self.calls = inner, calls

    def _call(self, method: str, run: Run) -> None:
        self.calls.append((type(self.inner).__name__, method, run.step))
        getattr(self.inner, method)(run)

    def before_stage(self, run: Run) -> None:
        self._call("before_stage", run)

    def before_step(self, run: Run) -> None:
        self._call("before_step", run)

    def after_step(self, run: Run) -> None:
        self._call("after_step", run)

    def after_stage(self, run: Run) -> None:
        self._call("after_stage", run)


def _add_hook(monkeypatch: pytest.MonkeyPatch, probe: _Probe,
              calls: list[tuple[str, str, int]] | None = None) -> None:
    """Every stage's hook list gets ``probe`` at its end (and, with ``calls``, every hook is recorded)."""
    built_in = trainer_mod._Trainer._hooks

    def hooks(self: trainer_mod._Trainer, *args: Any) -> list[trainer_mod._Hook]:
        found = [*built_in(self, *args), probe]
        return found if calls is None else [_Recorded(h, calls) for h in found]

    monkeypatch.setattr(trainer_mod._Trainer, "_hooks", hooks)


def _run(data: Path, runs: Path, name: str, steps: int, extra: Sequence[str] = (), **kw: Any) -> TrainResult:
    return train(data, "tiny", [*FAST, *extra], stage="semantic", runs_dir=runs, name=name, max_steps=steps,
                 device="cpu", **kw)


def test_the_loop_calls_the_hooks_in_list_order_around_every_step(synth_data: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, int]] = []
    probe = _Probe()
    _add_hook(monkeypatch, probe, calls)
    res = _run(synth_data, tmp_path, "order", steps=3, extra=["train.grad_accum=2", "train.ckpt_every=2"])
    assert res.stages[0].step == 3 and not res.interrupted

    names = [*BUILT_IN, "_Probe"]
    expected = [(n, "before_stage", 0) for n in names]
    for step in (1, 2, 3):
        expected += [(n, "before_step", step - 1) for n in names]
        expected += [(n, "after_step", step) for n in names]
    expected += [(n, "after_stage", 3) for n in names]
    assert calls == expected


def test_a_custom_hook_sees_every_step(synth_data: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    probe = _Probe()
    _add_hook(monkeypatch, probe)
    res = _run(synth_data, tmp_path, "probe", steps=4, extra=["train.ckpt_every=1"])
    assert probe.stages == 1 and probe.outcome == "done"
    assert probe.before_steps == [0, 1, 2, 3] and probe.steps == [1, 2, 3, 4]
    # each step's losses, finite, on the host only when a hook asks for them
    assert all("total" in losses and all(map(math.isfinite, losses.values())) for losses in probe.losses)
    assert len({losses["total"] for losses in probe.losses}) == 4
    assert probe.lr_steps == [1, 2, 3, 4]  # the schedule hook, earlier in the list, has stepped already
    # the built-in hooks did their part around the custom one
    run = tmp_path / "probe"
    assert res.stages[0].step == 4 and res.stages[0].metrics
    assert [p.name for p in sorted((run / "checkpoints" / "semantic").glob("step-*.pt"))] == [
        "step-00000001.pt", "step-00000002.pt", "step-00000003.pt"]
    assert load_checkpoint(run / "checkpoints" / "semantic" / "last.pt")["step"] == 4
    assert "semantic step 4/4" in (run / "train.log").read_text()


def test_a_resumed_stage_shows_the_hooks_only_the_remaining_steps(synth_data: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _run(synth_data, tmp_path, "resume", steps=2)
    probe = _Probe()
    _add_hook(monkeypatch, probe)
    res = _run(synth_data, tmp_path, "resume", steps=4, resume="auto")
    assert res.stages[0].start_step == 2 and probe.steps == [3, 4] and probe.outcome == "done"


def test_a_skipped_update_is_no_step_and_an_error_ends_the_stage(synth_data: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-finite loss skips the update (before_step, no after_step); past train.max_nan_skips the stage
    stops, the hooks' after_stage sees the error, and no last.pt is written."""
    probe = _Probe()
    _add_hook(monkeypatch, probe)
    with pytest.raises(TrainingError, match="non-finite"):
        _run(synth_data, tmp_path, "nan", steps=3, extra=["loss.w_semantic=.nan", "train.max_nan_skips=1"])
    assert probe.before_steps == [0, 0] and probe.steps == [] and probe.outcome == "error"
    assert not (tmp_path / "nan" / "checkpoints" / "semantic" / "last.pt").exists()

