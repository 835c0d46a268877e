"""``pose_frame: auto`` in a folder job and the Python API: the guess is warned, once per job."""

from __future__ import annotations

import numpy as np
import pytest

import glocal_cli.infer.batch as batch
from glocal_cli.infer.batch import JobSpec, run_job
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.io import GUESS_NOTE
from glocal_cli.infer.pipeline import GLocalPipeline
from tests.infer_helpers import copy_examples, openpose_json, save_tiny_weights, standing_pose


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    weights = save_tiny_weights(tmp_path_factory.mktemp("weights"))
    return GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0))


def test_folder_job_warns_once_when_it_guesses(tmp_path, pipe, monkeypatch):
    src, _ = copy_examples(tmp_path, sources=1, poses=0)
    poses = tmp_path / "targets"
    poses.mkdir()
    for i in range(3):
        openpose_json(poses / f"p{i}.json", [standing_pose(100 + 10 * i, 70)])
    said: list[str] = []
    monkeypatch.setattr(batch, "warn", said.append)
    report = run_job(pipe, JobSpec("transfer", src, tmp_path / "out", pose=poses), InferConfig(workers=0),
                     show_progress=False)
    assert report.done == 3 and said.count(GUESS_NOTE) == 1


def test_examples_record_their_canvas_and_need_no_guess(tmp_path, pipe, monkeypatch):
    src, poses = copy_examples(tmp_path, sources=1, poses=2)
    said: list[str] = []
    monkeypatch.setattr(batch, "warn", said.append)
    run_job(pipe, JobSpec("transfer", src, tmp_path / "out", pose=poses), InferConfig(workers=0), show_progress=False)
    assert GUESS_NOTE not in said


def test_api_array_target_is_a_warned_guess(pipe):
    img = np.full((64, 48, 3), 200, np.uint8)
    res = pipe.transfer(img, standing_pose(32, 24), source_pose=standing_pose(64, 48), return_details=True)
    assert GUESS_NOTE in res.notes
    exact = pipe.with_config(pose_frame="source").transfer(img, standing_pose(64, 48),
                                                          source_pose=standing_pose(64, 48), return_details=True)
    assert GUESS_NOTE not in exact.notes


def test_api_warns_the_guess_once_per_call(pipe, monkeypatch):
    import glocal_cli.infer.pipeline as pipeline

    said: list[str] = []
    monkeypatch.setattr(pipeline, "warn", said.append)
    img = np.full((64, 48, 3), 200, np.uint8)
    outs = pipe.transfer_batch([img] * 3, [standing_pose(32, 24)] * 3, [standing_pose(64, 48)] * 3,
                               return_details=True)
    assert said.count(GUESS_NOTE) == 1 and all(GUESS_NOTE in o.notes for o in outs)
