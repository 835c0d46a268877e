"""``--flow body3d|learned|hybrid``, ``infer.source_parsing: body3d`` and ``--preview`` on tiny models.

The body fits use a shrunk fitting schedule (two yaw starts, a few dozen L-BFGS steps): the tests check
that the 3D flow and visibility reach the model, the fallback and the errors, not the fit quality
(tests/unit/test_body_anny_fit.py does that).
"""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from glocal_cli.body.config import BodyConfig, BodyFitConfig
from glocal_cli.body.correspond import INVISIBLE, flow_to_normalised, warp_image
from glocal_cli.body.pair import body_parsing
from glocal_cli.cli.transfer_cmd import transfer_command
from glocal_cli.config import resolve_config
from glocal_cli.errors import ConfigError
from glocal_cli.infer.config import BlendRules, InferConfig
from glocal_cli.infer.pipeline import GLocalPipeline
from glocal_cli.models.generator import GLocalModel
from glocal_cli.models.pretrained import save_pretrained
from tests.infer_helpers import openpose_json, standing_pose

H, W = 64, 44
FAST_FIT = BodyFitConfig(yaw_starts=(0.0, 180.0), iters_camera=10, iters_pose=40, iters_shape=40)
FAST_BODY = BodyConfig(fit=FAST_FIT)
FAST_SET = ["body.fit.yaw_starts=[0, 180]", "body.fit.iters_camera=10", "body.fit.iters_pose=40",
            "body.fit.iters_shape=40"]


def tiny_model(seed: int = 0, *overrides: str) -> GLocalModel:
    """The ``tiny`` config (texture path and pixel blend on) in a 64x44 frame, seeded random weights."""
    cfg = resolve_config("tiny", [f"data.height={H}", f"data.width={W}", *overrides])
    torch.manual_seed(seed)
    return GLocalModel(cfg.model, H, W, cfg.data.num_classes).eval()


def photo(seed: int = 0) -> np.ndarray:
    """A textured 64x44 picture (every pixel different, so a wrong warp shows)."""
    rng = np.random.default_rng(seed)
    return (rng.random((H, W, 3)) * 255).astype(np.uint8)


SOURCE = standing_pose(H, W)
ARMS_OUT = SOURCE.copy()
ARMS_OUT[4, :2] = (5, 20)
ARMS_OUT[7, :2] = (39, 20)
BACK = SOURCE.copy()  # seen from behind: no face points, left and right swapped
BACK[[0, 14, 15], 2] = 0
BACK[[2, 3, 4, 8, 9, 10, 16], :2], BACK[[5, 6, 7, 11, 12, 13, 17], :2] = (
    SOURCE[[5, 6, 7, 11, 12, 13, 17], :2], SOURCE[[2, 3, 4, 8, 9, 10, 16], :2])
THREE_POINTS = SOURCE.copy()
THREE_POINTS[3:, 2] = 0


def pipeline(model: GLocalModel, flow: str | None = "body3d", **infer) -> GLocalPipeline:
    rule_keys = {f.name for f in dataclasses.fields(BlendRules)}
    rules = BlendRules(**{k: v for k, v in infer.items() if k in rule_keys})
    cfg = InferConfig(pose_frame="model", batch_size=4, **{k: v for k, v in infer.items() if k not in rule_keys})
    return GLocalPipeline(model, "cpu", config=cfg, body_config=FAST_BODY, flow=flow, rules=rules)


