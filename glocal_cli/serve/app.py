"""The ASGI app of ``glocal serve`` (FastAPI): the page, its static files and the JSON API.

Every route is a thin shell: it checks the request, hands the work to the
:class:`~glocal_cli.serve.engine.ServeEngine` through the :class:`~glocal_cli.serve.runner.ModelRunner`
(one model thread, off the event loop) and returns JSON. Every error, expected or not, is a JSON
object ``{"error": "<one line>", "kind": "<class>"}`` with a fitting HTTP status, and the server
keeps serving. Endpoints are documented in docs/serve.md.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from glocal_cli import __version__
from glocal_cli.console import console, info, warn
from glocal_cli.errors import GLocalError, InputError, NotAvailableError
from glocal_cli.infer.config import InpaintFill
from glocal_cli.serve.config import ServeConfig
from glocal_cli.serve.engine import ServeEngine, UnsupportedMediaError, png_bytes
from glocal_cli.serve.poses import pose_from_wire
from glocal_cli.serve.runner import ModelRunner

__all__ = ["STATIC_DIR", "create_app", "is_loopback", "run_server"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The page: ``index.html``, ``app.js``, ``style.css`` (package data)."""

Triples = list[list[float]]


# ------------------------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransferRequest(_Body):
    """``POST /api/transfer``."""

    image_id: str = Field(max_length=64, description="Id returned by /api/keypoints or /api/examples/{name}.")
    target_pose: Triples = Field(description="18 [x, y, v] in the photo's pixels; v = 0 for a missing point.")
    source_pose: Triples | None = Field(None, description="Corrected source keypoints; default: the detected ones.")
    layers: list[str] = Field(default_factory=list, description="Any of parsing, flow, visibility.")
    paste_back: bool | None = Field(None, description="Result in the photo's canvas (default serve.paste_back).")
    save: bool = Field(False, description="Also write the result PNG into the output folder.")
    channel: str | None = Field(None, max_length=100, description="A newer request on this channel supersedes this one.")
    seq: int | None = Field(None, description="Echoed back, so a client can match answers to requests.")


class InpaintRequest(_Body):
    """``POST /api/inpaint``."""

    image_id: str = Field(max_length=64)
    mask: str | None = Field(None, description="PNG data URL of the photo's size; white (or opaque) = hole.")
    classes: list[str] = Field(default_factory=list, description="Parsing classes to remove, e.g. ['upper'].")
    dilate: int = Field(1, ge=0, le=32, description="Grow the class mask by this many frame pixels.")
    fill: InpaintFill | None = Field(
        None, description="infer.inpaint_fill for this request (default: the server's).")
    texture_strength: float | None = Field(
        None, ge=0, le=1, description="infer.texture_strength for this request: 0 = smooth, 1 = the hole filled with "
                                      "the known stripes and prints (with fill 'texture').")
    texture_depth: float | None = Field(
        None, ge=0, le=10000, description="infer.texture_depth for this request: pixels over which the texture fades "
                                          "into the hole, 0 = none.")
    source_pose: Triples | None = None
    paste_back: bool | None = None
    save: bool = False
    channel: str | None = Field(None, max_length=100)
    seq: int | None = None


class AnimationRequest(_Body):
    """``POST /api/animation``."""

    image_id: str = Field(max_length=64)
    poses: list[Triples] = Field(min_length=2, max_length=16, description="Key poses, in the photo's pixels.")
    frames: int = Field(12, description="Frames in all (2..serve.animation_max_frames).")
    fps: float | None = Field(None, gt=0, le=60)
    bounce: bool = Field(False, description="Play forward then backward.")
    format: str = Field("gif", description="gif or mp4.")
    source_pose: Triples | None = None


class PoseExportRequest(_Body):
    """``POST /api/poses/openpose``."""

    pose: Triples
    width: int | None = Field(None, ge=1, le=100_000)
    height: int | None = Field(None, ge=1, le=100_000)


# ----------------------------------------------------------------------------------------- helpers


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with HTTP 413 before any route sees them.

    The body is read here (up to the limit) and replayed to the app, so a client that sends no
    Content-Length (chunked) is held to the same limit.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await _too_large(send, int(length), self.limit)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await _too_large(send, size, self.limit)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replay = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay_receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return replay
            return await receive()

        await self.app(scope, replay_receive, send)


