"""``glocal serve``: latency from a joint drag to the new picture, and requests per second with several clients.

    nice .venv/bin/python benchmarks/bench_serve.py [--weights DIR] [--threads 2] [--drags 20]
        [--clients 1 2 4 8] [--seconds 8] [--max-requests 400] [--no-browser] [--json FILE]

Starts ``glocal serve`` in a subprocess on 127.0.0.1 (a free port; ``OMP_NUM_THREADS`` = torch
threads = ``--threads``; keypoint detector off), with the default weights unless ``--weights``,
and loads the example photo ``person_00``. Then:

0. **Start-up and first transfer**: seconds from starting the process to its health answer, and the first
   ``/api/transfer`` of the loaded photo (cold: its first body fits, the model's first call), in ms.
1. **API latency**: ``--drags`` requests to ``/api/transfer``, each with one joint moved by a
   different offset (as one step of a drag is); time from sending the request to the decoded
   result PNG in the client. Median and 90th percentile, and the server's own model time.
2. **Page latency** (when Playwright and a Chromium are installed): headless Chromium drags a joint
   of the target skeleton ``--drags`` times; for each drag the page's own measurement
   ``window.glocal.latencyMs``: last pointer move -> new picture decoded. This includes the page's
   debounce (``serve.debounce_ms``, 120 ms by default), which is there on purpose.
3. **Throughput**: for each count in ``--clients``, that many threads, each with its own keep-alive
   connection, send transfer requests (no channel, so none is superseded) until ``--seconds`` have
   passed or ``--max-requests`` were sent in all: requests per second and median latency.

Every request goes to 127.0.0.1 only; every loop is bounded in count and in time. The header
prints the load average: on a shared machine the numbers move with the other jobs.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP connection to the server."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data is not None else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        payload = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {payload.get('error')}")
        return payload

    def close(self) -> None:
        self.conn.close()


def _decode(data_url: str) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))) as im:
        im.load()


def _moved(pose: list[list[float]], i: int) -> list[list[float]]:
    """The pose with one visible arm joint moved a little further on step ``i`` of a drag."""
    out = [list(p) for p in pose]
    joint = next(j for j in (4, 7, 3, 6) if out[j][2] > 0)
    out[joint][0] += 2.0 * ((i % 10) - 5)
    out[joint][1] -= 3.0 * (i % 15)
    return out


def _start_server(args: argparse.Namespace, port: int, out: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cmd = [sys.executable, "-m", "glocal_cli", "-q", "serve", "--host", HOST, "--port", str(port),
           "--out", str(out), "--keypoints", "none"]
    if args.weights:
        cmd += ["--weights", str(args.weights)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            c = Client(port, timeout=2)
            c.call("GET", "/api/health")
            c.close()
            return proc
        except (OSError, RuntimeError):
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not answer /api/health within 120 s")


def api_latency(port: int, image: dict, drags: int) -> dict:
    client = Client(port)
    client.call("POST", "/api/transfer", {"image_id": image["image_id"], "target_pose": image["pose"]})  # warm-up
    totals, models = [], []
    for i in range(drags):
        t0 = time.perf_counter()
        out = client.call("POST", "/api/transfer", {"image_id": image["image_id"], "target_pose": _moved(image["pose"], i)})
        _decode(out["image"])
        totals.append((time.perf_counter() - t0) * 1000)
        models.append(out["ms"]["model"])
    client.close()
    totals.sort()
    return {"median_ms": round(statistics.median(totals), 1), "p90_ms": round(totals[int(0.9 * (len(totals) - 1))], 1),
            "model_median_ms": round(statistics.median(models), 1), "n": drags}


def page_latency(port: int, drags: int) -> dict | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = os.environ.get("GLOCAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    samples = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"http://{HOST}:{port}/")
        page.wait_for_selector("body[data-ready='1']")
        page.click("button[data-example='person_00']")
        page.wait_for_function("window.glocal.results >= 1 && !window.glocal.controller")
        debounce = page.evaluate("window.glocal.health.page.debounce_ms")
        for i in range(drags):
            shown = page.evaluate("window.glocal.results")
            st = page.evaluate("({pose: window.glocal.targetPose, scale: window.glocal.scale})")
            joint = next(j for j in (7, 4, 6, 3) if st["pose"][j][2] > 0)
            box = page.locator("#target-canvas").bounding_box()
            x = box["x"] + (st["pose"][joint][0] + 0.5) * st["scale"]
            y = box["y"] + (st["pose"][joint][1] + 0.5) * st["scale"]
            dy = -12 if i % 2 == 0 else 12
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 4, y + dy, steps=4)
            page.mouse.up()
            page.wait_for_function(f"window.glocal.results > {shown} && !window.glocal.controller", timeout=60_000)
            samples.append(page.evaluate("window.glocal.latencyMs"))
        browser.close()
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 1), "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 1),
            "debounce_ms": debounce, "n": drags}


def throughput(port: int, image: dict, clients: int, seconds: float, max_requests: int) -> dict:
    done: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    budget = [max_requests]

    def worker(k: int) -> None:
        client = Client(port)
        i = 0
        while time.perf_counter() < stop_at:
            with lock:
                if budget[0] <= 0:
                    break
                budget[0] -= 1
            t0 = time.perf_counter()
            try:
                client.call("POST", "/api/transfer", {"image_id": image["image_id"],
                                                      "target_pose": _moved(image["pose"], 7 * k + i)})
            except (OSError, RuntimeError) as exc:
                with lock:
                    errors.append(str(exc))
                break
            with lock:
                done.append((time.perf_counter() - t0) * 1000)
            i += 1
        client.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"clients": clients, "requests": len(done), "seconds": round(elapsed, 2),
            "requests_per_s": round(len(done) / elapsed, 1),
            "median_ms": round(statistics.median(done), 1) if done else None, "errors": len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads of the server (2 = the 2-core target)")
    ap.add_argument("--drags", type=int, default=20)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--seconds", type=float, default=8.0, help="time limit of each throughput run")
    ap.add_argument("--max-requests", type=int, default=400, help="request limit of each throughput run")
    ap.add_argument("--no-browser", action="store_true", help="skip the page latency (headless Chromium)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = _start_server(args, port, Path(tmp) / "out")
        try:
            c = Client(port)
            health = c.call("GET", "/api/health")
            startup_s = time.perf_counter() - started
            image = c.call("POST", "/api/examples/person_00")
            t0 = time.perf_counter()
            c.call("POST", "/api/transfer", {"image_id": image["image_id"], "target_pose": _moved(image["pose"], 999)})
            first_ms = (time.perf_counter() - t0) * 1000
            c.close()
            print(f"server: frame {health['frame'][0]}x{health['frame'][1]}, {health['device']}, "
                  f"threads {args.threads}, weights {health['weights']}; load average {os.getloadavg()[0]:.2f}")
            result = {"frame": health["frame"], "threads": args.threads, "load_average": os.getloadavg()[0],
                      "startup_s": round(startup_s, 2), "first_transfer_ms": round(first_ms, 1)}
            print(f"start-up (process start -> health) {startup_s:.2f} s; first transfer {first_ms:.0f} ms")
            result["api_latency"] = api_latency(port, image, args.drags)
            print(f"API latency (request -> decoded PNG), {args.drags} drags: {result['api_latency']}")
            if not args.no_browser:
                result["page_latency"] = page_latency(port, args.drags)
                print(f"page latency (drag -> new picture, incl. debounce): {result['page_latency']}")
            result["throughput"] = []
            for n in args.clients:
                row = throughput(port, image, n, args.seconds, args.max_requests)
                result["throughput"].append(row)
                print(f"throughput: {row}")
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
