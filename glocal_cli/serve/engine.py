"""The model side of ``glocal serve``: photos in memory, keypoints, transfer, inpainting, exports.

:class:`ServeEngine` is plain synchronous Python around a
:class:`~glocal_cli.infer.pipeline.GLocalPipeline`; the web app runs every call in its one model
thread (:mod:`glocal_cli.serve.runner`), so the engine needs no locking of its own. It is usable
without a web server (tests, scripts).

Coordinates: every pose the engine receives or returns is in pixels of the photo it belongs to
(pixel-centre convention, see :mod:`glocal_cli.serve.poses`); target poses are mapped into the
model frame with the photo's own fit (``infer.pose_frame = source``), so results pasted back into
the photo's canvas line up with the skeleton the user dragged.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import itertools
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glocal_cli import __version__
from glocal_cli.data.backends import BackendSpec, make_backend
from glocal_cli.data.images import IMAGE_SUFFIXES, pil_to_rgb, resize_image, save_image
from glocal_cli.data.keypoints import Pose, read_pose_file, write_openpose_json
from glocal_cli.data.masks import semantic_mask
from glocal_cli.data.parsing import CLASS_NAMES, colorize, read_parsing
from glocal_cli.errors import ConfigError, GLocalError, InputError, NotAvailableError
from glocal_cli.infer.composite import DETAIL_KEYS, compose, mask_to_canvas
from glocal_cli.infer.io import (
    check_out_dir,
    find_sidecar,
    limit_size,
    list_images,
    load_source_image,
    map_target_pose,
    prepare_source,
    safe_stem,
)
from glocal_cli.infer.prepare import ModelInput, collate, frame_mask
from glocal_cli.infer.video import write_video
from glocal_cli.serve.config import ServeConfig
from glocal_cli.serve.poses import align_pose, default_pose, interpolation_sequence, pose_to_wire

FILL_KEYS = ("inpaint_fill", "texture_strength", "texture_depth")
"""The ``infer.*`` settings one inpainting request may change (``POST /api/inpaint``'s ``fill``)."""

__all__ = [
    "IMAGE_FORMATS",
    "LAYERS",
    "ImageEntry",
    "OutputFolder",
    "PayloadTooLargeError",
    "ServeEngine",
    "SupersededError",
    "UnknownItemError",
    "UnsupportedMediaError",
    "decode_image",
    "decode_mask",
    "png_bytes",
    "png_data_url",
]

IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "MPO")
"""Image formats (PIL's names) accepted as uploads."""

LAYERS: tuple[str, ...] = ("parsing", "flow", "visibility")
"""Optional result layers the page can ask for."""


class UnsupportedMediaError(InputError):
    """An upload that is not an image of an accepted format (HTTP 415)."""

    http_status = 415


class PayloadTooLargeError(InputError):
    """A request body or image over the configured limits (HTTP 413)."""

    http_status = 413


class UnknownItemError(InputError):
    """An image id, example or output file that does not exist (HTTP 404)."""

    http_status = 404


class SupersededError(GLocalError):
    """A request dropped because a newer one arrived on the same channel (HTTP 409)."""

    http_status = 409


# -------------------------------------------------------------------------------------- pictures


