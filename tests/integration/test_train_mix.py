"""``glocal train`` on several prepared datasets at once: mixed batches, per-dataset validation, the mixed
sampler's draws, frame checks, resume, the CLI, and a dataset left out of a stage it cannot serve.

Two tiny SynthPeople sets (the ``tiny`` preset: 32x24, a few channels, random VGG-19) of different sizes;
the code path is the real one. Torch runs single-threaded here (see conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from glocal_cli.config import resolve_config
from glocal_cli.data.datasets import PairDataset
from glocal_cli.data.mix import MixedPairDataset, MixedSampler, dataset_labels, mix_probabilities
from glocal_cli.errors import ConfigError, DataError
from glocal_cli.train.checkpoint import load_checkpoint
from glocal_cli.train.logging import read_validation
from glocal_cli.train.trainer import train
from tests.integration.conftest import make_synth

REPO = Path(__file__).resolve().parents[2]
FAST = ["train.log_every=1", "train.val_every=2", "train.val_pairs=4", "train.image_every=2"]


def _named(path: Path, name: str) -> Path:
    """The dataset folder renamed (the folder's name is the dataset's label in metric names)."""
    return Path(shutil.move(str(path), str(path.parent / name)))


@pytest.fixture(scope="module")
def two_sets(tmp_path_factory) -> tuple[Path, Path]:
    """``synth-a`` (4 identities x 3 poses) and ``synth-b`` (6 x 3, another seed), both 32x24 with surface maps."""
    a = make_synth(tmp_path_factory, "mix-a", identities=4, poses=3, seed=1, test_fraction=0.25)
    b = make_synth(tmp_path_factory, "mix-b", identities=6, poses=3, seed=2, test_fraction=0.34)
    return _named(a, "synth-a"), _named(b, "synth-b")


def _run(data, runs: Path, name: str, stage: str, steps: int = 2, extra=(), **kw):
    return train(data, "tiny", [*FAST, *extra], stage=stage, runs_dir=runs, name=name, max_steps=steps,
                 device="cpu", **kw)


def _without_parsing(src: Path, dest: Path) -> Path:
    """A copy of ``src`` whose manifest says it has no parsing maps (and has none)."""
    shutil.copytree(src, dest)
    shutil.rmtree(dest / "parsing")
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["has_parsing"] = False
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


# ----------------------------------------------------------------------------------- the sampler


def test_draws_follow_the_mix_weights() -> None:
    """Over many epochs each dataset's share of the drawn items is its mix weight (4 sigma ~ 0.02), and
    within an epoch a dataset hands out all its items before repeating one."""
    sizes, weights = [7, 20, 5], (1.0, 2.0, 5.0)
    sampler = MixedSampler(sizes, weights, batch_size=4, seed=3)
    offsets = np.cumsum([0, *sizes])

    def locate(i: int) -> tuple[int, int]:  # (dataset, item), as MixedPairDataset.locate
        k = int(np.searchsorted(offsets, i, side="right")) - 1
        return k, i - int(offsets[k])

    counts: Counter[int] = Counter()
    for epoch in range(300):
        sampler.set_epoch(epoch)
        drawn = [locate(i) for i, _ in sampler]
        counts.update(k for k, _ in drawn)
        for k, n in enumerate(sizes):  # no repeat within a dataset's first len(dataset) draws of the epoch
            items = [j for kk, j in drawn if kk == k][:n]
            assert len(set(items)) == len(items)
    total = sum(counts.values())
    assert total == 300 * 32
    for k, w in enumerate(weights):
        assert abs(counts[k] / total - w / sum(weights)) < 0.02, (k, counts[k] / total)
    # no weights: each dataset's share of the pairs
    default = MixedSampler(sizes, (), batch_size=4, seed=3)
    assert default.weights == pytest.approx([n / sum(sizes) for n in sizes])
    which = np.concatenate([default.draws(e)[0] for e in range(300)])
    for k, n in enumerate(sizes):
        assert abs(float(np.mean(which == k)) - n / sum(sizes)) < 0.02


def test_sampler_is_deterministic_resumable_and_sharded() -> None:
    """A function of (seed, epoch): resuming at a batch yields the rest of the epoch, and 2 ranks x batch 2
    get disjoint shares that interleave into 1 rank x batch 4's stream (items and per-sample seeds)."""
    sizes, weights = [9, 14], (3.0, 1.0)
    one = MixedSampler(sizes, weights, batch_size=4, seed=5)
    one.set_epoch(2)
    full = list(one)
    again = MixedSampler(sizes, weights, batch_size=4, seed=5)
    again.set_epoch(2)
    assert list(again) == full
    other = MixedSampler(sizes, weights, batch_size=4, seed=6)
    other.set_epoch(2)
    assert list(other) != full
    again.set_epoch(2)
    again.set_position(3)
    assert len(again) == len(full) - 3 * 4
    assert list(again) == full[3 * 4:]
    ranks = []
    for rank in range(2):
        s = MixedSampler(sizes, weights, batch_size=2, num_replicas=2, rank=rank, seed=5)
        s.set_epoch(2)
        ranks.append(list(s))
    seeds = [[sd for _, sd in r] for r in ranks]
    assert not set(seeds[0]) & set(seeds[1])  # disjoint global positions
    # global position of rank r, batch b, slot j: b * 4 + j * 2 + r (DistributedSampler's interleaving)
    merged = [ranks[r][2 * b + j] for b in range(len(ranks[0]) // 2) for j in range(2) for r in range(2)]
    assert merged == full
    with pytest.raises(DataError, match="global batch of 32"):
        MixedSampler([9, 14], (), batch_size=16, num_replicas=2)


def test_labels_and_probabilities() -> None:
    assert dataset_labels(["d/market-128", "e/synth-64", "f/market-128", "g/market-128-2"]) == [
        "market-128", "synth-64", "market-128-2", "market-128-2-2"]
    assert mix_probabilities((), [10, 30]) == pytest.approx((0.25, 0.75))
    assert mix_probabilities((2, 2), [10, 30]) == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError, match="3 mix weights for 2"):
        mix_probabilities((1, 1, 1), [10, 30])


def test_mixed_dataset_routes_indices(two_sets) -> None:
    a, b = two_sets
    parts = [PairDataset(a, "train"), PairDataset(b, "train")]
    mixed = MixedPairDataset(parts)
    n = len(parts[0])
    assert len(mixed) == n + len(parts[1]) and mixed.locate(n) == (1, 0) and mixed.locate(n - 1) == (0, n - 1)
    item, same = mixed[(n + 1, 7)], parts[1][(1, 7)]
    assert item.keys() == same.keys() and all(torch.equal(item[k], same[k]) for k in item)
    with pytest.raises(IndexError):
        mixed.locate(len(mixed))


def test_items_of_a_mixed_batch_can_share_keys(two_sets) -> None:
    """``parsing=False`` leaves the labels out; ``flow_body`` gives surface-map items the body mask that
    correspondence-file items carry (visible pixels are body pixels)."""
    a, _ = two_sets
    plain = PairDataset(a, "train", parsing=False)[0]
    assert "source_labels" not in plain and "target_labels" not in plain
    item = PairDataset(a, "train", with_flow=True, flow_body=True)[0]
    assert {"flow", "flow_valid", "flow_body"} <= set(item)
    body, valid = item["flow_body"], item["flow_valid"]
    assert set(body.unique().tolist()) <= {0.0, 1.0} and body.sum() > 0
    assert bool((valid <= body).all())
    assert "flow_body" not in PairDataset(a, "train", with_flow=True)[0]


def test_mix_weights_key_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"data: mix_weights = \[2\.0, 0\.0\]: every weight must be > 0"):
        resolve_config("tiny", ["data.mix_weights=[2, 0]"])
    assert resolve_config("tiny", ["data.mix_weights=[2, 1]"]).data.mix_weights == (2.0, 1.0)


