"""The JSON API of ``glocal serve`` through a test client, on a tiny random model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glocal_cli.data.keypoints import read_pose_file
from tests.infer_helpers import EXAMPLES, openpose_json, standing_pose
from tests.serve.conftest import example_bytes, from_data_url, png


def _example(client, name="person_00"):
    r = client.post(f"/api/examples/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def test_health_reports_model_detector_and_limits(make_client):
    h = make_client(max_upload_mb=2).get("/api/health").json()
    assert h["status"] == "ok" and h["frame"] == [32, 24] and h["device"] == "cpu"
    assert h["detector"]["available"] is False and "none" in h["detector"]["reason"]
    assert h["limits"]["max_upload_bytes"] == 2 * 1024 * 1024
    assert set(h["layers"]) == {"parsing", "flow", "visibility"} and h["classes"][2] == "upper"


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'src="/static/app.js"' in page.text and "http" not in page.text.replace("http-equiv", "")  # no CDN
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_example_transfer_with_layers_in_the_photos_canvas(client):
    ex = _example(client)
    assert ex["pose_source"] == "sidecar" and ex["has_parsing"] and (ex["width"], ex["height"]) == (176, 256)
    assert client.get(ex["image_url"]).headers["content-type"] == "image/png"
    r = client.post("/api/transfer", json={"image_id": ex["image_id"], "target_pose": ex["pose"],
                                           "layers": ["parsing", "flow", "visibility"], "seq": 7})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["seq"] == 7 and out["ms"]["model"] > 0
    assert from_data_url(out["image"]).shape == (256, 176, 3)
    for name in ("parsing", "flow", "visibility"):
        assert from_data_url(out["layers"][name]).shape == (256, 176, 3), name
    frame = client.post("/api/transfer", json={"image_id": ex["image_id"], "target_pose": ex["pose"],
                                               "paste_back": False}).json()
    assert from_data_url(frame["image"]).shape == (32, 24, 3) and frame["layers"] == {}


def test_the_browser_gets_what_glocal_transfer_writes(client, serve_pipeline):
    """The page's result is the pipeline's paste-back result (the pixel blend redone at the photo's size), not
    the model frame upsampled."""
    from glocal_cli.data.images import load_image
    from glocal_cli.data.keypoints import Pose

    ex = _example(client, "person_02")
    moved = [list(p) for p in ex["pose"]]
    for j in (3, 4):
        moved[j][1] -= 40
    served = from_data_url(client.post("/api/transfer", json={"image_id": ex["image_id"],
                                                              "target_pose": moved}).json()["image"])
    src = Path(EXAMPLES) / "sources"

    def pose(points):  # noqa: ANN001, ANN202
        arr = np.asarray(points, np.float32)
        return Pose(arr[:, :2], arr[:, 2] > 0) if arr.shape[1] == 3 else Pose(arr, np.ones(len(arr), bool))

    expect = serve_pipeline.with_config(pose_frame="source").transfer(
        load_image(src / "person_02.png"), pose(moved), read_pose_file(src / "person_02.json")[0],
        source_parsing=str(src / "person_02_parsing.png"), paste_back=True)
    assert served.shape == expect.shape
    assert np.abs(served.astype(int) - np.asarray(expect).astype(int)).max() <= 1
    frame_up = from_data_url(client.post("/api/transfer", json={"image_id": ex["image_id"], "target_pose": moved,
                                                                "paste_back": False}).json()["image"])
    assert frame_up.shape != served.shape  # the frame is internal


def test_moving_a_joint_changes_the_result(client):
    ex = _example(client, "person_01")
    base = from_data_url(client.post("/api/transfer", json={"image_id": ex["image_id"],
                                                            "target_pose": ex["pose"]}).json()["image"])
    moved = [list(p) for p in ex["pose"]]
    for j in (3, 4, 6, 7):  # raise both arms
        moved[j][1] -= 60
    after = from_data_url(client.post("/api/transfer", json={"image_id": ex["image_id"],
                                                             "target_pose": moved}).json()["image"])
    again = from_data_url(client.post("/api/transfer", json={"image_id": ex["image_id"],
                                                             "target_pose": moved}).json()["image"])
    assert np.abs(after.astype(int) - base.astype(int)).max() > 0
    np.testing.assert_array_equal(after, again)  # deterministic (cached source preparation)


def test_upload_without_detector_gets_the_default_pose(client):
    img = np.full((120, 80, 3), 230, np.uint8)
    r = client.post("/api/keypoints?name=../../me.png", content=png(img), headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["pose_source"] == "default" and not out["detected"] and out["name"] == "me.png"
    assert any("drag the skeleton" in n for n in out["notes"])
    pose = np.asarray(out["pose"])
    assert pose.shape == (18, 3) and (pose[:, 2] > 0).all() and pose[:, 0].max() < 80 and pose[:, 1].max() < 120
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG")
    jpeg = client.post("/api/keypoints", content=buf.getvalue())
    assert jpeg.status_code == 200 and jpeg.json()["width"] == 80


def test_non_images_and_forms_are_refused_with_json_errors(client):
    r = client.post("/api/keypoints", content=b"%PDF-1.4 not an image")
    assert r.status_code == 415 and "not an image" in r.json()["error"]
    r = client.post("/api/keypoints", files={"file": ("a.png", png(np.zeros((8, 8, 3), np.uint8)), "image/png")})
    assert r.status_code == 415 and "--data-binary" in r.json()["error"]
    r = client.post("/api/keypoints", content=b"")
    assert r.status_code == 400 and "empty" in r.json()["error"]


def test_oversized_uploads_are_refused(make_client):
    client = make_client(max_upload_mb=0.01, max_pixels=100 * 100)
    noise = (np.random.default_rng(0).random((80, 80, 3)) * 255).astype(np.uint8)
    big = png(noise)
    assert len(big) > 0.01 * 1024 * 1024
    r = client.post("/api/keypoints", content=big)
    assert r.status_code == 413 and "over the limit" in r.json()["error"]

    def chunks():  # no Content-Length: the limit still holds
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    r = client.post("/api/keypoints", content=chunks())
    assert r.status_code == 413 and r.json()["kind"] == "PayloadTooLargeError"
    r = client.post("/api/keypoints", content=png(np.zeros((200, 200, 3), np.uint8)))  # small file, many pixels
    assert r.status_code == 413 and "max_pixels" in r.json()["error"]
    assert client.get("/api/health").status_code == 200


def test_bad_requests_are_json_errors_and_the_server_keeps_serving(client, monkeypatch):
    ex = _example(client)
    cases = [
        ({"image_id": "nope", "target_pose": ex["pose"]}, 404, "unknown"),
        ({"image_id": ex["image_id"], "target_pose": [[1, 2, 1]]}, 400, "18 [x, y, v]"),
        ({"image_id": ex["image_id"]}, 422, "target_pose"),
        ({"image_id": ex["image_id"], "target_pose": ex["pose"], "colour": 1}, 422, "colour"),
        ({"image_id": ex["image_id"], "target_pose": ex["pose"], "layers": ["depth"]}, 400, "depth"),
    ]
    for body, status, text in cases:
        r = client.post("/api/transfer", json=body)
        assert r.status_code == status and text in r.json()["error"], (body, r.text)
    assert client.post("/api/transfer", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    engine = client.app.state.engine

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(engine, "transfer", broken)
    r = client.post("/api/transfer", json={"image_id": ex["image_id"], "target_pose": ex["pose"]})
    assert r.status_code == 500 and "simulated crash" in r.json()["error"]
    monkeypatch.undo()
    r = client.post("/api/transfer", json={"image_id": ex["image_id"], "target_pose": ex["pose"]})
    assert r.status_code == 200
    assert client.get("/api/health").json()["counters"]["errors"] >= 7
    assert client.get("/api/nothing-here").json()["error"] == "Not Found"


def test_inpaint_with_a_brush_keeps_the_photo_outside_the_hole(client):
    import base64

    ex = _example(client)
    original = np.asarray(Image.open(EXAMPLES / "sources" / "person_00.png").convert("RGB"))
    mask = np.zeros((256, 176), np.uint8)
    mask[90:140, 60:120] = 255
    url = "data:image/png;base64," + base64.b64encode(png(np.repeat(mask[..., None], 3, axis=2))).decode()
    r = client.post("/api/inpaint", json={"image_id": ex["image_id"], "mask": url, "save": True})
    assert r.status_code == 200, r.text
    out = r.json()
    result = from_data_url(out["image"])
    far = np.ones((256, 176), bool)
    far[70:160, 40:140] = False  # well away from the hole (paste-back rounding)
    np.testing.assert_array_equal(result[far], original[far])
    assert np.abs(result[mask > 0].astype(int) - original[mask > 0].astype(int)).max() > 0
    assert 0 < out["hole_fraction"] < 0.5
    assert client.get(out["file"]["url"]).headers["content-type"] == "image/png"
    sem = client.post("/api/inpaint", json={"image_id": ex["image_id"], "classes": ["upper"], "dilate": 1}).json()
    assert sem["hole_fraction"] > 0.02
    r = client.post("/api/inpaint", json={"image_id": ex["image_id"], "classes": []})
    assert r.status_code == 400 and "empty" in r.json()["error"]
    r = client.post("/api/inpaint", json={"image_id": ex["image_id"], "classes": ["wings"]})
    assert r.status_code == 400 and "wings" in r.json()["error"]


def test_animation_and_pose_export_land_in_the_output_folder_only(client, tmp_path):
    ex = _example(client)
    other = _example(client, "person_02")
    before = sorted(p.name for p in EXAMPLES.rglob("*"))
    r = client.post("/api/animation", json={"image_id": ex["image_id"], "poses": [ex["pose"], other["pose"]],
                                            "frames": 5, "bounce": True})
    assert r.status_code == 200, r.text
    anim = r.json()
    assert anim["frames"] == 8  # 5 forward, 3 back
    gif = client.get(anim["url"])
    assert gif.headers["content-type"] == "image/gif" and "attachment" in gif.headers["content-disposition"]
    with Image.open(io.BytesIO(gif.content)) as im:
        assert im.n_frames == 8 and im.size == (176, 256)
    r = client.post("/api/animation", json={"image_id": ex["image_id"], "poses": [ex["pose"]] * 2, "frames": 500})
    assert r.status_code == 400 and "animation_max_frames" in r.json()["error"]

    exported = client.post("/api/poses/openpose", json={"pose": other["pose"], "width": 176, "height": 256}).json()
    path = tmp_path / "out" / exported["file"]
    pose, _ = read_pose_file(path)
    wanted = np.asarray(other["pose"])
    np.testing.assert_allclose(pose.xy[pose.visible], wanted[wanted[:, 2] > 0, :2], atol=0.01)
    assert json.loads(client.get(exported["url"]).content)["people"][0]["pose_keypoints_2d"]

    written = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file())
    assert set(written) == {"out"}  # nothing written anywhere else under the test folder
    assert sorted(p.name for p in EXAMPLES.rglob("*")) == before
    for bad in ("..%2F..%2Fetc%2Fpasswd", ".scratch", "%2E%2E", "x%00y"):
        r = client.get(f"/files/{bad}")
        assert r.status_code == 404 and "error" in r.json(), bad


def test_pose_library_pose_files_and_photos(client, tmp_path):
    ex = _example(client, "person_02")
    lib = client.get(f"/api/poses?align_to={ex['image_id']}").json()["poses"]
    names = [p["name"] for p in lib]
    assert "pose_00" in names and "person_01 (photo)" in names and names[-1] == "standing (default)"
    ref = np.asarray(ex["pose"])
    ref_h = np.ptp(ref[ref[:, 2] > 0, 1])
    for item in lib[:-1]:
        p = np.asarray(item["pose"])
        assert np.ptp(p[p[:, 2] > 0, 1]) == pytest.approx(ref_h, abs=0.05), item["name"]
        assert (item["width"], item["height"]) == (176, 256)
    body = openpose_json(tmp_path / "p.json", [standing_pose(400, 300, 0.4), standing_pose(400, 300, 0.9)]).read_bytes()
    item = client.post(f"/api/poses/file?align_to={ex['image_id']}", content=body).json()
    assert len(item["pose"]) == 18 and any("kept person" in n for n in item["notes"])
    bad = client.post("/api/poses/file", content=b'{"people": "x"}')
    assert bad.status_code == 400 and "pose file" in bad.json()["error"] and ".scratch" not in bad.json()["error"]
    assert not any((tmp_path / "out" / ".scratch").iterdir())  # uploads are parsed and removed
    r = client.post("/api/keypoints?store=false", content=example_bytes("person_01"))
    assert r.status_code == 503 and "detector" in r.json()["error"]


def test_least_recently_used_photos_are_dropped(make_client):
    client = make_client(max_images=2)
    ids = [_example(client, f"person_0{i}")["image_id"] for i in range(3)]
    assert client.get(f"/api/images/{ids[0]}").status_code == 404
    assert client.get(f"/api/images/{ids[2]}").status_code == 200
    assert client.post("/api/examples/nobody").status_code == 404


def test_detector_finds_the_person_when_mediapipe_is_installed(make_client):
    from glocal_cli.data.backends import backend_status

    usable, reason = backend_status()["mediapipe"]
    if not usable:
        pytest.skip(f"mediapipe not usable: {reason}")
    client = make_client(keypoints="mediapipe")
    out = client.post("/api/keypoints", content=example_bytes("person_00")).json()
    assert out["detected"] and out["pose_source"] == "mediapipe"
    sidecar, _ = read_pose_file(EXAMPLES / "sources" / "person_00.json")
    got = np.asarray(out["pose"])
    both = (got[:, 2] > 0) & sidecar.visible
    assert both.sum() >= 6 and np.median(np.abs(got[both, :2] - sidecar.xy[both])) < 12
    lib = client.post(f"/api/keypoints?store=false&align_to={out['image_id']}", content=example_bytes("person_01"))
    assert lib.status_code == 200 and len(lib.json()["pose"]) == 18


def test_inpainting_weights_of_their_own_refine_the_photos_classical_fill(serve_pipeline, tmp_path):
    """`glocal serve` inpaints with the inpainting weights (weights/inpaint by default) when given them: with
    weights that refine a classical fill (here Telea's, ``infer.inpaint_fill: telea``), untrained (the blend
    starts at the fill), the hole is the photo's own Telea fill at the photo's resolution and every known pixel is
    the photo's; other frames are refused."""
    from glocal_cli.data.prefill import telea_fill
    from glocal_cli.errors import ConfigError
    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline
    from glocal_cli.serve.config import ServeConfig
    from glocal_cli.serve.engine import ServeEngine
    from tests.infer_helpers import save_tiny_weights

    weights = save_tiny_weights(tmp_path / "inpaint-weights", texture_skips=True, pixel_blend=True,
                                inpaint_prefill=True)
    inpaint = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0, inpaint_fill="telea"))
    engine = ServeEngine(serve_pipeline, ServeConfig(out=str(tmp_path / "out"), keypoints="none"), EXAMPLES,
                         inpaint_pipeline=inpaint)
    assert engine.inpaint_pipeline is inpaint
    image_id = engine.add_example("person_00").id
    photo = engine.get(image_id).image
    mask = np.zeros(photo.shape[:2], bool)
    mask[100:130, 60:110] = True
    out = engine.inpaint(image_id, mask=mask)
    result = from_data_url(out["image"])
    hole = mask  # the drawn mask as drawn, as `glocal inpaint --mask FILE` takes it
    np.testing.assert_array_equal(result[~hole], photo[~hole])
    classical = telea_fill(photo, hole)
    assert np.abs(result[hole].astype(int) - classical[hole].astype(int)).mean() < 3.0
    other = GLocalPipeline.from_pretrained(save_tiny_weights(tmp_path / "w2"), device="cpu")
    other.frame_hw = (64, 48)
    with pytest.raises(ConfigError, match="frame"):
        ServeEngine(serve_pipeline, ServeConfig(out=str(tmp_path / "out2"), keypoints="none"), EXAMPLES,
                    inpaint_pipeline=other)


