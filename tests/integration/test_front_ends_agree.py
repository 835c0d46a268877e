"""One request, three front ends: ``glocal transfer`` / ``glocal inpaint`` (the batch job), the Python API
(:class:`GLocalPipeline`) and ``glocal serve`` (:class:`ServeEngine`) give the same picture, pixel for pixel,
with the shipped weights; and those pictures are the ones the shipped weights gave when the references in
``tests/data/reference/`` were made (``scripts/make_reference_outputs.py``).

The request: an example photo (``examples/sources/person_0N.png`` with its pose, no parsing file, so each
front end estimates the parsing) re-posed to another example person's pose written in the photo's pixels
(``canvas_width``/``canvas_height`` = the photo's size: no frame guess), and the same photo inpainted with one
mask file. One item per batch, so the three compute with the same batch shapes.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glocal_cli.config import resolve_config
from glocal_cli.data.images import load_image, save_image
from glocal_cli.data.keypoints import read_pose_file, write_openpose_json
from glocal_cli.infer.batch import JobSpec, run_job
from glocal_cli.infer.config import resolve_infer_config
from glocal_cli.infer.pipeline import GLocalPipeline
from glocal_cli.paths import REPO_DIR, default_inpaint_weights_dir, default_weights_dir
from glocal_cli.serve.engine import ServeEngine

EXAMPLES = REPO_DIR / "examples"
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"
REQUESTS = [("person_00", "person_03"), ("person_02", "person_05")]
"""(source photo, the example whose pose is the target)."""


def machine_signature() -> dict[str, str]:
    """What decides the exact bits of a CPU result: the torch build and the CPU kernels it picks."""
    import platform

    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("model name")), "")
    return {"torch": torch.__version__, "machine": platform.machine(),
            "cpu_capability": str(torch.backends.cpu.get_cpu_capability()), "cpu": model or platform.processor()}


def write_requests(folder: Path) -> list[tuple[str, str]]:
    """Sources (photo + pose JSON, no parsing), target poses in the source's pixels, one mask per source."""
    (folder / "sources").mkdir(parents=True)
    (folder / "poses").mkdir()
    (folder / "masks").mkdir()
    out = []
    for src, tgt in REQUESTS:
        shutil.copy(EXAMPLES / "sources" / f"{src}.png", folder / "sources" / f"{src}.png")
        shutil.copy(EXAMPLES / "sources" / f"{src}.json", folder / "sources" / f"{src}.json")
        h, w = load_image(EXAMPLES / "sources" / f"{src}.png").shape[:2]
        pose = read_pose_file(EXAMPLES / "sources" / f"{tgt}.json")[0]
        write_openpose_json(folder / "poses" / f"{tgt}.json", pose, canvas=(h, w))
        mask = np.zeros((h, w), np.uint8)
        mask[h // 3: h // 3 + h // 5, w // 4: w // 4 + w // 3] = 255  # a block over the upper body
        save_image(folder / "masks" / f"{src}.png", mask)
        out.append((src, tgt))
    return out


def _pipeline(weights: Path, more: tuple[str, ...] = ()) -> GLocalPipeline:
    """As the CLI makes it: the settings the weights recommend, under the run's own (``more``: ``--set`` items)."""
    sets = ["infer.batch_size=1", "infer.workers=0", *more]
    return GLocalPipeline.from_pretrained(weights, device="cpu", config=resolve_infer_config(weights, None, sets),
                                          body_config=resolve_config(None, sets).body)


def _decode(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def front_end_results(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{"cli" | "api" | "serve": {"<src>_to_<tgt>" | "<src>_inpaint": picture}}``."""
    torch.set_num_threads(1)
    requests = write_requests(folder)
    (folder / "pairs.csv").write_text("from,to\n" + "".join(f"{s}.png,{t}.json\n" for s, t in requests))
    transfer, inpaint = _pipeline(default_weights_dir()), _pipeline(default_inpaint_weights_dir())
    run_job(transfer, JobSpec("transfer", folder / "sources", folder / "cli-t", pose=folder / "poses",
                              pairs=folder / "pairs.csv"), show_progress=False)
    run_job(inpaint, JobSpec("inpaint", folder / "sources", folder / "cli-i", mask=str(folder / "masks")),
            show_progress=False)
    out: dict[str, dict[str, np.ndarray]] = {"cli": {}, "api": {}, "serve": {}}
    for src, tgt in requests:
        photo, pose_file = folder / "sources" / f"{src}.png", folder / "sources" / f"{src}.json"
        target_file, mask_file = folder / "poses" / f"{tgt}.json", folder / "masks" / f"{src}.png"
        key_t, key_i = f"{src}_to_{tgt}", f"{src}_inpaint"
        out["cli"][key_t] = load_image(folder / "cli-t" / f"{key_t}.png")
        out["cli"][key_i] = load_image(folder / "cli-i" / f"{src}.png")
        # the API, fresh pipelines (no fit cache from the job)
        out["api"][key_t] = np.asarray(_pipeline(default_weights_dir()).transfer(
            str(photo), str(target_file), source_pose=str(pose_file)))
        out["api"][key_i] = np.asarray(_pipeline(default_inpaint_weights_dir()).inpaint(
            str(photo), str(mask_file), source_pose=str(pose_file)))
        # the server's engine (what /api/transfer and /api/inpaint call), fresh
        engine = ServeEngine(_pipeline(default_weights_dir()), inpaint_pipeline=_pipeline(default_inpaint_weights_dir()))
        entry = engine.add_upload(photo.read_bytes(), photo.name, detect=False)
        source_pose, target_pose = read_pose_file(pose_file)[0], read_pose_file(target_file)[0]
        out["serve"][key_t] = _decode(engine.transfer(entry.id, target_pose, source_pose)["image"])
        hole = load_image(mask_file)[..., 0] > 127
        out["serve"][key_i] = _decode(engine.inpaint(entry.id, hole, source_pose=source_pose)["image"])
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    return front_end_results(tmp_path_factory.mktemp("front-ends"))


def test_cli_api_and_serve_give_the_same_pictures(results: dict[str, dict[str, np.ndarray]]) -> None:
    for key, cli in results["cli"].items():
        for front in ("api", "serve"):
            other = results[front][key]
            assert other.shape == cli.shape, (front, key)
            assert np.array_equal(other, cli), f"{front} differs from the CLI on {key}: " \
                f"{int((other != cli).any(-1).sum())} pixels, at most {int(np.abs(other.astype(int) - cli).max())}"


def test_the_shipped_weights_give_the_reference_pictures(results: dict[str, dict[str, np.ndarray]]) -> None:
    """Bit-identical on a machine like the one that made the references (same torch build, CPU and kernels);
    elsewhere the kernels may round differently (block sizes follow the caches), and a pixel may move by a grey
    level here and there: then at most 0.5% of the pixels may differ by more than 2 levels, 0.3 on average."""
    meta = json.loads((REFERENCE / "reference.json").read_text())
    exact = meta["machine"] == machine_signature()
    for key, picture in results["cli"].items():
        ref = load_image(REFERENCE / f"{key}.png")
        assert ref.shape == picture.shape, key
        diff = np.abs(ref.astype(int) - picture)
        if exact:
            assert int(diff.max()) == 0, f"{key}: {int((diff > 0).any(-1).sum())} pixels changed"
        else:
            assert (diff > 2).any(-1).mean() < 0.005 and diff.mean() < 0.3, key


TEXTURE = ("infer.inpaint_fill=texture", "infer.texture_strength=1.0", "infer.texture_depth=0")
"""Settings whose texture fill differs from the default's (strength 1 fading over 8 px) deeper in the hole."""


def test_texture_settings_reach_every_front_end(tmp_path: Path) -> None:
    """``--set infer.inpaint_fill=texture infer.texture_strength=1 infer.texture_depth=0``: the batch job, the API
    and the server's engine give the same inpainting, and it is not the default settings' picture."""
    torch.set_num_threads(1)
    src = write_requests(tmp_path)[0][0]
    photo, pose_file, mask_file = (tmp_path / "sources" / f"{src}.png", tmp_path / "sources" / f"{src}.json",
                                   tmp_path / "masks" / f"{src}.png")
    weights = default_inpaint_weights_dir()
    (tmp_path / "one").mkdir()
    for name in (photo.name, pose_file.name):
        shutil.copy(tmp_path / "sources" / name, tmp_path / "one" / name)
    run_job(_pipeline(weights, TEXTURE), JobSpec("inpaint", tmp_path / "one", tmp_path / "cli", mask=str(mask_file)),
            show_progress=False)
    cli = load_image(tmp_path / "cli" / f"{src}.png")
    api = np.asarray(_pipeline(weights, TEXTURE).inpaint(str(photo), str(mask_file), source_pose=str(pose_file)))
    engine = ServeEngine(_pipeline(default_weights_dir()), inpaint_pipeline=_pipeline(weights, TEXTURE))
    entry = engine.add_upload(photo.read_bytes(), photo.name, detect=False)
    hole = load_image(mask_file)[..., 0] > 127
    served = _decode(engine.inpaint(entry.id, hole, source_pose=read_pose_file(pose_file)[0])["image"])
    default = np.asarray(_pipeline(weights).inpaint(str(photo), str(mask_file), source_pose=str(pose_file)))
    assert np.array_equal(cli, api) and np.array_equal(served, api)
    assert np.array_equal(api[~hole], default[~hole])
    assert np.abs(api[hole].astype(int) - default[hole].astype(int)).mean() > 1.0