# ------------------------------------------------------------------------------------ training


def test_two_datasets_train_and_validate_each(two_sets, tmp_path: Path, monkeypatch) -> None:
    """(a) Both datasets feed the training batches; each validation split is scored on its own (names prefixed
    by the folder's name) and the best checkpoint follows the first dataset's score; data.json records both."""
    a, b = two_sets
    seen: Counter[str] = Counter()
    getitem = PairDataset.__getitem__

    def record(self, key):
        if self.split == "train":
            seen[self.dataset.root.name] += 1
        return getitem(self, key)

    monkeypatch.setattr(PairDataset, "__getitem__", record)
    res = _run([a, b], tmp_path, "mix", "semantic", steps=4, extra=["train.batch_size=4"])
    assert seen["synth-a"] > 0 and seen["synth-b"] > 0 and sum(seen.values()) == 16
    run = tmp_path / "mix"
    rows = read_validation(run / "validation.jsonl")
    assert [r["step"] for r in rows] == [0, 2, 4]
    for r in rows:
        assert {"synth-a/miou", "synth-b/miou", "synth-a/parsing_error", "synth-b/pixel_acc"} <= set(r)
        assert "miou" not in r
    result = res.stages[0]
    assert {"val/synth-a/parsing_error", "val/synth-b/parsing_error"} <= set(result.metrics)
    assert result.best_score == min(r["synth-a/parsing_error"] for r in rows[1:])
    record_ = json.loads((run / "data.json").read_text())
    assert [d["path"] for d in record_["datasets"]] == [str(a.resolve()), str(b.resolve())]
    pairs = [d["train_pairs"] for d in record_["datasets"]]
    assert pairs[0] != pairs[1]
    assert record_["mix_weights"] == pytest.approx([n / sum(pairs) for n in pairs], abs=1e-6)
    assert record_["mix_weights_from"] == "training pairs"
    log = (run / "train.log").read_text()
    assert "semantic: data mix synth-a" in log


