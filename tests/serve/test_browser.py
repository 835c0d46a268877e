"""The page in a real headless Chromium (Playwright): upload a photo, drag a joint, see a new result.

Needs Debian's ``chromium`` (``apt-get install chromium chromium-driver``; CI installs it) and the
``playwright`` package (the ``dev`` extra); Playwright drives the system browser, it downloads none.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

from tests.infer_helpers import EXAMPLES

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")

CHROMIUM = os.environ.get("GLOCAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (apt-get install chromium chromium-driver, or set GLOCAL_CHROMIUM)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(serve_pipeline, tmp_path):
    """A real uvicorn server on 127.0.0.1 (a thread of this process), without a keypoint detector."""
    import uvicorn

    from glocal_cli.serve.app import create_app
    from glocal_cli.serve.config import ServeConfig
    from glocal_cli.serve.engine import ServeEngine

    engine = ServeEngine(serve_pipeline, ServeConfig(out=str(tmp_path / "out"), keypoints="none", debounce_ms=50),
                         EXAMPLES)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", engine
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def page():
    with playwright_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        except playwright_api.Error as exc:  # a browser that cannot start here is an environment problem
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
        pg = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_default_timeout(20_000)
        yield pg
        browser.close()
        assert not errors, f"JavaScript errors: {errors}"


def _joint_on_screen(page, canvas: str, joint: int) -> tuple[float, float]:
    st = page.evaluate("({pose: window.glocal.targetPose, scale: window.glocal.scale})")
    box = page.locator(canvas).bounding_box()
    x, y, _ = st["pose"][joint]
    return box["x"] + (x + 0.5) * st["scale"], box["y"] + (y + 0.5) * st["scale"]


def test_upload_drag_a_joint_and_a_new_result_appears(server, page, tmp_path):
    url, engine = server
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']")
    upload = tmp_path / "me.png"
    shutil.copy(EXAMPLES / "sources" / "person_01.png", upload)
    page.set_input_files("#upload", str(upload))
    page.wait_for_function("window.glocal.results >= 1")
    assert "default pose" in page.inner_text("#status")  # no detector: the page offers a pose to drag
    first = page.get_attribute("#result", "src")
    assert first.startswith("data:image/png;base64,")
    transfers = engine.counters["transfer"]

    wrist = 7  # l_wrist of the default standing pose
    before = page.evaluate(f"window.glocal.targetPose[{wrist}]")
    x, y = _joint_on_screen(page, "#target-canvas", wrist)
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, 16):
        page.mouse.move(x + 3 * k, y - 9 * k)
    page.mouse.up()
    page.wait_for_function("window.glocal.results >= 2 && !window.glocal.controller")
    after = page.evaluate(f"window.glocal.targetPose[{wrist}]")
    assert after[1] < before[1] - 40  # the joint followed the mouse (in photo pixels)
    assert page.get_attribute("#result", "src") != first  # a new picture for the new pose
    assert engine.counters["transfer"] > transfers

    shown = page.evaluate("window.glocal.results")
    page.click("#mirror")
    page.wait_for_function(f"window.glocal.results > {shown} && !window.glocal.controller")
    mirrored = page.evaluate("window.glocal.targetPose")
    assert abs(mirrored[4][1] - after[1]) < 1e-6  # l_wrist moved into the r_wrist slot

    shown = page.evaluate("window.glocal.results")
    page.check("#paint-mode")
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5, steps=5)
    page.mouse.up()
    with page.expect_request("**/api/inpaint") as request:
        page.click("#fill")
    assert not {"fill", "texture_strength", "texture_depth"} & set(request.value.post_data_json)  # the server's
    page.wait_for_function(f"window.glocal.results > {shown}")
    assert engine.counters["inpaint"] == 1
    assert "filled" in page.inner_text("#result-info")

    # the fill chosen on the page: texture at full strength, no fade, is what the request asks for
    shown = page.evaluate("window.glocal.results")
    page.select_option("#fill-mode", "texture")
    page.evaluate("document.getElementById('texture-strength').value = '100'")
    page.uncheck("#texture-fade")
    with page.expect_request("**/api/inpaint") as request:
        page.click("#fill")
    body = request.value.post_data_json
    assert (body["fill"], body["texture_strength"], body["texture_depth"]) == ("texture", 1, 0)
    page.wait_for_function(f"window.glocal.results > {shown}")
    assert engine.counters["inpaint"] == 2
