"""``evaluate``: the library function behind ``glocal eval``.

Inputs are either two folders (generated, reference) matched by name rule, or a folder of panel
images. The "model plus prepared dataset" mode (:func:`glocal_cli.evaluate.evaluate_model`) is the same call after
inference: the inference library writes ``<from>_<to>.png`` for the dataset's test pairs into
``OUT/generated``, and ``evaluate(generated=that_folder, reference=dataset_dir, ...)`` pairs them with
the dataset's ``images/`` (a prepared dataset is accepted as ``reference``; its ``pairs-test.csv``
reports test pairs without an output and its ``train.lst`` is the FID real set of the
paper/gfla/pise/pidm protocols).

One pass over the pairs computes every per-image metric and the generated-side Inception features
on the chosen device; the real-set FID statistics come from the cache or one pass over the real set.
A metric whose weights are missing fails alone (reported, ``EvalResult.failed``) while the others
are still computed; LPIPS without weights is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from glocal_cli import __version__
from glocal_cli.console import make_progress, warn
from glocal_cli.errors import ConfigError, GLocalError, InputError, NotAvailableError, WeightsError
from glocal_cli.metrics.config import EvalConfig
from glocal_cli.metrics.fid import (
    FeatureStats,
    FIDInceptionV3,
    default_stats_cache_dir,
    find_inception_weights,
    frechet_distance,
    load_cached_stats,
    save_cached_stats,
    stats_cache_key,
)
from glocal_cli.metrics.inception_score import inception_score
from glocal_cli.metrics.lpips import LPIPS, find_lpips_weights
from glocal_cli.metrics.matching import (
    IMAGE_SUFFIXES,
    ImagePair,
    ImageRef,
    MatchResult,
    list_images,
    match_folders,
    split_panels,
)
from glocal_cli.metrics.protocol import (
    PATN_PAD,
    PER_IMAGE_METRICS,
    Protocol,
    align_pair,
    get_protocol,
    needs_patn_pad,
    select_metrics,
)
from glocal_cli.metrics.psnr import psnr, psnr_uint8_wraparound
from glocal_cli.metrics.report import EvalResult, MetricResult, check_outputs, write_reports
from glocal_cli.metrics.ssim import COMPILE_MIN_IMAGES, ssim


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ConfigError for an unusable device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name}: not a device (cpu, cuda, cuda:N or auto)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type != "cpu":
        raise ConfigError(f"--device {name}: only cpu and cuda are supported")
    return dev


@contextlib.contextmanager
def _exact_float32() -> Iterator[None]:
    """Disable TF32 while metrics run (TF32 convolutions would move FID and LPIPS)."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _to_hwc(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image))


def _stack(items: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """(B, 3, H, W) uint8 batch in channels-last memory (what SSIM and the convolutions like best)."""
    return torch.stack(items).to(device, non_blocking=True).permute(0, 3, 1, 2)


class _PairDataset(Dataset):
    """Aligned (generated, reference) H x W x 3 uint8 tensors; errors travel back as one-line strings."""

    def __init__(self, pairs: Sequence[ImagePair], protocol: Protocol) -> None:
        self.pairs = list(pairs)
        self.protocol = protocol

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        pair = self.pairs[i]
        try:
            gen, ref = align_pair(pair.generated.load(), pair.reference.load(), self.protocol, pair.name)
        except InputError as exc:
            return i, str(exc), None
        return i, _to_hwc(gen), _to_hwc(ref)


class _ImageDataset(Dataset):
    def __init__(self, refs: Sequence[ImageRef]) -> None:
        self.refs = list(refs)

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int):
        try:
            return i, _to_hwc(self.refs[i].load())
        except InputError as exc:
            return i, str(exc)


def _collate(batch):
    return batch


def _loader(dataset: Dataset, cfg: EvalConfig, device: torch.device) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=False,
        num_workers=cfg.workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )


def _groups(items: list[tuple]) -> list[list[tuple]]:
    """Split a batch into runs of equal image shape (mixed sizes cannot be stacked)."""
    groups: dict[tuple, list[tuple]] = {}
    for item in items:
        groups.setdefault(tuple(item[1].shape), []).append(item)
    return list(groups.values())


