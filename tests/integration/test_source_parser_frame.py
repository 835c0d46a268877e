"""A source parser with a larger frame than the transfer weights' (``infer.source_parser``, e.g. a 256x176 parser
beside 128x88 weights): it reads the photo at its own frame, its probabilities are averaged back to the model's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glocal_cli.config import resolve_config
from glocal_cli.data.images import fit_to_frame, load_image, save_image
from glocal_cli.data.keypoints import Pose
from glocal_cli.errors import ConfigError
from glocal_cli.infer.batch import JobSpec, run_job
from glocal_cli.infer.config import InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.pretrained import from_pretrained, save_pretrained
from glocal_cli.paths import REPO_DIR
from tests.infer_helpers import save_tiny_weights, standing_pose


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("parser-frame")
    return save_tiny_weights(root / "weights"), save_tiny_weights(root / "parser", seed=3, frame_scale=2)


def _photo(h: int = 80, w: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([yy * 3 % 255, xx * 4 % 255, (yy + xx) * 2 % 255], -1)
    return np.asarray(img, np.uint8)


def test_the_parser_reads_the_photo_at_its_own_frame(folders) -> None:
    weights, parser_dir = folders
    pipe = GLocalPipeline.from_pretrained(weights, device="cpu",
                                          config=InferConfig(workers=0, source_parser=str(parser_dir)))
    assert pipe.parser_scale == 2
    photo = _photo()
    pose = standing_pose(*photo.shape[:2])
    res = pipe.inpaint(photo, "semantic", source_pose=pose, return_details=True)
    # what it must be: the parser on the photo fitted into its 64x48 frame, probabilities averaged over 2x2
    parser = from_pretrained(parser_dir).eval()
    prepared, _ = pipe._prepare(photo, pose, None, "source")
    xy = np.asarray(pose, np.float32)
    _, t = fit_to_frame(photo, 64, 48, pose=Pose.from_xyv(xy), margin=pipe.config.fit_margin)
    assert (t.scale, t.offset_x, t.offset_y) == pytest.approx((prepared.transform.scale * 2,
                                                              prepared.transform.offset_x * 2,
                                                              prepared.transform.offset_y * 2), abs=1)
    assert np.array_equal(prepared.parser_image, prepared.transform.scaled(2).render(photo))
    with torch.inference_mode():
        img = torch.from_numpy(prepared.parser_image).permute(2, 0, 1)[None].float() / 127.5 - 1
        maps = pipe.heatmaps(torch.from_numpy(prepared.pose.xy)[None], torch.from_numpy(prepared.pose.visible)[None])
        maps = F.interpolate(maps, scale_factor=2, mode="bilinear", align_corners=False)
        probs = F.avg_pool2d(parser.predict_target_parsing(img, maps, maps).softmax(1), 2)
    assert np.array_equal(res.parsing, probs.argmax(1)[0].numpy())


def test_a_parser_frame_that_is_no_multiple_is_refused(folders, tmp_path) -> None:
    weights, _ = folders
    cfg = resolve_config("tiny")
    odd = save_pretrained(GLocalModel(cfg.model, 48, 36, 8), tmp_path / "odd")
    pipe = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0, source_parser=str(odd)))
    with pytest.raises(ConfigError, match="integer multiple"):
        _ = pipe.parser_scale


def test_the_batch_job_and_the_api_agree_with_a_larger_parser(folders, tmp_path) -> None:
    weights, parser_dir = folders
    src = tmp_path / "sources"
    src.mkdir()
    for suffix in (".png", ".json"):
        shutil.copy(REPO_DIR / "examples" / "sources" / f"person_00{suffix}", src / f"person_00{suffix}")
    mask = np.zeros(load_image(src / "person_00.png").shape[:2], np.uint8)
    mask[40:90, 30:80] = 255
    (tmp_path / "masks").mkdir()
    save_image(tmp_path / "masks" / "person_00.png", mask)
    cfg = InferConfig(workers=0, batch_size=1, source_parser=str(parser_dir))
    run_job(GLocalPipeline.from_pretrained(weights, device="cpu", config=cfg),
            JobSpec("inpaint", src, tmp_path / "out", mask=str(tmp_path / "masks")), show_progress=False)
    api = GLocalPipeline.from_pretrained(weights, device="cpu", config=cfg).inpaint(
        str(src / "person_00.png"), str(tmp_path / "masks" / "person_00.png"), source_pose=str(src / "person_00.json"))
    assert np.array_equal(load_image(tmp_path / "out" / "person_00.png"), np.asarray(api))
