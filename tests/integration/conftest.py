"""Fixtures of the integration tests: one torch thread, tiny SynthPeople sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Torch runs single-threaded here: on 2 shared cores, two OpenMP threads per process are many
    times slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_synth(tmp_path_factory: pytest.TempPathFactory, name: str, identities: int, poses: int, seed: int,
               test_fraction: float, size: tuple[int, int] = (32, 24)) -> Path:
    """A SynthPeople set (with surface maps) in a fresh temporary folder."""
    from glocal_cli.synth.dataset import prepare_synthetic

    out = tmp_path_factory.mktemp(name) / f"synth-{size[0]}"
    prepare_synthetic(out, identities=identities, poses_per_identity=poses, size=size, seed=seed, workers=1,
                      show_progress=False, test_fraction=test_fraction)
    return out