def _patn_pad(x: torch.Tensor) -> torch.Tensor:
    """Pad (B, C, H, 176) images with white (255) to width 256, PATN's ``addBounding``; float32."""
    x = x.to(torch.float32)
    if not needs_patn_pad(x.shape[-1]):
        return x
    extra = PATN_PAD[1] - x.shape[-1]
    return F.pad(x, (extra // 2, extra - extra // 2), value=255.0)


def _resize(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _fid_view(images_u8: torch.Tensor, protocol: Protocol, frame: tuple[int, int] | None, real: bool) -> torch.Tensor:
    """Images in [0, 1] as the protocol feeds them to the InceptionV3."""
    x = images_u8.to(torch.float32) / 255.0
    if protocol.fid.resize == "bilinear-256x176":
        return _resize(x, (256, 176))
    if protocol.fid.resize == "to-generated" and real and frame is not None and tuple(x.shape[-2:]) != frame:
        return F.interpolate(x, size=frame, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return x


def _real_set(match: MatchResult, protocol: Protocol, fid_real: str | Path | None) -> tuple[list[ImageRef], dict]:
    """The FID real set and a description of where it came from."""
    if fid_real is not None and str(fid_real) != "":
        folder = Path(fid_real)
        if not folder.is_dir():
            raise InputError(f"{folder}: --fid-real is not a folder")
        if (folder / "manifest.json").is_file() and (folder / "images").is_dir():
            return _dataset_train(folder)
        files = list_images(folder)
        if len(files) < 2:
            raise InputError(f"{folder}: --fid-real needs at least 2 images")
        return [ImageRef(p) for p in files], {"source": str(folder), "comparable": True}
    if protocol.fid.real_set == "train" and match.dataset_dir is not None:
        return _dataset_train(match.dataset_dir)
    seen: dict[str, ImageRef] = {}
    for pair in match.pairs:
        seen.setdefault(str(pair.reference), pair.reference)
    comparable = protocol.fid.real_set == "reference"
    if not comparable:
        warn(
            f"protocol '{protocol.name}' computes FID against the training set: pass --fid-real DIR; "
            f"using the {len(seen)} reference images instead (not comparable with published FIDs)"
        )
    return list(seen.values()), {"source": "reference images of the pairs", "comparable": comparable}


def _dataset_train(dataset: Path) -> tuple[list[ImageRef], dict]:
    lst = dataset / "train.lst"
    images = dataset / "images"
    if lst.is_file():
        names = [n.strip() for n in lst.read_text(encoding="utf-8").splitlines() if n.strip()]
        refs = [ImageRef(images / n) for n in names if (images / n).is_file()]
        source = f"{lst} ({len(refs)} of {len(names)} listed images present)"
    else:
        refs = [ImageRef(p) for p in list_images(images)]
        source = str(images)
    if len(refs) < 2:
        raise InputError(f"{dataset}: fewer than 2 training images for the FID real set")
    return refs, {"source": source, "comparable": True}


def _real_statistics(
    refs: list[ImageRef],
    protocol: Protocol,
    frame: tuple[int, int] | None,
    model: FIDInceptionV3,
    weights: Path,
    cfg: EvalConfig,
    device: torch.device,
    show_progress: bool,
) -> tuple[np.ndarray, np.ndarray, dict]:
    recipe = f"protocol={protocol.name};resize={protocol.fid.resize}"
    if protocol.fid.resize == "to-generated":
        recipe += f";frame={frame}"
    key = stats_cache_key((r.cache_entry() for r in refs), recipe, weights)
    cache_dir = Path(cfg.stats_cache_dir).expanduser() if cfg.stats_cache_dir else default_stats_cache_dir()
    cached = load_cached_stats(cache_dir, key)
    if cached is not None:
        mu, sigma, count = cached
        return mu, sigma, {"count": count, "cache": str(cache_dir), "cache_hit": True, "key": key[:24]}
    stats = FeatureStats()
    loader = _loader(_ImageDataset(refs), cfg, device)
    with _progress(show_progress) as bar:
        task = bar.add_task("FID real set", total=len(refs), status="") if bar else None
        for batch in loader:
            errors = [item[1] for item in batch if isinstance(item[1], str)]
            if errors:
                raise InputError(errors[0])
            for group in _groups(batch):
                x = _stack([item[1] for item in group], device)
                pool, _ = model(_fid_view(x, protocol, frame, real=True))
                stats.update(pool)
            if bar is not None:
                bar.advance(task, len(batch))
    mu, sigma = stats.mean_cov()
    path = save_cached_stats(
        cache_dir, key, mu, sigma, stats.count, {"protocol": protocol.name, "recipe": recipe, "weights": weights.name}
    )
    return mu, sigma, {"count": stats.count, "cache": str(path), "cache_hit": False, "key": key[:24]}


@contextlib.contextmanager
def _progress(show: bool):
    if not show:
        yield None
        return
    with make_progress(transient=True) as bar:
        yield bar


def _match(generated, reference, panel_dir, panels, panel_pad) -> tuple[MatchResult, dict[str, str]]:
    if panel_dir is not None:
        if generated is not None or reference is not None:
            raise ConfigError("--panel-dir replaces --generated/--reference: give one or the other")
        match = split_panels(panel_dir, panels, panel_pad)
        layout = panels if isinstance(panels, str) else ",".join(panels)
        return match, {"panel_dir": str(panel_dir), "panels": layout, "panel_pad": str(panel_pad)}
    if generated is None or reference is None:
        raise ConfigError("give --generated DIR and --reference DIR, or --panel-dir DIR with --panels")
    match = match_folders(generated, reference)
    inputs = {"generated": str(generated), "reference": str(match.reference_dir)}
    if match.dataset_dir is not None:
        inputs["dataset"] = str(match.dataset_dir)
    return match, inputs


def _pair_key(source: str, target: str) -> str:
    """``<from>_<to>`` without image extensions: the stem of the generated file of a pair."""
    return f"{_strip_image_suffix(source)}_{_strip_image_suffix(target)}"


def _strip_image_suffix(name: str) -> str:
    p = Path(name)
    return p.stem if p.suffix.lower() in IMAGE_SUFFIXES else name


def _restrict(match: MatchResult, expected: Sequence[tuple[str, str]]) -> MatchResult:
    """Keep the pairs named in ``expected``; list the expected pairs without a generated file."""
    keys = {_pair_key(a, b) for a, b in expected}
    kept = [p for p in match.pairs if _strip_image_suffix(p.name) in keys]
    have = {_strip_image_suffix(p.name) for p in kept}
    missing = [f"{a}_{b}" for a, b in expected if _pair_key(a, b) not in have]
    return dataclasses.replace(match, pairs=kept, unmatched_reference=[], missing_expected=missing)


def evaluate(
    generated: str | Path | None = None,
    reference: str | Path | None = None,
    *,
    panel_dir: str | Path | None = None,
    panels: str | Sequence[str] = "source,target,output",
    panel_pad: int = 0,
    config: EvalConfig | None = None,
    protocol: str | None = None,
    metrics: Sequence[str] | None = None,
    fid_real: str | Path | None = None,
    inception_weights: str | Path | None = None,
    lpips_weights: str | Path | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    worst_k: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    expected_pairs: Sequence[tuple[str, str]] | None = None,
    extra_inputs: dict[str, str] | None = None,
) -> EvalResult:
    """Evaluate generated images against their ground truth under a named protocol.

    Give ``generated`` and ``reference`` folders (``reference`` may be a prepared dataset folder),
    or ``panel_dir`` with a ``panels`` layout (``source,target,output``; ``-`` skips a panel) and
    ``panel_pad`` pixels removed on each side of every panel. Keyword arguments other than the
    inputs override the matching ``config`` fields. With ``out`` the report files are written there
    (OutputExistsError when they exist and ``overwrite`` is off; checked before any work).
    ``expected_pairs`` (``(from, to)`` names; the model plus dataset mode) restricts the evaluation
    to the generated files of those pairs (``<from>_<to>.png``) and lists the pairs without one;
    ``extra_inputs`` are recorded with the inputs in ``metrics.json`` and ``report.md``.
    Returns an :class:`EvalResult`; ``result.failed`` lists metrics that could not be computed.
    """
    start = time.perf_counter()
    cfg = config or EvalConfig()
    changes: dict[str, object] = {}
    for name, value in (("protocol", protocol), ("device", device), ("batch_size", batch_size),
                        ("worst_k", worst_k)):
        if value is not None:
            changes[name] = value
    if metrics is not None:
        changes["metrics"] = tuple(metrics)
    try:
        cfg = dataclasses.replace(cfg, **changes)
    except ValueError as exc:
        raise ConfigError(f"eval options: {exc}") from exc
    proto = get_protocol(cfg.protocol)
    wanted = select_metrics(proto, cfg.metrics)
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        check_outputs(out_dir, overwrite)
    if panel_pad < 0:
        raise ConfigError(f"--panel-pad {panel_pad}: must be >= 0")

    match, inputs = _match(generated, reference, panel_dir, panels, panel_pad)
    if expected_pairs is not None:
        match = _restrict(match, expected_pairs)
    inputs.update(extra_inputs or {})
    pairs = match.pairs
    if expected_pairs is not None and not pairs:
        raise InputError(f"{generated}: none of the {len(expected_pairs)} test pairs has a generated image")
    if proto.png_only:
        bad = [p.generated.path.name for p in pairs if p.generated.path.suffix.lower() != ".png"]
        if bad:
            raise InputError(
                f"{bad[0]}: protocol 'clean' takes PNG outputs only ({len(bad)} generated files are not PNG; "
                f"lossy formats change every metric)"
            )
    dev = resolve_device(cfg.device)
    results = {
        k: MetricResult(key=k, label=proto.label(k, cfg.lpips_net), recipe=proto.recipe(k, cfg.lpips_net, cfg.is_splits))
        for k in wanted
    }

    lpips_model: LPIPS | None = None
    if "lpips" in wanted:
        try:
            files = find_lpips_weights(cfg.lpips_net, lpips_weights)
            lpips_model = LPIPS.from_files(cfg.lpips_net, files.heads, files.backbone).to(dev)
            inputs["lpips_weights"] = f"{files.heads} + {files.backbone}"
        except NotAvailableError as exc:
            results["lpips"].status, results["lpips"].reason = "skipped", str(exc)
        except WeightsError as exc:
            results["lpips"].status, results["lpips"].reason = "failed", str(exc)

    inception: FIDInceptionV3 | None = None
    weights_path: Path | None = None
    needs_inception = [k for k in ("fid", "is") if k in wanted]
    if needs_inception:
        try:
            weights_path = find_inception_weights(inception_weights)
            inception = FIDInceptionV3.from_file(weights_path).to(dev)
            inputs["inception_weights"] = str(weights_path)
        except (WeightsError, NotAvailableError) as exc:
            for k in needs_inception:
                results[k].status, results[k].reason = "failed", str(exc)

    fid_real_info: dict[str, object] = {}
    real_mu = real_sigma = None
    n = len(pairs)
    # fused kernels: decided once for the whole set (a batch alone never reaches the threshold)
    fused = {"on": True, "off": False}.get(cfg.compile, dev.type == "cpu" and n >= COMPILE_MIN_IMAGES)
    per_image = {k: np.full(n, np.nan) for k in wanted if k in PER_IMAGE_METRICS and results[k].status == "ok"}
    gen_stats = FeatureStats() if inception is not None and "fid" in wanted else None
    logits: list[torch.Tensor] = []

    with torch.inference_mode(), _exact_float32():
        if gen_stats is not None and inception is not None and weights_path is not None:
            try:
                refs, fid_real_info = _real_set(match, proto, fid_real)
                frame = tuple(pairs[0].generated.load().shape[:2]) if proto.fid.resize == "to-generated" else None
                real_mu, real_sigma, info = _real_statistics(
                    refs, proto, frame, inception, weights_path, cfg, dev, progress
                )
                fid_real_info.update(info)
            except GLocalError as exc:
                results["fid"].status, results["fid"].reason = "failed", str(exc)
                gen_stats = None
        run_inception = inception is not None and (gen_stats is not None or "is" in wanted)
        loader = _loader(_PairDataset(pairs, proto), cfg, dev)
        with _progress(progress) as bar:
            task = bar.add_task(f"eval ({proto.name})", total=n, status="") if bar else None
            for batch in loader:
                errors = [item[1] for item in batch if isinstance(item[1], str)]
                if errors:
                    raise InputError(errors[0])
                for group in _groups(batch):
                    idx = [item[0] for item in group]
                    gen = _stack([item[1] for item in group], dev)
                    ref = _stack([item[2] for item in group], dev)
                    _per_image_batch(per_image, idx, gen, ref, proto, cfg, lpips_model, fused)
                    if run_inception and inception is not None:
                        pool, logit = inception(_fid_view(gen, proto, None, real=False))
                        if gen_stats is not None:
                            gen_stats.update(pool)
                        if "is" in wanted and results["is"].status == "ok":
                            if proto.is_patn_pad and needs_patn_pad(gen.shape[-1]):
                                _, logit = inception(_patn_pad(gen) / 255.0)
                            logits.append(logit.to("cpu", torch.float64))
                if bar is not None:
                    bar.advance(task, len(batch))

    for key, values in per_image.items():
        finite = values[np.isfinite(values)]
        results[key].value = float(values.mean())  # inf when a PSNR pair is identical, like skimage
        results[key].spread = float(finite.std()) if finite.size else None
    if gen_stats is not None and real_mu is not None and real_sigma is not None:
        try:
            mu, sigma = gen_stats.mean_cov()
            results["fid"].value = frechet_distance(
                mu, sigma, real_mu, real_sigma, factor1=gen_stats.factor(), device=dev
            )
        except InputError as exc:
            results["fid"].status, results["fid"].reason = "failed", str(exc)
    if "is" in wanted and results["is"].status == "ok":
        try:
            results["is"].value, results["is"].spread = inception_score(torch.cat(logits), cfg.is_splits)
        except InputError as exc:
            results["is"].status, results["is"].reason = "failed", str(exc)

    result = EvalResult(
        protocol=proto.name,
        protocol_title=proto.title,
        follows=proto.follows,
        metrics=[results[k] for k in wanted],
        names=[p.name for p in pairs],
        generated_files=[str(p.generated) for p in pairs],
        reference_files=[str(p.reference) for p in pairs],
        per_image={k: v.tolist() for k, v in per_image.items()},
        unmatched_generated=match.unmatched_generated,
        unmatched_reference=match.unmatched_reference,
        missing_expected=match.missing_expected,
        inputs=inputs,
        fid_real=fid_real_info,
        device=str(dev),
        glocal_version=__version__,
    )
    result.elapsed_s = time.perf_counter() - start
    if out_dir is not None:

        def load_pair(i: int) -> tuple[np.ndarray, np.ndarray]:
            return align_pair(pairs[i].generated.load(), pairs[i].reference.load(), proto, pairs[i].name)

        write_reports(result, out_dir, overwrite=overwrite, worst_k=cfg.worst_k, bins=cfg.histogram_bins,
                      load_pair=load_pair)
    return result


def _per_image_batch(
    per_image: dict[str, np.ndarray],
    idx: list[int],
    gen: torch.Tensor,
    ref: torch.Tensor,
    protocol: Protocol,
    cfg: EvalConfig,
    lpips_model: LPIPS | None,
    fused: bool = False,
) -> None:
    """Fill the per-image metrics of one batch of aligned uint8 pairs (B, 3, H, W)."""
    for key in per_image:
        if key in protocol.ssim:
            recipe = protocol.ssim[key]
            g, r = gen, ref
            if recipe.patn_pad and needs_patn_pad(gen.shape[-1]):
                g, r = _patn_pad(gen), _patn_pad(ref)
            values = ssim(g, r, recipe.spec, precision=cfg.ssim_precision, compile=fused)
        elif key == "psnr":
            values = psnr(gen, ref, protocol.psnr_data_range, compile=fused)
        elif key == "psnr_uint8_wraparound":
            values = psnr_uint8_wraparound(gen, ref)
        elif key == "lpips" and lpips_model is not None:
            a = _resize(gen.to(torch.float32) / 127.5 - 1.0, protocol.lpips_resize)
            b = _resize(ref.to(torch.float32) / 127.5 - 1.0, protocol.lpips_resize)
            values = lpips_model(a, b)
        else:
            continue
        per_image[key][idx] = values.detach().to("cpu", torch.float64).numpy()


def generated_name(source: str, target: str) -> str:
    """File name of the generated image of one pair in the model plus dataset mode: ``<from>_<to>.png``."""
    return _pair_key(source, target) + ".png"