class ErrorShieldMiddleware:
    """Turn an unexpected exception of any route into HTTP 500 ``{"error": ...}`` and keep serving.

    Starlette's own last-resort handler answers too but re-raises the exception (a traceback in
    the server log for every bad request); here it ends with the JSON answer and one log line.
    """

    def __init__(self, app: Any, engine: ServeEngine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the point of this class: no error stops the server
            self.engine.counters["errors"] += 1
            console.print(f"[bold red]error:[/bold red] {scope.get('path')}: unexpected "
                          f"{exc.__class__.__name__}: {exc}", markup=True, highlight=False)
            if started:
                return
            await _send_json(send, 500, {"error": f"internal error ({exc.__class__.__name__}: {exc}); "
                                                  "the server keeps running", "kind": exc.__class__.__name__})


async def _send_json(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Any, size: int, limit: int) -> None:
    await _send_json(send, 413, {
        "error": f"request body of {size:,} bytes is over the limit of {limit:,} bytes "
                 f"({limit / 1024 / 1024:g} MB, serve.max_upload_mb)",
        "kind": "PayloadTooLargeError",
    })


def _status_of(exc: Exception) -> int:
    status = getattr(exc, "http_status", None)
    if isinstance(status, int):
        return status
    if isinstance(exc, NotAvailableError):
        return 503
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, GLocalError):
        return 422
    return 500


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": message, "kind": kind}, status_code=status)


def _pose(value: Any, where: str) -> Any:
    return None if value is None else pose_from_wire(value, where)


def _raw_upload(request: Request, body: bytes, what: str) -> bytes:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        raise UnsupportedMediaError(
            f"{what}: send the file's bytes as the request body (e.g. curl --data-binary @file), not a form"
        )
    return body


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------- app