def test_frame_mismatch_and_bad_lists_are_one_line_errors(two_sets, tmp_path: Path) -> None:
    """(c) Another frame, a mix_weights list of the wrong length, a folder given twice: one line each, before
    anything is written."""
    a, b = two_sets
    other = tmp_path / "synth-big"
    shutil.copytree(b, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["height"], manifest["width"] = 64, 48
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError) as exc:
        _run([a, other], tmp_path, "frame", "semantic")
    msg = str(exc.value)
    assert "\n" not in msg and str(other / "manifest.json") in msg and "64x48" in msg and "32x24" in msg
    assert str(a) in msg
    with pytest.raises(ConfigError, match=r"data\.mix_weights = \[1\.0, 2\.0, 3\.0\]: 3 weight\(s\) for 2 dataset"):
        _run([a, b], tmp_path, "w", "semantic", extra=["data.mix_weights=[1, 2, 3]"])
    with pytest.raises(ConfigError, match="given twice"):
        _run([a, b, a], tmp_path, "twice", "semantic")
    assert not (tmp_path / "frame").exists() and not (tmp_path / "w").exists()


def _params(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path)
    return {**{f"G.{k}": v for k, v in state["model"].items()},
            **{f"D.{k}": v for k, v in state["discriminator"].items()}}


def test_mixed_resume_is_bit_exact(two_sets, tmp_path: Path) -> None:
    """(d) 2 steps + resume + 2 steps == 4 straight steps on a weighted mix (crossing an epoch), bit for bit;
    resuming with another dataset list is refused."""
    a, b = two_sets
    extra = ["train.val_every=3", "train.ckpt_every=1", "train.allow_untrained_semantic=true",
             "train.batch_size=8", "data.mix_weights=[3, 1]"]
    _run([a, b], tmp_path, "straight", "generator", steps=4, extra=extra)
    _run([a, b], tmp_path, "split", "generator", steps=2, extra=extra)
    res = _run([a, b], tmp_path, "split", "generator", steps=4, extra=extra, resume="auto")
    assert res.stages[0].start_step == 2 and res.stages[0].step == 4
    last = tmp_path / "straight" / "checkpoints" / "generator" / "last.pt"
    assert load_checkpoint(last)["epoch"] >= 1  # the mixed epoch (sum of the pairs // 8) was crossed
    x, y = _params(last), _params(tmp_path / "split" / "checkpoints" / "generator" / "last.pt")
    assert x.keys() == y.keys()
    for key in x:
        assert torch.equal(x[key], y[key]), key
    sa = load_checkpoint(last)["optimizers"]
    sb = load_checkpoint(tmp_path / "split" / "checkpoints" / "generator" / "last.pt")["optimizers"]
    for opt in sa:
        for pid, st in sa[opt]["state"].items():
            assert torch.equal(st["exp_avg"], sb[opt]["state"][pid]["exp_avg"])
    assert json.loads((tmp_path / "split" / "data.json").read_text())["mix_weights"] == [0.75, 0.25]
    for data in ([b, a], [a]):
        with pytest.raises(ConfigError, match=r"--resume .*the run trains on .*synth-a, .*synth-b"):
            _run(data, tmp_path, "split", "generator", steps=6, extra=extra, resume="auto")


