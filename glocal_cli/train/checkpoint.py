"""Full training checkpoints: atomic writes, keep-last-K + best, RNG states as tensors.

A checkpoint is one ``torch.save`` file holding only tensors, numbers, strings, lists and dicts,
so that it is read back with ``torch.load(weights_only=True)``: model and optimiser state dicts,
schedulers, the AMP scaler, the step, the sampler position and every RNG state (Python's,
NumPy's, torch's CPU and CUDA generators, each converted to tensors/lists).

Files of a stage ``S`` in a run folder::

    <run>/checkpoints/S/step-00001000.pt   periodic (the last ``keep_last`` are kept)
    <run>/checkpoints/S/best.pt            best by validation (lower score is better)
    <run>/checkpoints/S/last.pt            the end of the stage (or of an interrupted run)
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glocal_cli.errors import TrainingError

__all__ = [
    "CheckpointManager",
    "atomic_torch_save",
    "capture_rng_state",
    "latest_checkpoint",
    "load_checkpoint",
    "restore_rng_state",
]

_STEP_RE = re.compile(r"^step-(\d+)\.pt$")


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a broken file for the user
        raise TrainingError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or state.get("format") != "glocal-train-checkpoint":
        raise TrainingError(f"{path}: not a glocal training checkpoint")
    return state


# ------------------------------------------------------------------------------------------- RNG


def capture_rng_state() -> dict[str, Any]:
    """Every RNG state as tensors/lists/numbers (``weights_only``-loadable)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python_version": int(version),
        "python_state": torch.tensor(internal, dtype=torch.int64),
        "python_gauss": None if gauss is None else float(gauss),
        "numpy_name": str(np_state[0]),
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_cached_gauss": float(np_state[4]),
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    internal = tuple(int(v) for v in state["python_state"].tolist())
    random.setstate((state["python_version"], internal, state["python_gauss"]))
    np.random.set_state(
        (
            state["numpy_name"],
            state["numpy_keys"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_cached_gauss"],
        )
    )
    torch.set_rng_state(state["torch_cpu"].cpu())
    cuda = state.get("torch_cuda") or []
    if cuda and torch.cuda.is_available():
        n = min(len(cuda), torch.cuda.device_count())
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda[:n]])


# ------------------------------------------------------------------------------------ the manager


def _periodic(folder: Path) -> list[tuple[int, Path]]:
    out = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = _STEP_RE.match(p.name)
            if m:
                out.append((int(m.group(1)), p))
    return sorted(out)


class CheckpointManager:
    """Periodic, last and best checkpoints of one stage in ``<run>/checkpoints/<stage>/``."""

    def __init__(self, run_dir: Path, stage: str, keep_last: int = 3) -> None:
        self.folder = Path(run_dir) / "checkpoints" / stage
        self.keep_last = max(int(keep_last), 1)

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.folder / "last.pt"

    def save_periodic(self, state: dict[str, Any], step: int) -> Path:
        """Write ``step-XXXXXXXX.pt`` and prune all but the newest ``keep_last``."""
        path = atomic_torch_save(state, self.folder / f"step-{step:08d}.pt")
        for _, old in _periodic(self.folder)[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_last(self, state: dict[str, Any]) -> Path:
        """Write ``last.pt`` (end of the stage, or an interrupted run)."""
        return atomic_torch_save(state, self.last_path)

    def save_best(self, state: dict[str, Any]) -> Path:
        """Write ``best.pt``."""
        return atomic_torch_save(state, self.best_path)

    def copy_to_best(self, src: Path) -> Path:
        """Make ``best.pt`` a copy of an already written checkpoint (no re-serialisation)."""
        fd, tmp = tempfile.mkstemp(prefix=".best.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, self.best_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return self.best_path

    def latest(self) -> Path | None:
        """The most advanced checkpoint of this stage (by stored step), or None."""
        return latest_checkpoint(self.folder)

    def weights_source(self) -> Path | None:
        """The checkpoint the next stage starts from: best, else last, else the latest periodic."""
        for p in (self.best_path, self.last_path):
            if p.is_file():
                return p
        periodic = _periodic(self.folder)
        return periodic[-1][1] if periodic else None


def _stored_step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("step", -1))
    except Exception:  # noqa: BLE001 - unreadable candidates are skipped
        return -1


def latest_checkpoint(folder: Path) -> Path | None:
    """The resumable checkpoint of a stage folder with the highest step (``last.pt`` wins ties)."""
    folder = Path(folder)
    candidates: list[tuple[int, int, Path]] = []
    periodic = _periodic(folder)
    if periodic:
        step, path = periodic[-1]
        candidates.append((step, 0, path))
    last = folder / "last.pt"
    if last.is_file():
        candidates.append((_stored_step(last), 1, last))
    if not candidates:
        return None
    return max(candidates)[2]