def png_bytes(image: np.ndarray) -> bytes:
    """``uint8 (H, W[, 3])`` as PNG bytes (fast compression: these are previews)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_data_url(image: np.ndarray) -> str:
    """``uint8`` image as a ``data:image/png;base64,...`` URL (what ``<img src>`` and scripts both take)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def decode_image(data: bytes, max_pixels: int, where: str = "upload") -> np.ndarray:
    """Decode uploaded bytes as ``uint8 (H, W, 3)`` RGB (EXIF-rotated, transparency on white).

    Raises :class:`UnsupportedMediaError` for anything that is not an image of :data:`IMAGE_FORMATS`
    and :class:`PayloadTooLargeError` for one over ``max_pixels`` (checked from the header, before
    the pixels are decoded).
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InputError(f"{where}: empty request body; send the image file's bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in IMAGE_FORMATS:
                    raise UnsupportedMediaError(
                        f"{where}: {im.format} images are not accepted (use PNG, JPEG, WebP, BMP, GIF or TIFF)"
                    )
                w, h = im.size
                if w * h > max_pixels:
                    raise PayloadTooLargeError(
                        f"{where}: image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,} (serve.max_pixels)"
                    )
                im.load()
                return pil_to_rgb(im)
    except UnidentifiedImageError:
        raise UnsupportedMediaError(
            f"{where}: not an image (expected PNG, JPEG, WebP, BMP, GIF or TIFF bytes)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise PayloadTooLargeError(f"{where}: image too large to decode safely ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{where}: cannot read image ({exc.__class__.__name__}: {exc})") from None


def decode_mask(data_url: str, size: tuple[int, int], where: str = "mask") -> np.ndarray:
    """A brush mask sent as a PNG data URL (or bare base64): ``bool (H, W)``, hole = bright or opaque pixels.

    The page paints white strokes on a transparent canvas of the photo's size; a black-and-white
    PNG works too. A mask of another size is resized (nearest).
    """
    from PIL import Image, UnidentifiedImageError

    text = data_url.split(",", 1)[1] if data_url.startswith("data:") else data_url
    try:
        raw = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            rgba = np.asarray(im.convert("RGBA"))
    except (ValueError, UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{where}: not a PNG data URL ({exc.__class__.__name__})") from None
    alpha = rgba[..., 3]
    bright = rgba[..., :3].max(axis=2)
    mask = (alpha > 127) & (bright > 127) if (alpha < 255).any() else bright > 127
    if mask.shape != tuple(size):
        mask = resize_image(mask.astype(np.uint8) * 255, size[0], size[1], "nearest") > 127
    return mask


# ---------------------------------------------------------------------------------------- outputs


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class OutputFolder:
    """The one folder the server writes into; new files get fresh names (nothing is ever replaced)."""

    def __init__(self, root: str | Path) -> None:
        self.root = check_out_dir(root).resolve()
        self._counter = itertools.count(1)

    def new_path(self, prefix: str, suffix: str) -> Path:
        """A path ``<root>/<prefix>-<time>-<n><suffix>`` that does not exist yet (the folder is created)."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:
            path = self.root / f"{prefix}-{stamp}-{next(self._counter):04d}{suffix}"
            if not path.exists():
                return path

    def resolve(self, name: str) -> Path:
        """The existing file ``name`` directly inside the folder; :class:`UnknownItemError` otherwise.

        Only plain names are accepted (no separators, no leading dot): nothing outside the folder is served.
        """
        if not _SAFE_NAME.match(name):
            raise UnknownItemError(f"{name!r}: not a file name of the output folder")
        path = (self.root / name).resolve()
        if path.parent != self.root or not path.is_file():
            raise UnknownItemError(f"{name}: no such file in the output folder")
        return path

    def scratch(self) -> Path:
        """A private scratch folder inside the output folder (for parsing uploaded pose files)."""
        path = self.root / ".scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path


# ------------------------------------------------------------------------------------------ images


@dataclass
class ImageEntry:
    """A photo held in memory by the server."""

    id: str
    """Opaque id the page passes back."""
    name: str
    """File or example name (for display and output names)."""
    image: np.ndarray
    """``uint8 (H, W, 3)`` RGB (downscaled to ``infer.max_input_side``)."""
    pose: Pose
    """Keypoints in the photo's pixels: detected, from a sidecar, or the default pose."""
    pose_source: str
    """Where :attr:`pose` came from: a detector name, ``sidecar``, or ``default``."""
    parsing: np.ndarray | None = None
    """``uint8 (H, W)`` parsing labels from a sidecar, else ``None`` (estimated per source pose)."""
    notes: list[str] = field(default_factory=list)
    """Warnings to show with the photo."""
    prepared: OrderedDict[bytes, Any] = field(default_factory=OrderedDict)
    """Small cache: source pose -> the photo fitted into the frame with its parsing."""

    def describe(self) -> dict[str, Any]:
        """The JSON the page gets for a new photo."""
        h, w = self.image.shape[:2]
        return {
            "image_id": self.id, "name": self.name, "width": w, "height": h,
            "pose": pose_to_wire(self.pose), "pose_source": self.pose_source,
            "detected": self.pose_source not in ("default", "sidecar"),
            "has_parsing": self.parsing is not None, "notes": list(self.notes),
            "image_url": f"/api/images/{self.id}",
        }