def create_app(engine: ServeEngine, runner: ModelRunner | None = None) -> FastAPI:
    """The ASGI app serving ``engine`` (see the module docstring and docs/serve.md)."""
    runner = runner or ModelRunner()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        await runner.run(engine.warmup)
        yield
        runner.shutdown()
        engine.close()

    app = FastAPI(title="glocal serve", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.engine = engine
    app.state.runner = runner
    app.add_middleware(BodyLimitMiddleware, limit=engine.config.max_upload_bytes)
    app.add_middleware(ErrorShieldMiddleware, engine=engine)  # outermost of ours: sees every unexpected error
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(GLocalError)
    async def _domain_error(_request: Request, exc: GLocalError) -> JSONResponse:
        status = _status_of(exc)
        if status != 409:
            engine.counters["errors"] += 1
        return _error(status, str(exc), exc.__class__.__name__)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        engine.counters["errors"] += 1
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return _error(422, "invalid request: " + "; ".join(parts), "ValidationError")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "HTTPError")

    # -- page and files ----------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/files/{name}")
    async def output_file(name: str) -> FileResponse:
        """A file the server wrote into its output folder (downloads)."""
        return FileResponse(engine.out.resolve(name), filename=name)

    # -- status and library ------------------------------------------------------------------
    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        """Model, detector, limits and counters."""
        out = engine.health()
        out["queue"] = runner.queued
        out["superseded"] = runner.superseded
        return out

    @app.get("/api/examples")
    async def examples() -> dict[str, Any]:
        """Example photos and poses."""
        return engine.list_examples()

    @app.get("/api/examples/{name}/image")
    async def example_image(name: str) -> FileResponse:
        return FileResponse(engine.example_path(name))

    @app.post("/api/examples/{name}")
    async def use_example(name: str) -> dict[str, Any]:
        """Load an example photo with its sidecar pose and parsing; same answer as /api/keypoints."""
        entry = await runner.run(engine.add_example, name)
        return entry.describe()

    @app.get("/api/images/{image_id}")
    async def image(image_id: str) -> Response:
        """A stored photo as PNG (as the server sees it: upright, RGB, downscaled if it was large)."""
        entry = engine.get(image_id)
        return Response(await run_in_threadpool(png_bytes, entry.image), media_type="image/png")

    @app.post("/api/keypoints")
    async def keypoints(request: Request, name: str = "upload", store: bool = True,
                        align_to: str | None = None) -> dict[str, Any]:
        """Upload a photo (raw bytes as the body): keypoints detected (or the default pose); kept under an id.

        ``store=false``: only detect (a target pose from another photo), moved onto ``align_to``'s person.
        """
        data = _raw_upload(request, await request.body(), name)
        if store:
            entry = await runner.run(engine.add_upload, data, name)
            return entry.describe()
        return await runner.run(engine.pose_from_photo, data, align_to, name)

    @app.get("/api/poses")
    async def poses(align_to: str | None = None) -> dict[str, Any]:
        """The pose library (example poses, example photos' poses, a standing pose)."""
        return {"poses": await runner.run(engine.pose_library, align_to)}

    @app.post("/api/poses/file")
    async def pose_file(request: Request, align_to: str | None = None) -> dict[str, Any]:
        """Read a pose file (OpenPose, COCO or mmpose JSON as the body)."""
        data = _raw_upload(request, await request.body(), "pose file")
        return await runner.run(engine.pose_from_file, data, align_to)

    @app.post("/api/poses/openpose")
    async def pose_export(req: PoseExportRequest) -> dict[str, Any]:
        """Write a pose as OpenPose JSON into the output folder; answer its download URL."""
        pose = pose_from_wire(req.pose)
        path = await runner.run(engine.export_pose, pose, req.width, req.height)
        return {"file": path.name, "url": f"/files/{path.name}"}

    # -- model calls -------------------------------------------------------------------------
    @app.post("/api/transfer")
    async def transfer(req: TransferRequest) -> dict[str, Any]:
        """Re-pose the photo to ``target_pose``."""
        target = pose_from_wire(req.target_pose, "target_pose")
        source = _pose(req.source_pose, "source_pose")
        out = await runner.run(engine.transfer, req.image_id, target, source, tuple(req.layers), req.paste_back,
                               req.save, channel=req.channel)
        out["seq"] = req.seq
        return out

    @app.post("/api/inpaint")
    async def inpaint(req: InpaintRequest) -> dict[str, Any]:
        """Fill a brush mask and/or parsing classes of the photo."""
        fill = {k: v for k, v in (("inpaint_fill", req.fill), ("texture_strength", req.texture_strength),
                                  ("texture_depth", req.texture_depth)) if v is not None}
        out = await runner.run(engine.inpaint, req.image_id, req.mask or None, tuple(req.classes), req.dilate,
                               _pose(req.source_pose, "source_pose"), req.paste_back, req.save, fill or None,
                               channel=req.channel)
        out["seq"] = req.seq
        return out

    @app.post("/api/animation")
    async def animation(req: AnimationRequest) -> dict[str, Any]:
        """Write an animation through the key poses into the output folder; answer its download URL."""
        key_poses = [pose_from_wire(p, f"poses[{i}]") for i, p in enumerate(req.poses)]
        return await runner.run(engine.animation, req.image_id, key_poses, req.frames, req.fps,
                                _pose(req.source_pose, "source_pose"), req.format, req.bounce)

    return app


# ------------------------------------------------------------------------------------------ server


def check_port(host: str, port: int) -> None:
    """:class:`NotAvailableError` when ``host:port`` cannot be bound (in use, or not an address here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise NotAvailableError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port") from None


def run_server(pipeline: Any, config: ServeConfig, examples: Path | None = None, inpaint_pipeline: Any = None) -> None:
    """Serve ``pipeline`` on ``config.host:config.port`` until interrupted (blocking)."""
    import uvicorn

    check_port(config.host, config.port)
    engine = ServeEngine(pipeline, config, examples, inpaint_pipeline=inpaint_pipeline)
    app = create_app(engine)
    if not is_loopback(config.host):
        warn(f"serving on {config.host}: anyone who can reach this address can use the model and read "
             f"{engine.out.root}; the default 127.0.0.1 serves this machine only")
    shown = f"[{config.host}]" if ":" in config.host else config.host
    info(f"glocal serve: http://{shown}:{config.port}/  (outputs: {engine.out.root}; Ctrl+C stops)")
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
