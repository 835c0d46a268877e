"""The shared steps of the CPU weight recipes (``train_default_weights.sh``, ``train_demo_weights.sh``).

A preset with the CPU settings of these scripts (a randomly initialised VGG-19 for the perceptual loss, so
nothing is downloaded; three cheap perceptual layers; one loader worker) written as the run's YAML, the
staged training (resumed when re-run), and the export of the trained weights into a folder, atomically and
keeping the folder's ``MODEL_CARD.md``.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import yaml

from glocal_cli.config import resolve_config, to_dict
from glocal_cli.train.checkpoint import latest_checkpoint
from glocal_cli.train.export import export_checkpoint
from glocal_cli.train.trainer import train


def cpu_config(preset: str, header: str, runs: Path, name: str, steps: str = "", model: dict | None = None,
               train: dict | None = None, loss: dict | None = None, data: dict | None = None) -> Path:
    """``runs/<name>.yaml``: ``preset`` with the CPU settings; ``steps`` ``"SEMANTIC,FLOW,GENERATOR"`` overrides
    the stage lengths, ``model`` the whole architecture (e.g. a weights folder's, to start from it), ``train``
    and ``loss`` some training and loss keys, ``data`` some data keys (e.g. the frame). (The perceptual layer list and its weights change together, so they go through a file,
    not ``--set``.)"""
    cfg = to_dict(resolve_config(preset))
    if model:
        cfg["model"].update(model)
    if train:
        cfg["train"].update(train)
    if loss:
        cfg["loss"].update(loss)
    if data:
        cfg["data"].update(data)
    cfg["loss"].update(allow_random_vgg=True, vgg_download=False,
                       perceptual_layers=["relu1_1", "relu2_1", "relu3_1"], perceptual_layer_weights=[1.0, 1.0, 1.0])
    cfg["data"]["workers"] = 1
    if steps:
        s, f, g = (int(x) for x in steps.split(","))
        cfg["train"].update(steps_semantic=s, steps_flow=f, steps_generator=g)
    config = runs / f"{name}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"# {header}\n" + yaml.safe_dump(cfg, sort_keys=False))
    return config


def export_weights(weights: Path, out: Path) -> int:
    """Replace ``out`` by a copy of ``weights`` (through ``out.tmp``, so a failed copy leaves ``out`` as it
    was), keeping ``out/MODEL_CARD.md``; returns the exported size in bytes."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(weights, tmp)
    card = out / "MODEL_CARD.md"
    if card.is_file():
        shutil.copy2(card, tmp / "MODEL_CARD.md")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def train_and_export(data: Path, config: Path, runs: Path, name: str, out: Path, t0: float,
                     weights: Path | None = None) -> None:
    """Train every stage of ``config`` on ``data`` (resuming ``runs/<name>``; initialised from ``weights`` when
    given) on the CPU and export the weights."""
    result = train(data, config, stage="all", runs_dir=runs, name=name, resume="auto", device="cpu", weights=weights)
    if result.interrupted or result.weights_dir is None:
        sys.exit("training interrupted: run this script again to continue")
    size = export_weights(result.weights_dir, out)
    print(f"exported {out} ({size / 2**20:.1f} MB) in {(time.perf_counter() - t0) / 60:.1f} min; "
          f"validation: {result.stages[-1].metrics}")


def export_latest(run: Path, out: Path) -> None:
    """Export the run's latest stage as it stands (a run stopped part-way) into ``out``, as
    :func:`export_weights` does (atomically, keeping ``out/MODEL_CARD.md``): its best-by-validation
    checkpoint, else its newest one."""
    from glocal_cli.train.config import STAGES

    found = None
    for stage in reversed(STAGES):
        folder = run / "checkpoints" / stage
        if folder.is_dir():
            found = folder / "best.pt" if (folder / "best.pt").is_file() else latest_checkpoint(folder)
            if found is not None:
                break
    if found is None:
        sys.exit(f"{run}: no checkpoint to export")
    tmp = out.with_name(out.name + ".export")
    shutil.rmtree(tmp, ignore_errors=True)
    info = export_checkpoint(found, tmp, discriminator=True)
    size = export_weights(tmp, out)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"exported {found} ({info['stage']} step {info['step']}/{info['total_steps']}) to {out} "
          f"({size / 2**20:.1f} MB)")