class ServeEngine:
    """Photos, poses and model calls of the server (see the module docstring)."""

    def __init__(self, pipeline: Any, config: ServeConfig | None = None, examples: Path | None = None,
                 inpaint_pipeline: Any = None) -> None:
        self.pipeline = pipeline
        # inpainting may have weights of its own (weights/inpaint); photos are prepared in one frame for both
        if inpaint_pipeline is not None and tuple(inpaint_pipeline.frame_hw) != tuple(pipeline.frame_hw):
            raise ConfigError(f"serve: the inpainting weights' frame {inpaint_pipeline.frame_hw} differs from the "
                              f"transfer weights' {pipeline.frame_hw}")
        self.inpaint_pipeline = inpaint_pipeline or pipeline
        if hasattr(pipeline, "body_flow"):  # a dragged joint moves a little per request: refit from the last fit
            pipeline.body_flow.warm_start = True
        self.config = config or ServeConfig()
        self.out = OutputFolder(self.config.out)
        self.examples = examples
        self.images: OrderedDict[str, ImageEntry] = OrderedDict()
        self._images_lock = threading.Lock()  # the event loop reads photos while the model thread adds them
        self._detector: Any = None
        self._detector_name: str | None = None
        self._detector_reason = "not initialised"
        self._detector_ready = False
        self.started = time.time()
        self.counters = {"transfer": 0, "inpaint": 0, "keypoints": 0, "animation": 0, "errors": 0}

    # -- status -------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Model, detector, limits: what ``/api/health`` returns."""
        pipe = self.pipeline
        return {
            "status": "ok",
            "version": __version__,
            "weights": str(pipe.weights_dir) if pipe.weights_dir is not None else None,
            "random_init": bool(pipe.random_init),
            "frame": list(pipe.frame_hw),
            "device": str(pipe.device),
            "detector": {"name": self._detector_name, "available": self._detector is not None,
                         "reason": self._detector_reason},
            "limits": {"max_upload_bytes": self.config.max_upload_bytes, "max_pixels": self.config.max_pixels,
                       "max_input_side": pipe.config.max_input_side,
                       "animation_max_frames": self.config.animation_max_frames},
            "page": {"debounce_ms": self.config.debounce_ms, "animation_fps": self.config.animation_fps,
                     "paste_back": self.config.paste_back},
            "layers": list(LAYERS),
            "classes": _class_names(),
            "images_held": len(self.images),
            "counters": dict(self.counters),
            "uptime_s": round(time.time() - self.started, 1),
        }

    def warmup(self) -> None:
        """Build the keypoint detector (call from the model thread: detectors are not thread-safe)."""
        self._ensure_detector()

    # -- keypoints ----------------------------------------------------------------------------
    def _ensure_detector(self) -> None:
        if self._detector_ready:
            return
        self._detector_ready = True
        name = self.config.keypoints
        if name == "none":
            self._detector_reason = "disabled (serve.keypoints = none)"
            return
        try:
            self._detector = make_backend(BackendSpec(name, device=str(self.pipeline.device)))
            self._detector_name = self._detector.name
            self._detector_reason = self._detector.describe()
        except GLocalError as exc:
            self._detector = None
            self._detector_reason = str(exc)

    def detect(self, image: np.ndarray) -> tuple[Pose, str, list[str]]:
        """``(pose, source, notes)`` for a photo: the detector's pose, else the default pose."""
        self._ensure_detector()
        h, w = image.shape[:2]
        if self._detector is None:
            return default_pose(h, w), "default", [
                f"no keypoint detector ({self._detector_reason}): drag the skeleton onto the person"]
        pose = self._detector.detect(image)
        if pose is None:
            return default_pose(h, w), "default", ["the detector found no person: drag the skeleton onto the person"]
        return pose, str(self._detector_name), []

    # -- photos -------------------------------------------------------------------------------
    def _store(self, entry: ImageEntry) -> ImageEntry:
        with self._images_lock:
            self.images[entry.id] = entry
            while len(self.images) > self.config.max_images:
                self.images.popitem(last=False)
        return entry

    def get(self, image_id: str) -> ImageEntry:
        """The stored photo ``image_id`` (marked as recently used)."""
        with self._images_lock:
            entry = self.images.get(image_id)
            if entry is None:
                raise UnknownItemError(f"image {image_id!r}: unknown or expired (upload the photo again)")
            self.images.move_to_end(image_id)
        return entry

    def _limit(self, image: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
        return limit_size(image, self.pipeline.config.max_input_side, where)

    def add_upload(self, data: bytes, name: str = "upload", detect: bool = True) -> ImageEntry:
        """Decode, downscale if needed, detect keypoints and keep an uploaded photo."""
        label = _display_name(name)
        image, notes = self._limit(decode_image(data, self.config.max_pixels, label), label)
        pose, source, more = self.detect(image) if detect else (default_pose(*image.shape[:2]), "default", [])
        self.counters["keypoints"] += 1
        return self._store(ImageEntry(uuid.uuid4().hex[:16], label, image, pose, source, None, notes + more))

    def list_examples(self) -> dict[str, Any]:
        """Example photos (``<examples>/sources``) and poses (``<examples>/poses``) by name."""
        sources, poses = [], []
        if self.examples is not None:
            src_dir, pose_dir = self.examples / "sources", self.examples / "poses"
            if src_dir.is_dir():
                sources = [p.stem for p in list_images(src_dir)]
            if pose_dir.is_dir():
                poses = sorted(p.stem for p in pose_dir.glob("*.json") if not p.name.startswith("."))
        return {"sources": [{"name": n, "image_url": f"/api/examples/{n}/image"} for n in sources], "poses": poses}

    def example_path(self, name: str) -> Path:
        """The example photo ``name`` (a stem listed by :meth:`list_examples`)."""
        if self.examples is None or not (self.examples / "sources").is_dir():
            raise UnknownItemError("no examples folder (set serve.examples)")
        for path in list_images(self.examples / "sources"):
            if path.stem == name:
                return path
        raise UnknownItemError(f"example {name!r}: not found")

    def add_example(self, name: str) -> ImageEntry:
        """Keep an example photo with its sidecars (pose ``<stem>.json``, parsing ``<stem>_parsing.png``)."""
        path = self.example_path(name)
        image, notes = load_source_image(path, self.pipeline.config.max_input_side)
        pose_file, parsing_file = find_sidecar(path, "pose"), find_sidecar(path, "parsing")
        parsing = None
        if pose_file is not None and not notes:  # a downscaled photo no longer matches its sidecars
            pose, source = read_pose_file(pose_file)[0], "sidecar"
            parsing = read_parsing(parsing_file) if parsing_file is not None else None
        else:
            pose, source, more = self.detect(image)
            notes += more
        return self._store(ImageEntry(uuid.uuid4().hex[:16], name, image, pose, source, parsing, notes))

    # -- pose library -------------------------------------------------------------------------
    def pose_library(self, align_to: str | None = None) -> list[dict[str, Any]]:
        """Library poses: the example poses and the example photos' poses, in the photo ``align_to``'s pixels
        when given (moved onto its person), else in their own canvas."""
        entry = self.get(align_to) if align_to else None
        items: list[dict[str, Any]] = []
        files: list[tuple[str, Path, tuple[int, int] | None]] = []
        if self.examples is not None:
            for p in sorted((self.examples / "poses").glob("*.json")):
                files.append((p.stem, p, _canvas_of(p, self.examples / "sources", IMAGE_SUFFIXES)))
            for p in sorted((self.examples / "sources").glob("*.json")):
                files.append((f"{p.stem} (photo)", p, _canvas_of(p, p.parent, IMAGE_SUFFIXES)))
        for name, path, canvas in files:
            try:
                pose, _ = read_pose_file(path)
            except InputError:
                continue
            items.append(self._library_item(name, pose, canvas, entry))
        h, w = entry.image.shape[:2] if entry is not None else (256, 176)
        items.append({"name": "standing (default)", "pose": pose_to_wire(default_pose(h, w)), "width": w, "height": h})
        return items

    def _library_item(self, name: str, pose: Pose, canvas: tuple[int, int] | None,
                      entry: ImageEntry | None) -> dict[str, Any]:
        if entry is not None:
            h, w = entry.image.shape[:2]
            pose = align_pose(pose, entry.pose, h, w)
        elif canvas is not None:
            h, w = canvas
        else:
            box = pose.bbox() or (0.0, 0.0, 1.0, 1.0)
            h, w = int(box[3]) + 2, int(box[2]) + 2
        return {"name": name, "pose": pose_to_wire(pose), "width": w, "height": h}

    def pose_from_file(self, data: bytes, align_to: str | None = None) -> dict[str, Any]:
        """Read an uploaded pose file (OpenPose / COCO / mmpose JSON) with the library's reader."""
        if not data:
            raise InputError("pose file: empty request body")
        scratch = self.out.scratch()
        with tempfile.NamedTemporaryFile(dir=scratch, suffix=".json", delete=True) as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                pose, note = read_pose_file(tmp.name)
            except InputError as exc:
                raise InputError(str(exc).replace(tmp.name, "pose file")) from None
        entry = self.get(align_to) if align_to else None
        item = self._library_item("pose file", pose, None, entry)
        item["notes"] = [note.replace(tmp.name, "pose file")] if note and "kept person" in note else []
        return item

    def pose_from_photo(self, data: bytes, align_to: str | None = None, name: str = "photo") -> dict[str, Any]:
        """Detect the pose of another photo (not kept) and move it onto the photo ``align_to``."""
        label = _display_name(name)
        image, notes = self._limit(decode_image(data, self.config.max_pixels, label), label)
        self._ensure_detector()
        if self._detector is None:
            raise _not_available(f"{label}: no keypoint detector ({self._detector_reason})")
        pose = self._detector.detect(image)
        if pose is None:
            raise InputError(f"{label}: the detector found no person")
        self.counters["keypoints"] += 1
        item = self._library_item(label, pose, image.shape[:2], self.get(align_to) if align_to else None)
        item["notes"] = notes
        return item

    def export_pose(self, pose: Pose, width: int | None = None, height: int | None = None) -> Path:
        """Write ``pose`` as OpenPose JSON (COCO-18) into the output folder."""
        path = self.out.new_path("pose", ".json")
        if width is not None and height is not None:
            pose = pose.clip_to_frame(height, width)
        write_openpose_json(path, pose)
        return path

    # -- model calls --------------------------------------------------------------------------
    def _prepared(self, entry: ImageEntry, source_pose: Pose, pipeline: Any = None) -> Any:
        """The photo fitted into the frame for ``source_pose``, with parsing (sidecar, or estimated once by the
        network of ``pipeline``, the one that will run: the transfer weights', or the inpainting weights')."""
        pipe = pipeline or self.pipeline
        key = source_pose.xy.tobytes() + source_pose.visible.tobytes() + str(id(pipe)).encode()
        hit = entry.prepared.get(key)
        if hit is not None:
            entry.prepared.move_to_end(key)
            return hit
        prepared = prepare_source(entry.image, source_pose, entry.parsing, pipe.frame_hw, entry.name,
                                  margin=pipe.config.fit_margin, min_visible=pipe.config.min_visible_keypoints,
                                  parser_scale=pipe.parser_scale)
        if prepared.parsing is None:
            prepared.parsing = self._estimate_parsing(prepared, pipe)
        entry.prepared[key] = prepared
        while len(entry.prepared) > 4:
            entry.prepared.popitem(last=False)
        return prepared

    def _estimate_parsing(self, prepared: Any, pipe: Any) -> np.ndarray:
        """Source parsing labels predicted by ``pipe``'s semantic network (``Pt = Ps``), computed once per pose."""
        import torch

        with torch.inference_mode(), pipe._autocast():
            batch = self._batch(prepared, 1)
            image, maps = pipe.inputs(batch)
            onehot = pipe.estimate_source_parsing(image, maps, batch.get("parser_image"))
        return onehot.argmax(1)[0].to(torch.uint8).cpu().numpy()

    @staticmethod
    def _batch(prepared: Any, count: int, targets: Sequence[Pose] | None = None,
               mask: np.ndarray | None = None) -> dict[str, Any]:
        """The batch :meth:`GLocalPipeline.forward_batch` takes: one photo, ``count`` items
        (:func:`glocal_cli.infer.prepare.collate`, as the CLI and the API make it)."""
        return collate([ModelInput(prepared.image, prepared.pose, prepared.transform, prepared.parsing,
                                   targets[i] if targets is not None else None, mask, prepared.parser_image)
                        for i in range(count)])

    def _map_targets(self, prepared: Any, poses: Sequence[Pose]) -> tuple[list[Pose], list[str]]:
        pipe, out, notes = self.pipeline, [], []
        for i, pose in enumerate(poses):
            where = "target pose" if len(poses) == 1 else f"target pose {i}"
            mapped, more = map_target_pose(pose, "source", pipe.frame_hw, prepared.transform, where=where,
                                           min_visible=pipe.config.min_visible_keypoints)
            out.append(mapped)
            notes += more
        return out, notes

    def _to_canvas(self, frame: np.ndarray, prepared: Any, entry: ImageEntry, nearest: bool = False,
                   paste_back: bool | None = None) -> np.ndarray:
        """A frame-sized picture in the photo's canvas (or unchanged without paste-back)."""
        if not (self.config.paste_back if paste_back is None else paste_back):
            return frame
        t = prepared.transform
        if frame.shape[:2] != (t.frame_height, t.frame_width):
            frame = resize_image(frame, t.frame_height, t.frame_width, "nearest" if nearest else "bilinear")
        hint = None
        if t.offset_x < 0 or t.offset_y < 0 or t.offset_x + t.resized_width > t.frame_width or \
                t.offset_y + t.resized_height > t.frame_height:
            hint = np.full((t.source_height, t.source_width) + frame.shape[2:], 255, np.uint8)
        return t.paste_back(frame, hint, "nearest" if nearest else "bicubic")

    def _result_to_canvas(self, out: Any, index: int, prepared: Any, entry: ImageEntry,
                          paste_back: bool | None = None) -> np.ndarray:
        """Transfer result ``index`` of a batch in the photo's canvas as ``glocal transfer`` writes it: with the
        weights' pixel blend redone at the photo's resolution (``infer.full_res_blend``), else upsampled."""
        frame = out.image[index].numpy()
        if not (self.config.paste_back if paste_back is None else paste_back):
            return frame
        detail = None if out.detail is None else [out.detail[k][index].numpy() for k in DETAIL_KEYS]
        return compose(frame, entry.image, prepared.transform, detail=detail)[0]

    def transfer(self, image_id: str, target_pose: Pose, source_pose: Pose | None = None,
                 layers: Sequence[str] = (), paste_back: bool | None = None, save: bool = False) -> dict[str, Any]:
        """Re-pose the photo ``image_id`` to ``target_pose`` (both poses in the photo's pixels)."""
        import torch

        unknown = sorted(set(layers) - set(LAYERS))
        if unknown:
            raise InputError(f"layers: unknown {', '.join(unknown)} (choose from {', '.join(LAYERS)})")
        t0 = time.perf_counter()
        entry = self.get(image_id)
        prepared = self._prepared(entry, entry.pose if source_pose is None else source_pose)
        (target,), notes = self._map_targets(prepared, [target_pose])
        out = self.pipeline.forward_batch(self._batch(prepared, 1, [target]), "transfer", want_flow="flow" in layers)
        t_model = time.perf_counter()
        result = self._result_to_canvas(out, 0, prepared, entry, paste_back)
        response: dict[str, Any] = {"image": png_data_url(result), "width": int(result.shape[1]),
                                    "height": int(result.shape[0]), "layers": {}, "notes": prepared.notes + notes}
        if "parsing" in layers:
            parsing = colorize(out.parsing[0].numpy())
            response["layers"]["parsing"] = png_data_url(self._to_canvas(parsing, prepared, entry, True, paste_back))
        if "flow" in layers and out.flow is not None:
            response["layers"]["flow"] = png_data_url(self._to_canvas(out.flow[0].numpy(), prepared, entry,
                                                                      paste_back=paste_back))
        if "visibility" in layers:
            with torch.inference_mode(), self.pipeline._autocast():
                image, maps = self.pipeline.inputs(self._batch(prepared, 1))
                tmaps = self.pipeline.heatmaps(torch.from_numpy(target.xy)[None], torch.from_numpy(target.visible)[None])
                _, vis = self.pipeline.model.estimate_flow(image, maps, tmaps)
            gray = (vis[0, 0].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            response["layers"]["visibility"] = png_data_url(
                self._to_canvas(np.repeat(gray[..., None], 3, axis=2), prepared, entry, paste_back=paste_back))
        if save:
            response["file"] = self._save(result, f"{_file_stem(entry.name)}-transfer")
        self.counters["transfer"] += 1
        response["ms"] = {"model": round((t_model - t0) * 1000, 1), "total": round((time.perf_counter() - t0) * 1000, 1)}
        return response

    def inpaint(self, image_id: str, mask: np.ndarray | str | None = None, classes: Sequence[str] = (),
                dilate: int = 1, source_pose: Pose | None = None, paste_back: bool | None = None,
                save: bool = False, fill: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Fill a hole of the photo ``image_id``: a brush ``mask`` (``bool`` in the photo's pixels) and/or
        the parsing ``classes`` (grown by ``dilate`` frame pixels). Outside the hole the photo is kept.
        ``mask`` may also be a PNG data URL (see :func:`decode_mask`). ``fill``: this request's fill settings
        over the server's (:data:`FILL_KEYS` of ``infer.*``, e.g. ``{"inpaint_fill": "texture",
        "texture_strength": 1.0}``); a bad value is an :class:`InputError`."""
        t0 = time.perf_counter()
        entry = self.get(image_id)
        pipeline = self.inpaint_pipeline
        if fill:
            unknown = sorted(set(fill) - set(FILL_KEYS))
            if unknown:
                raise InputError(f"inpaint: unknown fill setting(s) {', '.join(unknown)}; use {', '.join(FILL_KEYS)}")
            try:
                pipeline = pipeline.with_config(**fill)
            except (TypeError, ValueError) as exc:
                raise InputError(f"inpaint: {exc}") from exc
        if isinstance(mask, str):
            mask = decode_mask(mask, entry.image.shape[:2])
        pose = entry.pose if source_pose is None else source_pose
        prepared = self._prepared(entry, pose, self.inpaint_pipeline)  # the fill settings do not change it: cached
        h, w = pipeline.frame_hw
        hole = np.zeros((h, w), bool)
        if mask is not None:
            if mask.shape != entry.image.shape[:2]:
                raise InputError(f"mask: {mask.shape[0]}x{mask.shape[1]}, expected the photo's "
                                 f"{entry.image.shape[0]}x{entry.image.shape[1]}")
            hole |= frame_mask(mask, prepared.transform)  # as `glocal inpaint --mask FILE` makes it
        class_hole = None
        if classes:
            class_hole = semantic_mask(prepared.parsing, list(classes), max(0, int(dilate)))
            hole |= class_hole
        if not hole.any():
            raise InputError("inpaint: the mask is empty (paint over the photo or pick a class present in it)")
        # an estimated parsing saw the photo under the hole: the pipeline estimates it again from the photo with
        # the hole filled, as the CLI and the API do (a sidecar parsing is the user's and is kept)
        fill_source = prepared if entry.parsing is not None else dataclasses.replace(prepared, parsing=None)
        if mask is not None and mask.any():  # the drawn hole is missing: the frame is made with it filled
            fill_source = fill_source.hiding(entry.image, mask)
        out = pipeline.forward_batch(self._batch(fill_source, 1, mask=hole), "inpaint")
        frame = out.image[0].numpy()
        use_canvas = self.config.paste_back if paste_back is None else paste_back
        result = frame
        if use_canvas:  # as `glocal inpaint` writes it: every known pixel kept, the seam feathered
            # the drawn mask as drawn (the CLI's rule for a mask file), the classes' hole from the frame
            hole_canvas = np.zeros(entry.image.shape[:2], bool) if mask is None else np.asarray(mask, bool).copy()
            if class_hole is not None:
                hole_canvas |= mask_to_canvas(class_hole, prepared.transform, entry.image.shape[:2])
            result, _ = compose(frame, entry.image, prepared.transform, hole=hole_canvas,
                                prefill=None if out.prefill is None else out.prefill[0].numpy(),
                                probs=None if out.fill_probs is None else out.fill_probs[0].numpy(),
                                feather=pipeline.config.inpaint_feather,
                                fill=pipeline.config.inpaint_fill,
                                texture=pipeline.config.texture_options())
        response: dict[str, Any] = {
            "image": png_data_url(result), "width": int(result.shape[1]), "height": int(result.shape[0]),
            "masked": png_data_url(self._to_canvas(out.masked[0].numpy(), prepared, entry, paste_back=paste_back))
            if out.masked is not None else None,
            "hole_fraction": round(float(hole.mean()), 4), "notes": list(prepared.notes),
        }
        if save:
            response["file"] = self._save(result, f"{_file_stem(entry.name)}-inpaint")
        self.counters["inpaint"] += 1
        response["ms"] = {"total": round((time.perf_counter() - t0) * 1000, 1)}
        return response

    def animation(self, image_id: str, poses: Sequence[Pose], frames: int = 12, fps: float | None = None,
                  source_pose: Pose | None = None, fmt: str = "gif", bounce: bool = False) -> dict[str, Any]:
        """Results along the path through ``poses`` (``frames`` in all) written as a GIF or MP4 in the output folder."""
        if fmt not in ("gif", "mp4"):
            raise InputError(f"animation: format {fmt!r}; use gif or mp4")
        limit = self.config.animation_max_frames
        if not 2 <= frames <= limit:
            raise InputError(f"animation: frames = {frames} must be in 2..{limit} (serve.animation_max_frames)")
        if len(poses) < 2:
            raise InputError("animation: give at least two poses")
        entry = self.get(image_id)
        prepared = self._prepared(entry, entry.pose if source_pose is None else source_pose)
        targets, _ = self._map_targets(prepared, interpolation_sequence(list(poses), frames))
        pictures: list[np.ndarray] = []
        step = max(1, int(self.pipeline.config.batch_size))
        for start in range(0, len(targets), step):
            chunk = targets[start:start + step]
            out = self.pipeline.forward_batch(self._batch(prepared, len(chunk), chunk), "transfer")
            pictures += [self._result_to_canvas(out, i, prepared, entry) for i in range(len(chunk))]
        if bounce:
            pictures += pictures[-2:0:-1]
        path = self.out.new_path(f"{_file_stem(entry.name)}-animation", f".{fmt}")
        write_video(path, pictures, fps or self.config.animation_fps)
        self.counters["animation"] += 1
        return {"file": path.name, "url": f"/files/{path.name}", "frames": len(pictures)}

    def _save(self, image: np.ndarray, prefix: str) -> dict[str, str]:
        path = self.out.new_path(prefix, ".png")
        save_image(path, image)
        return {"file": path.name, "url": f"/files/{path.name}"}

    def close(self) -> None:
        """Release the keypoint detector."""
        if self._detector is not None:
            self._detector.close()
            self._detector = None


def _display_name(name: str) -> str:
    base = Path(str(name).replace("\\", "/")).name
    return "".join(c if c.isalnum() or c in "-_. " else "_" for c in base)[:80] or "upload"


def _file_stem(name: str) -> str:
    return safe_stem(name)[:60]


def _canvas_of(pose_file: Path, folder: Path, suffixes: Sequence[str]) -> tuple[int, int] | None:
    """The ``(H, W)`` of the picture a pose file belongs to: a same-stem image, else any image of ``folder``."""
    from PIL import Image

    candidates = [pose_file.with_suffix(s) for s in suffixes]
    if folder.is_dir():
        candidates += sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)
    for c in candidates:
        if c.is_file():
            try:
                with Image.open(c) as im:
                    return im.size[1], im.size[0]
            except OSError:
                continue
    return None


def _class_names() -> list[str]:
    return list(CLASS_NAMES)


def _not_available(message: str) -> GLocalError:
    err = NotAvailableError(message)
    err.http_status = 503  # type: ignore[attr-defined]
    return err
