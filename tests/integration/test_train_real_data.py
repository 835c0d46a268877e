"""Training on real data (issue 13, items 1-5): visibility without ground truth, datasets without
parsing, the validation split, the learning-rate schedule on resume, the frame from the manifest.

Tiny configs (the ``tiny`` preset: 32x24 frame, a few channels, random VGG-19), real code paths.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from glocal_cli.errors import DataError
from glocal_cli.train.trainer import train
from tests.integration.conftest import make_synth
from tests.integration.test_prepare_folder import user_photos  # noqa: F401 - a fixture (photos of two people)

FAST = ["train.log_every=1", "train.val_every=0", "train.image_every=1000", "train.ckpt_every=1000"]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory) -> Path:
    """SynthPeople at 32x24: 8 identities x 4 poses (6 train identities, 2 test), with surface maps."""
    return make_synth(tmp_path_factory, "synth", identities=8, poses=4, seed=0, test_fraction=0.25)


# ------------------------------------------------------------------- item 5: frame from the manifest


def test_frame_comes_from_the_manifest_unless_set(synth_data: Path, tmp_path: Path) -> None:
    """A config made for 64x44 trains a 32x24 dataset at 32x24 and says so; --set of another frame is refused."""
    from glocal_cli.config import resolve_config, to_dict

    cfg = to_dict(resolve_config("tiny"))
    cfg["data"].update(height=64, width=44)
    config = tmp_path / "tiny-64.yaml"
    config.write_text(yaml.safe_dump(cfg))
    res = train(synth_data, config, FAST, stage="semantic", runs_dir=tmp_path, name="frame", max_steps=1,
                device="cpu")
    log = (tmp_path / "frame" / "train.log").read_text()
    assert "frame 32x24 (from the dataset manifest; the config said 64x44)" in log
    saved = yaml.safe_load((tmp_path / "frame" / "config.yaml").read_text())
    assert (saved["data"]["height"], saved["data"]["width"]) == (32, 24)
    assert res.stages[0].step == 1
    with pytest.raises(DataError, match=r"images are 32x24 but --set asks for the frame 64x44"):
        train(synth_data, "tiny", [*FAST, "data.height=64", "data.width=44"], stage="semantic", runs_dir=tmp_path,
              name="frame-set", max_steps=1, device="cpu")


# ----------------------------------------------------- item 4: the learning-rate schedule on resume


def _lr(ckpt: Path) -> float:
    from glocal_cli.train.checkpoint import load_checkpoint

    return float(load_checkpoint(ckpt)["optimizers"]["semantic"]["param_groups"][0]["lr"])


def test_resume_with_another_length_keeps_the_saved_schedule(synth_data: Path, tmp_path: Path) -> None:
    """Linear decay planned over 8 steps, stopped at 2, resumed with --max-steps 4: the rate after step 4
    is still the 8-step schedule's (lr / 2), not the 4-step one's (0), unless --reschedule asks for it."""
    import shutil

    from glocal_cli.train.checkpoint import load_checkpoint

    sets = [*FAST, "train.lr_schedule=linear", "train.lr=1.0e-3", "train.ckpt_every=2", "train.keep_last=10"]
    train(synth_data, "tiny", sets, stage="semantic", runs_dir=tmp_path, name="sched", max_steps=8, device="cpu")
    folder = tmp_path / "sched" / "checkpoints" / "semantic"
    for p in folder.iterdir():  # keep only the checkpoint of step 2: an unfinished 8-step run
        if p.name != "step-00000002.pt":
            p.unlink()
    assert load_checkpoint(folder / "step-00000002.pt")["schedule"] == {"kind": "linear", "warmup": 0, "total": 8}
    shutil.copytree(tmp_path / "sched", tmp_path / "sched2")
    res = train(synth_data, None, sets, stage="semantic", runs_dir=tmp_path, name="sched", max_steps=4,
                device="cpu", resume="auto")
    assert res.stages[0].start_step == 2 and res.stages[0].step == 4
    assert _lr(folder / "last.pt") == pytest.approx(1.0e-3 * (1 - 4 / 8))
    assert load_checkpoint(folder / "last.pt")["schedule"]["total"] == 8
    log = (tmp_path / "sched" / "train.log").read_text()
    assert "keeping the run's learning-rate schedule, linear over 8 steps" in log
    # asked explicitly: the 4-step schedule from step 2 on (linear to 0 at step 4)
    train(synth_data, None, sets, stage="semantic", runs_dir=tmp_path, name="sched2", max_steps=4,
          device="cpu", resume="auto", reschedule=True)
    folder2 = tmp_path / "sched2" / "checkpoints" / "semantic"
    assert _lr(folder2 / "last.pt") == pytest.approx(0.0, abs=1e-12)
    assert load_checkpoint(folder2 / "last.pt")["schedule"]["total"] == 4
    assert "schedule replaced on request" in (tmp_path / "sched2" / "train.log").read_text()


# --------------------------------------------------------------------- item 3: the validation split


def test_validation_uses_people_carved_from_training_not_the_test_split(synth_data: Path, tmp_path: Path) -> None:
    import shutil

    from glocal_cli.data.datasets import PairDataset
    from glocal_cli.data.layout import read_list, read_pairs_csv
    from glocal_cli.prepare.pairs import person_identity

    data = tmp_path / "data"
    shutil.copytree(synth_data, data)
    for f in ("val.lst", "pairs-val.csv"):
        (data / f).unlink(missing_ok=True)
    for f in ("test.lst", "pairs-test.csv"):  # the test split belongs to `glocal eval`; training never needs it
        (data / f).unlink()
    sets = [*FAST, "train.val_every=2", "train.val_pairs=4"]
    res = train(data, "tiny", sets, stage="flow", runs_dir=tmp_path, name="val", max_steps=2, device="cpu")
    assert {"val/warp_l1", "val/epe"} <= set(res.stages[0].metrics)  # validated, and best chosen by it
    val_names = read_list(data / "val.lst")
    val_pairs = read_pairs_csv(data / "pairs-val.csv")
    assert val_pairs and {n for p in val_pairs for n in p} == set(val_names)
    trained = PairDataset(data, "train", exclude=val_names).pairs
    people = lambda names: {person_identity(n) for n in names}  # noqa: E731
    assert people(val_names) and not people(val_names) & people([n for p in trained for n in (p.source, p.target)])
    assert len(trained) + len(val_pairs) == len(read_pairs_csv(data / "pairs-train.csv"))
    assert "validation: carved 1 of the training people" in (tmp_path / "val" / "train.log").read_text()
    # the split is a property of the dataset: a second run reads it back
    train(data, "tiny", sets, stage="flow", runs_dir=tmp_path, name="val2", max_steps=1, device="cpu")
    assert f"validation: {len(val_pairs)} pairs of {len(val_names)} images" in (tmp_path / "val2" / "train.log").read_text()
    assert read_pairs_csv(data / "pairs-val.csv") == val_pairs


def test_prepare_writes_the_validation_split(tmp_path: Path, user_photos) -> None:  # noqa: F811
    """prepare-data folder --split train: two people in sub-folders; one becomes the validation split."""
    from glocal_cli.data.backends import BackendSpec
    from glocal_cli.data.keypoints import write_keypoint_csv
    from glocal_cli.data.layout import PreparedDataset, read_list, read_pairs_csv
    from glocal_cli.prepare import PrepareOptions, prepare_folder

    root, poses = user_photos
    ann = tmp_path / "kp.csv"
    write_keypoint_csv(ann, {k: v for k, v in poses.items() if "/" not in k})
    out = tmp_path / "out"
    res = prepare_folder(root, PrepareOptions(out=out, keypoints=BackendSpec("csv")), split="train", annotations=[ann])
    val, train_pairs = read_pairs_csv(out / "pairs-val.csv"), read_pairs_csv(out / "pairs-train.csv")
    assert val and set(val) < set(train_pairs)
    person = {n.split("__")[0] for p in val for n in p}
    assert len(person) == 1 and set(read_list(out / "val.lst")) == {n for p in val for n in p}
    assert res.counts["pairs-val"] == len(val) and PreparedDataset(out).manifest.counts["val"] == len(read_list(out / "val.lst"))
    assert PreparedDataset(out).check(("train", "val", "test"))["val"] == len(read_list(out / "val.lst"))


# --------------------------------------------------------- item 2: never train on random parsing


def _without_parsing(synth_data: Path, dest: Path) -> Path:
    """A copy of the SynthPeople set whose manifest says it has no parsing maps (like Market-1501)."""
    import json
    import shutil

    shutil.copytree(synth_data, dest, ignore=shutil.ignore_patterns("parsing"))
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest["has_parsing"] = False
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def test_generator_refuses_an_untrained_semantic_network(synth_data: Path, tmp_path: Path) -> None:
    """No parsing -> no semantic stage -> the generator would read random parsings: stop before any
    training, naming the options; the Market preset (no parsing of its own) meets the same check."""
    data = _without_parsing(synth_data, tmp_path / "noparse")
    for config, name in (("tiny", "np"), ("market-128", "market")):
        with pytest.raises(DataError, match=r"untrained semantic network.*has no parsing maps.*--parsing DIR.*--weights"):
            train(data, config, FAST, stage="all", runs_dir=tmp_path, name=name, max_steps=1, device="cpu")
        assert not (tmp_path / name / "checkpoints").exists()  # refused before the flow stage trained
    # a dataset with parsing, but the generator alone on a fresh run: same refusal, other advice
    with pytest.raises(DataError, match=r"never trained in this run; run the semantic stage first"):
        train(synth_data, "tiny", FAST, stage="generator", runs_dir=tmp_path, name="gen", max_steps=1, device="cpu")
    # trained semantic weights make it legal: from --weights, and carried through the run's checkpoints
    sem = train(synth_data, "tiny", FAST, stage="semantic", runs_dir=tmp_path, name="sem", max_steps=1, device="cpu")
    res = train(data, "tiny", FAST, stage="all", runs_dir=tmp_path, name="np-w", max_steps=1, device="cpu",
                weights=sem.weights_dir)
    assert [r.stage for r in res.stages] == ["flow", "generator", "inpaint"]
    from glocal_cli.train.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "np-w" / "checkpoints" / "generator" / "last.pt")
    assert state["trained"]["semantic"] == f"weights {sem.weights_dir}"
    assert state["trained"]["generator"] == "the generator stage of run np-w"