def test_cli_two_data_options(two_sets, tmp_path: Path) -> None:
    """(e) ``glocal train --data A --data B``."""
    import typer
    from typer.testing import CliRunner

    from glocal_cli.cli.train_cmd import train_command

    a, b = two_sets
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("other")(lambda: None)
    args = ["train", "--data", str(a), "--data", str(b), "--config", "tiny", "--set", "train.val_every=0",
            "--stage", "flow", "--out", str(tmp_path), "--name", "cli", "--max-steps", "1", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "cli" / "data.json").read_text())
    assert [Path(d["path"]).name for d in record["datasets"]] == ["synth-a", "synth-b"]
    assert (tmp_path / "cli" / "weights" / "config.json").is_file()
    bad = CliRunner().invoke(app, [*args[:-5], "x", "--set", "data.mix_weights=[1]", "--device", "cpu"])
    assert bad.exit_code == 2 and "data.mix_weights" in bad.output


def test_dataset_without_parsing_is_left_out_of_the_semantic_stage(two_sets, tmp_path: Path) -> None:
    """(f) The semantic stage trains and validates on the dataset with parsing and warns about the other; with
    no dataset that has parsing it raises its usual error; the generator stage mixes both and says it does
    without the parsing maps."""
    a, b = two_sets
    bare = _without_parsing(a, tmp_path / "synth-bare")
    res = _run([bare, b], tmp_path, "sem", "semantic")
    assert res.stages[0].step == 2
    log = (tmp_path / "sem" / "train.log").read_text()
    warned = [line for line in log.splitlines() if "left out of this stage" in line]
    assert len(warned) == 1 and str(bare) in warned[0] and "parsing maps" in warned[0]
    assert "semantic: data mix synth-b 1 (" in log
    rows = read_validation(tmp_path / "sem" / "validation.jsonl")
    assert all("synth-b/miou" in r and not any(k.startswith("synth-bare/") for k in r) for r in rows)
    assert res.stages[0].best_score == min(r["synth-b/parsing_error"] for r in rows[1:])
    with pytest.raises(DataError, match="the semantic stage needs parsing maps"):
        _run([bare, _without_parsing(b, tmp_path / "synth-bare-b")], tmp_path, "none", "semantic")
    res = _run([bare, b], tmp_path, "gen", "generator", steps=1, extra=["train.allow_untrained_semantic=true"])
    assert res.stages[0].step == 1
    log = (tmp_path / "gen" / "train.log").read_text()
    assert "generator: the parsing maps of synth-b are not used in this stage: synth-bare has none" in log
    assert "left out of this stage" not in log
    rows = read_validation(tmp_path / "gen" / "validation.jsonl")
    assert {"synth-bare/l1", "synth-b/l1"} <= set(rows[-1])


_DDP_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    from glocal_cli.train.trainer import train
    a, b, runs, name, batch = sys.argv[1:6]
    train([a, b], "tiny", ["train.log_every=1", "train.val_every=0", "model.ggr_norm=instance",
                           "data.flip_prob=0.5", f"train.batch_size={batch}", "train.allow_untrained_semantic=true",
                           "data.mix_weights=[1, 2]"],
          stage="generator", runs_dir=runs, name=name, max_steps=2, device="cpu")
    """
)


def test_mixed_ddp_two_gloo_processes_match_one(two_sets, tmp_path: Path) -> None:
    """torchrun, 2 CPU processes (gloo) x batch 1 == 1 process x batch 2 on a weighted mix: each rank draws its
    own share of the mixed positions (the tolerances of test_train_stages' DDP test)."""
    from tests.integration.test_train_stages import _zero_gradient_params

    a, b = two_sets
    script = tmp_path / "ddp_mix.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    single = [sys.executable, str(script), str(a), str(b), str(tmp_path), "single", "2"]
    subprocess.run(single, check=True, env=env, capture_output=True, timeout=300)
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(a), str(b), str(tmp_path), "ddp", "1"]
    proc = subprocess.run(ddp, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = tmp_path / "single" / "checkpoints" / "generator" / "last.pt"
    x, y = _params(ckpt), _params(tmp_path / "ddp" / "checkpoints" / "generator" / "last.pt")
    degenerate = _zero_gradient_params(ckpt)
    diff = {k: (x[k].float() - y[k].float()).abs().max().item() for k in x if x[k].is_floating_point()}
    assert max(v for k, v in diff.items() if k not in degenerate) < 1e-5
    assert max(diff.values()) <= 2 * 1e-4 * 2 + 1e-6
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "generator" / "last.pt")
    assert state["world_size"] == 2 and state["global_batch"] == 2
