"""Observability of a run: rich progress, a plain-text log, TensorBoard scalars and image grids.

Only rank 0 creates a :class:`RunLogger` that writes anything; the other ranks get a silent one.
Nothing here synchronises with the device: callers hand over Python floats they already fetched at
a log interval, and image tensors at image intervals.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any

import torch

from glocal_cli.console import console, is_quiet, make_progress

__all__ = ["RunLogger", "format_losses", "read_validation"]


def read_validation(path: Path) -> list[dict[str, float | str]]:
    """The rows of a ``validation.jsonl`` (unreadable lines skipped: a run killed mid-write)."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _last_elapsed(path: Path) -> float:
    rows = read_validation(path)
    return float(rows[-1].get("elapsed_s", 0.0)) if rows else 0.0


def format_losses(values: dict[str, float], limit: int = 6) -> str:
    """``'l1 0.123 perc 1.02 ...'`` (the first ``limit`` entries)."""
    parts = []
    for key, value in list(values.items())[:limit]:
        parts.append(f"{key} {value:.4g}")
    return " ".join(parts)


class RunLogger:
    """Console progress + ``train.log`` + TensorBoard under ``<run>/``, rank 0 only."""

    def __init__(self, run_dir: Path | None, enabled: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled and run_dir is not None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._log = None
        self._tb: Any = None
        self._progress = None
        self._task = None
        self._stage = ""
        self._t0 = 0.0
        self._step0 = 0
        self._wall0 = time.time()
        self._elapsed0 = 0.0
        if not self.enabled:
            return
        assert self.run_dir is not None
        self._elapsed0 = _last_elapsed(self.run_dir / "validation.jsonl")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.run_dir / "train.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            except ImportError:
                self.message("TensorBoard is not installed: scalars and images go to train.log only")

    # -- text

    def message(self, text: str, console_too: bool = True) -> None:
        """One line to the text log (timestamped) and, unless quiet, to the console."""
        if not self.enabled:
            return
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        if self._log is not None:
            self._log.write(f"{stamp} {text}\n")
        if console_too and not is_quiet():
            if self._progress is not None:
                self._progress.console.print(text, markup=False, highlight=False)
            else:
                console.print(text, markup=False, highlight=False)

    def warn(self, text: str) -> None:
        """A warning: always on the console, and in the text log."""
        if not self.enabled:
            return
        self.message(f"warning: {text}", console_too=False)
        console.print(f"[yellow]warning:[/yellow] {text}")

    # -- progress

    def start_stage(self, stage: str, start_step: int, total_steps: int) -> None:
        """Open the progress bar of a stage (resumed runs start part-way)."""
        self._stage = stage
        self._t0 = time.perf_counter()
        self._step0 = start_step
        if not self.enabled or is_quiet():
            return
        self._progress = make_progress()
        self._progress.start()
        self._task = self._progress.add_task(f"train {stage}", total=total_steps, completed=start_step, status="")

    def update(self, step: int, losses: dict[str, float] | None = None) -> None:
        """Advance the bar to ``step``; show it/s and the given losses."""
        if self._progress is None or self._task is None:
            return
        status = f"{self.rate(step):.2f} it/s"
        if losses:
            status += "  " + format_losses(losses, limit=4)
        self._progress.update(self._task, completed=step, status=status)

    def rate(self, step: int) -> float:
        """Optimiser steps per second since the stage (or the resume) started."""
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        return (step - self._step0) / elapsed

    def end_stage(self) -> None:
        """Close the progress bar."""
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._task = None

    # -- the learning curve

    def validation(self, stage: str, step: int, metrics: dict[str, float]) -> None:
        """One line of ``<run>/validation.jsonl``: ``{"stage", "step", "time", "elapsed_s", **metrics}``, the
        learning curve a plot reads without TensorBoard (``scripts/plot_learning_curve.py``). ``elapsed_s``
        counts wall seconds since the run started, summed over resumed sessions (each session adds its time
        up to its last validation)."""
        if not self.enabled or self.run_dir is None:
            return
        path = self.run_dir / "validation.jsonl"
        now = time.time()
        row = {"stage": stage, "step": int(step), "time": round(now, 1),
               "elapsed_s": round(self._elapsed0 + now - self._wall0, 1), **{k: float(v) for k, v in metrics.items()}}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    # -- TensorBoard

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        """``prefix/name`` scalars at the global ``step``."""
        if self._tb is None:
            return
        for key, value in values.items():
            self._tb.add_scalar(f"{prefix}/{key}", value, step)

    def image(self, step: int, tag: str, grid: torch.Tensor) -> None:
        """A ``(3, H, W)`` image in [0, 1]."""
        if self._tb is None:
            return
        self._tb.add_image(tag, grid.clamp(0, 1).float().cpu(), step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Stop the bar, flush and close the files."""
        self.end_stage()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._log is not None:
            self._log.close()
            self._log = None
