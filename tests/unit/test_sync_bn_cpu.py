"""``train.sync_bn`` on CPU: torch's SyncBatchNorm refuses CPU tensors under a process group (gloo),
so the trainer skips the conversion there and warns instead of crashing at the first step."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from glocal_cli.config import resolve_config
from glocal_cli.train.distributed import DistInfo
from glocal_cli.train.trainer import _StopFlag, _Trainer


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def message(self, text: str, console_too: bool = True) -> None:  # noqa: ARG002
        pass


def _trainer(sync_bn: bool, world_size: int, tmp_path: Path) -> tuple[_Trainer, _Log]:
    cfg = resolve_config("tiny")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, ggr_norm="batch"),
                              train=dataclasses.replace(cfg.train, sync_bn=sync_bn))
    info = DistInfo(rank=0, local_rank=0, world_size=world_size, device=torch.device("cpu"),
                    backend="gloo" if world_size > 1 else "")
    log = _Log()
    return _Trainer(cfg, info, None, tmp_path, log, None, False, _StopFlag()), log  # type: ignore[arg-type]


def _sync_layers(model: nn.Module) -> int:
    return sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


def test_sync_bn_is_skipped_with_a_warning_on_cpu(tmp_path) -> None:
    trainer, log = _trainer(True, 2, tmp_path)
    assert any(isinstance(m, nn.BatchNorm2d) for m in trainer.model.modules())  # there is BatchNorm to convert
    assert _sync_layers(trainer.model) == 0
    assert len(log.warnings) == 1 and "train.sync_bn" in log.warnings[0] and "CUDA" in log.warnings[0]


def test_no_warning_without_sync_bn_or_ddp(tmp_path) -> None:
    for sync_bn, world in ((False, 2), (True, 1)):
        trainer, log = _trainer(sync_bn, world, tmp_path)
        assert _sync_layers(trainer.model) == 0 and log.warnings == []