def test_one_inpainting_request_may_choose_its_fill(serve_pipeline, tmp_path):
    """``POST /api/inpaint`` with ``fill``/``texture_strength``/``texture_depth``: that request's ``infer.*`` fill
    settings over the server's (the editor's texture slider), the same picture the engine gives with them,
    not the default's inside the hole, the photo's outside; out-of-range values are refused."""
    import base64

    from fastapi.testclient import TestClient

    from glocal_cli.errors import InputError
    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline
    from glocal_cli.serve.app import create_app
    from glocal_cli.serve.config import ServeConfig
    from glocal_cli.serve.engine import ServeEngine
    from tests.infer_helpers import save_tiny_weights

    weights = save_tiny_weights(tmp_path / "inpaint-weights", texture_skips=True, pixel_blend=True,
                                inpaint_prefill=True)
    inpaint = GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(workers=0, inpaint_fill="semantic"))
    engine = ServeEngine(serve_pipeline, ServeConfig(out=str(tmp_path / "out"), keypoints="none"), EXAMPLES,
                         inpaint_pipeline=inpaint)
    image_id = engine.add_example("person_00").id
    photo = engine.get(image_id).image
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[90:150, 50:125] = 255
    hole = mask > 0
    url = "data:image/png;base64," + base64.b64encode(png(np.repeat(mask[..., None], 3, axis=2))).decode()
    strong = {"inpaint_fill": "texture", "texture_strength": 1.0, "texture_depth": 0.0}
    with TestClient(create_app(engine)) as client:
        default = from_data_url(client.post("/api/inpaint", json={"image_id": image_id, "mask": url}).json()["image"])
        r = client.post("/api/inpaint", json={"image_id": image_id, "mask": url, "fill": "texture",
                                              "texture_strength": 1.0, "texture_depth": 0})
        assert r.status_code == 200, r.text
        textured = from_data_url(r.json()["image"])
        for bad in ({"texture_strength": 1.5}, {"fill": "nearest"}, {"texture_depth": -1}):
            r = client.post("/api/inpaint", json={"image_id": image_id, "mask": url, **bad})
            assert r.status_code in (400, 422), (bad, r.status_code)
    np.testing.assert_array_equal(textured, from_data_url(engine.inpaint(image_id, mask=hole, fill=strong)["image"]))
    np.testing.assert_array_equal(default, from_data_url(engine.inpaint(image_id, mask=hole)["image"]))
    np.testing.assert_array_equal(textured[~hole], photo[~hole])
    assert np.abs(textured[hole].astype(int) - default[hole].astype(int)).mean() > 1.0
    assert engine.inpaint_pipeline.config.inpaint_fill == "semantic"  # the server's settings are untouched
    with pytest.raises(InputError, match="unknown fill setting"):
        engine.inpaint(image_id, mask=hole, fill={"inpaint_feather": 0})