class Capture:
    """Records the arguments of a module's forward calls (a forward pre-hook, no patching)."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: list[tuple] = []
        self.handle = module.register_forward_pre_hook(lambda _m, args: self.calls.append(args))

    def close(self) -> None:
        self.handle.remove()


def test_body3d_flow_and_visibility_reach_the_model_and_the_blend_copies_the_3d_warp():
    model = tiny_model()
    with torch.no_grad():  # the blend's mask logit: m ~ 1 everywhere, no residual -> the output is the warp
        model.generator.blend.head.bias[0] = 30.0
    pipe = pipeline(model)
    gen = Capture(model.generator)
    img = photo()
    results = pipe.transfer_batch([img, img], [ARMS_OUT, BACK], [SOURCE, SOURCE], return_details=True)
    gen.close()
    assert [r.flow_used for r in results] == ["body3d", "body3d"] and not any(r.notes for r in results)
    assert pipe.body_flow.fitted == 3  # one source fit for both pairs, two targets

    maps = pipe.body_flow.pairs(np.stack([SOURCE[:, :2]] * 2), np.ones((2, 18), bool),
                                np.stack([ARMS_OUT[:, :2], BACK[:, :2]]),
                                np.stack([ARMS_OUT[:, 2] > 0, BACK[:, 2] > 0]), (H, W))
    assert pipe.body_flow.fitted == 3  # all cached
    (args,) = gen.calls
    visibility, texture_flow = args[6], args[7]
    torch.testing.assert_close(texture_flow, maps.flow)
    torch.testing.assert_close(visibility, maps.visibility)
    # visible -> 1, invisible -> 0, background -> 1 with a zero flow
    classes = maps.classes
    assert torch.equal(visibility[:, 0] == 0, classes == INVISIBLE)
    assert float(texture_flow.abs().sum(1)[classes == 0].max()) == 0.0
    seen = [float((c == 1).sum()) / float((c > 0).sum()) for c in classes]
    assert seen[0] > 0.7 and seen[1] < 0.3  # front to front mostly visible; a half turn mostly not
    assert torch.equal(flow_to_normalised(maps.flow_px), maps.flow)

    src = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(127.5).sub(1).expand(2, -1, -1, -1)
    warped = warp_image(src, maps.flow_px)
    expect = ((warped.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
    for r, e in zip(results, expect):
        assert np.abs(r.frame_image.astype(int) - e.astype(int)).max() <= 1


def test_the_3d_bodies_guide_the_blend_on_the_pixels_they_decide():
    """copy_visible / unseen_fill through the pipeline: with the blend head copying nothing (m ~ 0), 'mesh' makes
    the visible pixels the 3D warp; the fill rules change only the pixels the source does not show; a flagged
    fit (learned flow) is left as the model made it."""
    model = tiny_model(2)
    with torch.no_grad():  # m ~ 0 everywhere: the decoder's picture unless a rule says otherwise
        model.generator.blend.head.bias[0] = -30.0
    img = photo(5)
    base = pipeline(model, background="generated", ghost_gate=False, paste_back=False)
    src = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(127.5).sub(1)

    def run(target: np.ndarray, copy_visible: str, fill: str) -> np.ndarray:
        res = base.with_config(copy_visible=copy_visible, unseen_fill=fill).transfer(img, target, SOURCE,
                                                                                     return_details=True)
        assert res.flow_used == "body3d"
        return res.frame_image.astype(int)

    def maps_of(target: np.ndarray):  # noqa: ANN202
        return base.body_flow.pairs(SOURCE[None, :, :2], np.ones((1, 18), bool), target[None, :, :2],
                                    (target[:, 2] > 0)[None], (H, W))

    # front to front: the visible pixels are the 3D warp with 'mesh', not with the blend head alone
    maps = maps_of(ARMS_OUT)
    vis = maps.classes[0].numpy() == 1
    inner = vis & (torch.nn.functional.avg_pool2d(torch.from_numpy(vis).float()[None, None], 3, 1, 1,
                                                  count_include_pad=False)[0, 0].numpy() == 1)
    assert inner.sum() > 200
    warped = ((warp_image(src, maps.flow_px).clamp(-1, 1) + 1) * 127.5).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(run(ARMS_OUT, "mesh", "model")[inner] - warped[inner]).max() <= 1
    assert np.abs(run(ARMS_OUT, "model", "model")[inner] - warped[inner]).mean() > 10

    # a half turn: the fills change the unseen body pixels and nothing else
    inv = maps_of(BACK).classes[0].numpy() == INVISIBLE
    assert inv.sum() > 200
    out = {fill: run(BACK, "mesh", fill) for fill in ("model", "part_mean", "mirror")}
    for fill in ("part_mean", "mirror"):
        changed = np.abs(out[fill] - out["model"]).max(-1) > 1
        assert changed[inv].mean() > 0.5 and not changed[~inv].any(), fill
    assert np.abs(out["mirror"][inv] - out["part_mean"][inv]).max() > 10  # a texture, not a flat mean

    # a flagged fit runs the learned flow and no rule applies
    guided = base.transfer(img, THREE_POINTS, SOURCE, return_details=True)
    plain = base.with_config(copy_visible="model", unseen_fill="model").transfer(img, THREE_POINTS, SOURCE,
                                                                                 return_details=True)
    assert guided.flow_used == "learned" and np.array_equal(guided.frame_image, plain.frame_image)


def test_flagged_fit_falls_back_to_the_learned_flow_with_a_note():
    model = tiny_model(1)
    pipe = pipeline(model)
    img = photo(1)
    mixed = pipe.transfer_batch([img, img], [ARMS_OUT, THREE_POINTS], [SOURCE, SOURCE], return_details=True)
    assert [r.flow_used for r in mixed] == ["body3d", "learned"]
    assert not any("3D body fit" in n for n in mixed[0].notes)
    (note,) = [n for n in mixed[1].notes if "3D body fit" in n]
    assert "only 3 keypoints" in note and "learned flow" in note
    learned = pipe.transfer(img, THREE_POINTS, SOURCE, flow="learned", return_details=True)
    assert learned.flow_used == "learned"
    assert np.abs(mixed[1].frame_image.astype(int) - learned.frame_image.astype(int)).max() <= 1
    assert np.abs(mixed[0].frame_image.astype(int) - learned.frame_image.astype(int)).max() > 10


def test_hybrid_needs_flow_refine_weights_and_refines_the_3d_flow():
    pipe = pipeline(tiny_model(), flow=None)
    with pytest.raises(ConfigError) as err:
        pipe.transfer(photo(), ARMS_OUT, SOURCE, flow="hybrid")
    msg = str(err.value)
    assert "--flow hybrid" in msg and "model.flow_refine" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="expected one of body3d, learned, hybrid"):
        GLocalPipeline(tiny_model(), "cpu", flow="bogus")

    model = tiny_model(2, "model.flow_refine=true")
    est = Capture(model.flow)
    result = pipeline(model, flow="hybrid").transfer(photo(), ARMS_OUT, SOURCE, return_details=True)
    est.close()
    assert result.flow_used == "hybrid"
    (args,) = est.calls
    assert len(args) == 5 and args[3] is not None and float(args[3].abs().max()) > 0  # the 3D flow as init
    assert float(args[4].min()) == 0.0 and float(args[4].max()) == 1.0


def test_source_parsing_from_the_fitted_mesh():
    model = tiny_model(3)
    gen = Capture(model.generator)
    pipe = pipeline(model, flow="learned", source_parsing="body3d")
    result = pipe.transfer(photo(), ARMS_OUT, SOURCE, return_details=True)
    gen.close()
    assert result.flow_used == "learned"
    given = gen.calls[0][3][0].argmax(0).numpy()
    fits = pipe.body_flow.render(pipe.body_flow.fit(SOURCE[None, :, :2], np.ones((1, 18), bool), (H, W)))
    expect = body_parsing(fits.part[0])
    np.testing.assert_array_equal(given, expect)
    assert {0, 2, 3, 5, 6, 7} <= set(np.unique(given).tolist())
    # estimate: the semantic network even though a parsing is given
    gen = Capture(model.generator)
    pipeline(model, flow="learned", source_parsing="estimate").transfer(photo(), ARMS_OUT, SOURCE,
                                                                      source_parsing=expect)
    gen.close()
    assert not np.array_equal(gen.calls[0][3][0].argmax(0).numpy(), expect)
    # inpainting takes the mesh parsing too (its semantic mask is cut from it)
    out = pipeline(model, flow="learned", source_parsing="body3d").inpaint(photo(), "semantic", SOURCE,
                                                                         paste_back=False, return_details=True)
    np.testing.assert_array_equal(out.parsing, expect)


def test_mesh_source_parsing_on_a_plain_wall_follows_the_person_like_prepare_data():
    """On a plain studio wall the mesh parsing is refined by the wall's flood-fill mask, as
    ``prepare-data --parsing body3d`` makes the training parsings: a person wider than the naked mesh
    (a wide coat) is parsed as person up to its outline."""
    from glocal_cli.body.pair import plain_background_mask, refine_person_mask

    model = tiny_model(3)
    from glocal_cli.infer.body3d import BodyFlow

    flow = BodyFlow(FAST_BODY, "cpu")
    fits = flow.render(flow.fit(SOURCE[None, :, :2], np.ones((1, 18), bool), (H, W)))
    body = fits.part[0].numpy() > 0
    ys, xs = np.nonzero(body)
    wall = np.full((H, W, 3), 235, np.uint8)
    wall[ys.min():ys.max() + 1, max(0, xs.min() - 4):xs.max() + 5] = (60, 40, 30)  # wider than the mesh
    gen = Capture(model.generator)
    pipeline(model, flow="learned", source_parsing="body3d").transfer(wall, ARMS_OUT, SOURCE)
    gen.close()
    given = gen.calls[0][3][0].argmax(0).numpy()
    mask = refine_person_mask(plain_background_mask(wall), body)
    np.testing.assert_array_equal(given, body_parsing(fits.part[0], mask))
    outside = (given > 0) & ~body
    assert outside.sum() > 20  # the coat beyond the mesh is person
    assert not np.array_equal(given, body_parsing(fits.part[0]))


def test_preview_picture_from_the_python_api():
    model = tiny_model(4)
    result = pipeline(model).transfer(photo(), ARMS_OUT, SOURCE, return_details=True, preview=True)
    pic = result.preview
    assert pic is not None and pic.dtype == np.uint8 and pic.ndim == 3
    assert pic.shape[0] >= 256 and pic.shape[1] > 6 * 256 * W / H  # enlarged to >= 256 high, six columns
    learned = pipeline(model, flow="learned").transfer(photo(), ARMS_OUT, SOURCE, return_details=True, preview=True)
    assert learned.preview is not None and learned.preview.shape == pic.shape
    # the mesh cells: with a fit the part colours cover the body, without one the photo is left as it is
    assert not np.array_equal(pic, learned.preview)
    assert pipeline(model).transfer(photo(), ARMS_OUT, SOURCE, return_details=True).preview is None


# -------------------------------------------------------------------------------------------- CLI

app = typer.Typer()
app.command("transfer")(transfer_command)
app.command("other")(lambda: None)
runner = CliRunner()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_pretrained(tiny_model(5), tmp_path_factory.mktemp("w"))


def run(*args):
    sets = [x for s in FAST_SET for x in ("--set", s)]
    return runner.invoke(app, ["transfer", *map(str, args), *sets, "--workers", "0", "--device", "cpu",
                               "--set", "infer.pose_frame=model"])


@pytest.fixture()
def inputs(tmp_path):
    from PIL import Image

    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(photo()).save(src / "a.png")
    openpose_json(src / "a.json", [SOURCE])
    poses = tmp_path / "poses"
    poses.mkdir()
    openpose_json(poses / "arms.json", [ARMS_OUT])
    openpose_json(poses / "three.json", [THREE_POINTS])
    return src, poses


def test_cli_body3d_preview_and_fallback_note(tmp_path, weights, inputs):
    src, poses = inputs
    out = tmp_path / "o"
    r = run("--source", src, "--pose", poses, "--out", out, "--weights", weights, "--flow", "body3d", "--preview",
            "--save-flow")
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.glob("*.png")} == {
        f"a_to_{n}{s}.png" for n in ("arms", "three") for s in ("", "_preview", "_flow")}
    text = " ".join(r.output.split())
    assert "a_to_three" in text and "3D body fit flagged" in text and "notes" in text
    rows = list(csv.DictReader((out / "failures.csv").open()))
    assert [(row["stage"], "three" in row["target"]) for row in rows] == [("note", True)]
    assert "only 3 keypoints" in rows[0]["error"]


def test_cli_option_errors(tmp_path, weights, inputs):
    src, poses = inputs
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--weights", weights, "--flow", "bogus")
    assert r.exit_code == 2 and "expected one of body3d, learned, hybrid" in " ".join(r.output.split())
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--weights", weights, "--flow", "hybrid")
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "model.flow_refine" in text and "--flow body3d" in text
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--weights", weights, "--flow", "body3d",
            "--body-model", "mannequin")
    assert r.exit_code == 2 and "unknown body model 'mannequin'" in " ".join(r.output.split())
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--weights", weights, "--flow", "body3d",
            "--body-model", f"smplx:{tmp_path / 'missing.npz'}")
    assert r.exit_code != 0 and "missing.npz" in " ".join(r.output.split())
    r = run("--source", src, "--pose", poses, "--out", tmp_path / "o", "--weights", weights,
            "--set", "infer.source_parsing=mesh")
    assert r.exit_code == 2 and "source_parsing" in " ".join(r.output.split())
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.png"))


def test_config_defaults_are_documented_choices():
    cfg = InferConfig()
    assert cfg.flow in ("body3d", "learned", "hybrid") and cfg.source_parsing == "auto" and not cfg.preview
    with pytest.raises(ValueError):
        dataclasses.replace(cfg, flow="mesh")


def test_source_keypoint_csv_is_read_in_its_frame(tmp_path):
    """A community CSV (256x256 padded DeepFashion frame) for the 176x256 photos: x - 40, then the fit."""
    from PIL import Image

    from glocal_cli.infer.batch import JobSpec, TaskDataset, plan_tasks

    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.zeros((256, 176, 3), np.uint8)).save(src / "a.jpg")
    pose = standing_pose(256, 176)
    ys, xs = np.rint(pose[:, 1]).astype(int), np.rint(pose[:, 0]).astype(int) + 40
    line = f"a.jpg:{ys.tolist()}:{xs.tolist()}"
    (tmp_path / "kp.csv").write_text("name:keypoints_y:keypoints_x\n" + line + "\n" + line.replace("a.jpg", "b.jpg")
                                     + "\n")
    cfg = InferConfig(pose_csv_frame="deepfashion-256x256", workers=0)
    spec = JobSpec("transfer", src, tmp_path / "o", pose=tmp_path / "kp.csv", source_pose=tmp_path / "kp.csv")
    tasks = plan_tasks(spec, cfg, (H, W))
    item = TaskDataset(tasks, "transfer", cfg, (H, W))[0]
    assert "error" not in item, item
    expect = (np.stack([xs - 40, ys], 1) + 0.5) * (H / 256) - 0.5  # pixel centres scale about the corner
    np.testing.assert_allclose(item["input"].source.xy, expect, atol=1e-4)


def test_warm_started_fits_follow_a_dragged_joint():
    """``BodyFlow.warm_start`` (glocal serve): a pose a few pixels from a cached one is refitted from that fit
    (stage 2 only) and lands as close to its keypoints as a cold fit; batch jobs keep cold fits."""
    from glocal_cli.infer.body3d import BodyFlow

    cold = BodyFlow(FAST_BODY, "cpu")
    warm = BodyFlow(FAST_BODY, "cpu")
    warm.warm_start = True
    vis = np.ones((1, 18), bool)
    first = ARMS_OUT[None, :, :2].copy()
    dragged = first.copy()
    dragged[0, 4] += (3.0, -4.0)  # the right wrist, a small drag
    far = first.copy()
    far[0, :, 0] += 20.0  # the whole body moved: too far to warm-start
    warm.fit(first, vis, (H, W))
    assert warm.warm_fitted == 0 and warm.fitted == 1
    fit_warm = warm.fit(dragged, vis, (H, W))
    assert warm.warm_fitted == 1 and warm.fitted == 2
    fit_cold = cold.fit(dragged, vis, (H, W))
    assert bool(fit_warm.ok[0]) and float(fit_warm.rms_px[0]) <= float(fit_cold.rms_px[0]) + 0.5
    warm.fit(far, vis, (H, W))
    assert warm.warm_fitted == 1 and warm.fitted == 3  # cold
    assert BodyFlow(FAST_BODY, "cpu").warm_start is False


def test_background_source_keeps_the_photo_where_both_show_background():
    """``infer.background: source`` (what ``auto`` means off a plain wall): where the target parsing and the
    source's parsing both say background the result is the source photo; ``generated`` keeps the model's."""
    model = tiny_model(3)
    with torch.no_grad():  # the target parsing: background everywhere; the blend head copies nothing (m ~ 0)
        model.semantic.head[1].bias.zero_()
        model.semantic.head[1].bias[0] = 30.0
        model.generator.blend.head.bias[0] = -30.0
    img = photo(7)
    parsing = np.zeros((H, W), np.uint8)
    parsing[10:58, 12:32] = 2  # the source's person (given, so the test knows it)
    out = {bg: pipeline(model, background=bg, paste_back=False).transfer(img, ARMS_OUT, SOURCE, parsing,
                                                                          return_details=True).frame_image
           for bg in ("source", "auto", "generated")}
    street = np.ones((H, W), bool)
    street[8:60, 10:34] = False  # away from the source person (the clean plate's reach)
    assert np.abs(out["source"][street].astype(int) - img[street]).max() <= 1
    assert np.array_equal(out["auto"], out["source"])  # a textured border is not a studio wall
    assert np.abs(out["generated"][street].astype(int) - img[street]).mean() > 10
    ungated = pipeline(model, background="source", ghost_gate=False, paste_back=False).transfer(
        img, ARMS_OUT, SOURCE, parsing, return_details=True).frame_image  # not a rule of the ghost gate
    assert np.abs(ungated[street].astype(int) - img[street]).max() <= 1
