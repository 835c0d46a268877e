"""3D body fit and correspondence on the 59 real DeepFashion sample pairs, and transfer under each flow mode.

    python benchmarks/bench_body_pairs.py [--weights weights/default] [--threads 2] [--limit N]
        [--picture docs/pictures/body_pairs.png] [--results-picture docs/pictures/body_pairs_results.png]
        [--json out.json] [--modes learned,body3d,hybrid] [--variant LABEL:key=value,key=value ...]

Each sample PNG is ``[source | target | Deformable-GAN output]``, 256x256 panels holding a 176x256
photo between 40 px of white padding; keypoints come from ``fasion-annotation-test.csv`` (256x256
padded frame, converted to 176x256). Everything runs in the photo's 256x176 frame, on the CPU.

1. **Fit** (the library path of ``glocal transfer --flow body3d``: :class:`glocal_cli.infer.body3d.BodyFlow`,
   i.e. ``fit_poses`` in batches of ``body.fit_batch_size``): keypoint RMS per image (176x256 pixels),
   flagged fits, fits per second.
2. **Correspondence** (``body3d_correspondence``): the share of target body pixels marked visible in the
   source; on those visible pixels only, L1 (0..1 scale, channel mean) and SSIM (the clean protocol's
   Gaussian window and constants; its map averaged over the visible pixels) of the source warped by the
   3D flow, by the learned flow of ``--weights`` (estimated in the model frame, upsampled to 256x176,
   warping the 256x176 photo), and not warped, each against the target photo.
3. **Full image**, clean protocol (176x256, ``glocal_cli.metrics``): the panels' third column,
   copy-the-source, the 3D warp alone (visible pixels warped; unseen body pixels a flat colour per body
   part, the mean of the source pixels the source body shows of that part, else white; or white; the
   background everywhere is the source photo's median border colour), and ``GLocalPipeline.transfer``
   with ``--weights`` under each flow mode (the photo and both poses given, source parsing estimated,
   result pasted back to 176x256), and ``--flow body3d`` under each ``--variant`` (``infer.*`` settings and
   :class:`~glocal_cli.infer.config.BlendRules` fields, e.g. ``--variant mirror:unseen_fill=mirror``).

``--picture``: every pair as one row (source + mesh | target + mesh | target parts | flow | visibility |
warped source), three blocks of rows side by side, downscaled to stay under ~2 MB.
``--results-picture``: target | Deformable GAN | 3D warp alone | transfer per flow mode, for every pair.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from glocal_cli.body.config import BodyConfig
from glocal_cli.body.correspond import INVISIBLE, VISIBLE, warp_image
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.errors import ConfigError
from glocal_cli.infer.body3d import BodyFlow
from glocal_cli.paths import default_weights_dir, shared_data_dir

H, W, PAD = 256, 176, 40


def parse_variant(spec: str) -> tuple[str, dict, dict]:
    """``'LABEL:key=value,key=value'`` -> ``(LABEL, infer settings, blend rules)``: a key of
    :class:`~glocal_cli.infer.config.BlendRules` goes to the rules, any other is read and checked as
    ``--set infer.key=value`` is (typed, unknown keys refused)."""
    import dataclasses

    from glocal_cli.config import resolve_config
    from glocal_cli.config.io import config_from_dict, parse_override
    from glocal_cli.infer.config import BlendRules

    label, _, items = spec.partition(":")
    pairs = [item.strip().split("=", 1) for item in items.split(",") if item.strip()]
    rules_fields = {f.name for f in dataclasses.fields(BlendRules)}
    given: dict = {}
    for key, value in (p for p in pairs if p[0] in rules_fields):
        given.update(parse_override(f"{key}={value}"))
    checked = config_from_dict(BlendRules, given, label=f"--variant {label}")  # typed and checked as YAML is
    rules = {key: getattr(checked, key) for key in given}
    sets = [f"infer.{k}={v}" for k, v in pairs if k not in rules_fields]
    resolved = resolve_config(None, sets).infer
    keys = [next(iter(parse_override(item)["infer"])) for item in sets]
    return label, {key: getattr(resolved, key) for key in keys}, rules


def shared_root() -> Path:
    """``../shared/data`` (or ``$GLOCAL_SHARED_DATA``); exits with a one-line message when it is absent."""
    root = shared_data_dir()
    if root is None:
        raise SystemExit("../shared/data not found (set GLOCAL_SHARED_DATA)")
    return root


def pairs_pipeline(weights: Path, body_config=None):  # noqa: ANN001, ANN201
    """The pipeline of the pair benchmarks: the settings ``weights`` recommend (``glocal transfer``'s defaults for
    them), the benchmark's frame (the pose files are in the photo's pixels: ``pose_frame: source``), batch 16,
    no worker processes."""
    import dataclasses

    from glocal_cli.infer.config import resolve_infer_config
    from glocal_cli.infer.pipeline import GLocalPipeline

    icfg = dataclasses.replace(resolve_infer_config(weights), pose_frame="source", batch_size=16, workers=0)
    return GLocalPipeline.from_pretrained(weights, "cpu", config=icfg, body_config=body_config)


def load_samples(root: Path, limit: int = 0) -> list[dict]:
    """Every sample pair: names, the three 256x176 photos, both poses (176x256 frame)."""
    from glocal_cli.data.images import load_image

    poses = read_keypoint_csv(root / "deepfashion" / "fasion-annotation-test.csv", frame="deepfashion-256x256",
                              to_frame="deepfashion-256x176")
    out = []
    for p in sorted((root / "deepfashion" / "samples").glob("*.png")):
        a, b = p.name[:-4].split(".jpg_")
        a += ".jpg"
        panels = load_image(p)
        src, tgt, base = (np.ascontiguousarray(panels[:, i * 256 + PAD:i * 256 + PAD + W]) for i in range(3))
        out.append({"name": p.name, "from": a, "to": b, "source": src, "target": tgt, "baseline": base,
                    "source_pose": poses[a], "target_pose": poses[b]})
    return out[:limit] if limit else out


def _gauss(sigma: float = 1.5, size: int = 11) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Per-pixel SSIM ``(B, H-10, W-10)`` (channel mean) of ``(B, 3, H, W)`` images on 0..255: the clean
    protocol's recipe (Gaussian sigma 1.5, 11x11, K1 0.01, K2 0.03, population covariance), 'valid' region."""
    g = _gauss()
    c = a.shape[1]
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    a, b = a.double(), b.double()
    mu_a, mu_b = filt(a), filt(b)
    va = filt(a * a) - mu_a**2
    vb = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return s.mean(1)


def masked_scores(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """L1 (0..1) and SSIM over ``mask`` pixels per image (NaN where the mask is empty)."""
    diff = (pred.double() - target.double()).abs().mean(1) / 255.0
    m = mask.double()
    n = m.sum((1, 2))
    l1 = ((diff * m).sum((1, 2)) / n).numpy()
    smap = ssim_map(pred, target)
    mv = m[:, 5:-5, 5:-5]
    ssim = ((smap * mv).sum((1, 2)) / mv.sum((1, 2))).numpy()
    return np.where(n.numpy() > 0, l1, np.nan), np.where(mv.sum((1, 2)).numpy() > 0, ssim, np.nan)


def clean_scores(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image clean-protocol SSIM and PSNR of ``uint8 (B, H, W, 3)`` arrays (glocal_cli.metrics)."""
    from glocal_cli.metrics.protocol import get_protocol
    from glocal_cli.metrics.psnr import psnr
    from glocal_cli.metrics.ssim import ssim

    proto = get_protocol("clean")
    g = torch.from_numpy(np.ascontiguousarray(pred)).permute(0, 3, 1, 2)
    r = torch.from_numpy(np.ascontiguousarray(target)).permute(0, 3, 1, 2)
    return (ssim(g, r, proto.ssim["ssim"].spec, compile=False).numpy(),
            psnr(g, r, proto.psnr_data_range, compile=False).numpy())


def to_t(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()


def to_u8(t: torch.Tensor) -> np.ndarray:
    return t.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def border_colour(photo: np.ndarray) -> np.ndarray:
    """Median colour of the photo's 4-pixel border (the studio backdrop)."""
    edge = np.concatenate([photo[:4].reshape(-1, 3), photo[-4:].reshape(-1, 3), photo[:, :4].reshape(-1, 3),
                           photo[:, -4:].reshape(-1, 3)])
    return np.median(edge, axis=0)


def warp_alone(source: np.ndarray, warped: np.ndarray, classes: np.ndarray, target_part: np.ndarray,
               source_part: np.ndarray, fill: str) -> np.ndarray:
    """The 3D warp as a picture: visible pixels warped; unseen body pixels a flat colour per part
    (``fill='parts'``: the mean of the source's pixels of that part, white when the source shows none) or
    white (``fill='white'``); the background the source's border colour."""
    out = np.empty_like(source, dtype=np.float64)
    out[:] = border_colour(source)
    body = classes > 0
    out[body] = 255.0
    if fill == "parts":
        for p in np.unique(target_part[classes == INVISIBLE]):
            seen = source_part == p
            if seen.any():
                out[(classes == INVISIBLE) & (target_part == p)] = source[seen].mean(0)
    vis = classes == VISIBLE
    out[vis] = warped[vis]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def learned_flow(pipe, samples: list[dict]) -> torch.Tensor:  # noqa: ANN001
    """The learned estimator's finest flow for every pair (model frame), resized to 256x176, normalised."""
    from glocal_cli.infer.io import prepare_source
    from glocal_cli.models.flow import resize_flow

    flows = []
    for start in range(0, len(samples), 16):
        chunk = samples[start:start + 16]
        images, sp, tp = [], [], []
        for s in chunk:
            prep = prepare_source(s["source"], s["source_pose"], None, pipe.frame_hw, margin=pipe.config.fit_margin)
            t = prep.transform
            if t.offset_x or t.offset_y or abs(t.scale * W - pipe.frame_hw[1]) > 1e-6:
                raise SystemExit(f"{s['name']}: the model frame is not the photo scaled (transform {t})")
            images.append(prep.image)
            sp.append(prep.pose)
            tp.append(t.apply_to_pose(s["target_pose"], clip=False))
        with torch.inference_mode():
            img = to_t(images).div(127.5).sub(1)
            smaps = pipe.heatmaps(torch.from_numpy(np.stack([p.xy for p in sp])),
                                  torch.from_numpy(np.stack([p.visible for p in sp])))
            tmaps = pipe.heatmaps(torch.from_numpy(np.stack([p.xy for p in tp])),
                                  torch.from_numpy(np.stack([p.visible for p in tp])))
            pyramid, _ = pipe.model.estimate_flow(img, smaps, tmaps)
            flows.append(resize_flow(pyramid[-1].float(), (H, W)))
    return torch.cat(flows)


def stats(x: np.ndarray) -> str:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return f"mean {x.mean():.3f}, median {np.median(x):.3f}"


def geometry_picture(samples: list[dict], maps, warped: np.ndarray, scale: float, blocks: int) -> np.ndarray:  # noqa: ANN001
    """All pairs as rows of the preview columns, in ``blocks`` side-by-side columns of rows, rescaled."""
    from PIL import Image, ImageDraw, ImageFont

    from glocal_cli.body.preview import PAIR_COLUMNS, compose_rows, pair_row
    from glocal_cli.data.images import resize_image

    rows = []
    for i, s in enumerate(samples):
        row = pair_row(source=s["source"], target=s["target"], source_part=maps.source.part[i].numpy(),
                       target_part=maps.target.part[i].numpy(), flow=maps.flow_px[i].numpy(),
                       visibility=maps.classes[i].numpy(), warped=warped[i],
                       source_shading=maps.source.shading[i].numpy(), target_shading=maps.target.shading[i].numpy())
        h = round(row.shape[0] * scale)
        row = resize_image(row, h, round(row.shape[1] * scale), "area")
        img = Image.fromarray(row)
        ImageDraw.Draw(img).text((2, 1), f"{i + 1}", fill=(255, 255, 255), font=ImageFont.load_default(),
                                 stroke_width=1, stroke_fill=(0, 0, 0))
        rows.append(np.asarray(img))
    return _blocks(rows, blocks, PAIR_COLUMNS, compose_rows, round(W * scale))


def _blocks(rows: list[np.ndarray], blocks: int, titles, compose_rows, cell_width: int) -> np.ndarray:  # noqa: ANN001
    per = math.ceil(len(rows) / blocks)
    parts = [compose_rows(rows[i:i + per], titles, cell_width=cell_width + 2) for i in range(0, len(rows), per)]
    height = max(p.shape[0] for p in parts)
    parts = [np.concatenate([p, np.full((height - p.shape[0], p.shape[1], 3), 255, np.uint8)]) for p in parts]
    gap = np.full((height, 12, 3), 255, np.uint8)
    return np.concatenate([x for p in parts for x in (p, gap)][:-1], axis=1)


def results_picture(samples: list[dict], columns: dict[str, np.ndarray], scale: float, blocks: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    from glocal_cli.body.preview import compose_rows
    from glocal_cli.data.images import resize_image

    titles = ["source", "target", *columns]
    rows = []
    h, w = round(H * scale), round(W * scale)
    for i, s in enumerate(samples):
        cells = [s["source"], s["target"], *(c[i] for c in columns.values())]
        cells = [resize_image(np.ascontiguousarray(c), h, w, "area") for c in cells]
        gap = np.full((h, 2, 3), 255, np.uint8)
        row = np.concatenate([x for c in cells for x in (c, gap)][:-1], axis=1)
        img = Image.fromarray(row)
        ImageDraw.Draw(img).text((2, 1), f"{i + 1}", fill=(255, 255, 255), font=ImageFont.load_default(),
                                 stroke_width=1, stroke_fill=(0, 0, 0))
        rows.append(np.asarray(img))
    return _blocks(rows, blocks, titles, compose_rows, w)


def save_small_png(picture: np.ndarray, path: Path, limit_mb: float = 2.0) -> int:
    """Write a PNG; when it exceeds ``limit_mb``, quantise to a 256-colour palette. Returns the byte size."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(picture)
    img.save(path, optimize=True)
    if path.stat().st_size > limit_mb * 1e6:
        img.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
    return path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=None, help="weights folder (default: the default weights)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a loaded 2-core machine 2 threads were 12x slower)")
    ap.add_argument("--limit", type=int, default=0, help="first N pairs only")
    ap.add_argument("--modes", default="learned,body3d,hybrid")
    ap.add_argument("--picture", type=Path, default=None)
    ap.add_argument("--results-picture", type=Path, default=None)
    ap.add_argument("--scale", type=float, default=0.5, help="picture scale of a 256x176 cell")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL:key=value[,key=value]: also run --flow body3d with these infer.* settings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    samples = load_samples(shared_root(), args.limit)
    n = len(samples)
    report: dict = {"pairs": n, "threads": args.threads, "cpu": platform.processor() or platform.machine(),
                    "torch": torch.__version__}

    # ---- 1. fits (sources and targets, each distinct image once), batched as the pipeline does
    cfg = BodyConfig()
    bf = BodyFlow(cfg, "cpu")
    _ = bf.body
    names, xy, vis = [], [], []
    for s in samples:
        for role in ("from", "to"):
            if s[role] not in names:
                pose = s["source_pose" if role == "from" else "target_pose"]
                names.append(s[role])
                xy.append(pose.xy)
                vis.append(pose.visible)
    t0 = time.perf_counter()
    fits = bf.fit(np.stack(xy), np.stack(vis), (H, W))
    fit_s = time.perf_counter() - t0
    rms = fits.rms_px.numpy()
    flagged = {names[i]: fits.reason[i] for i in range(len(names)) if not bool(fits.ok[i])}
    report["fit"] = {"images": len(names), "seconds": fit_s, "fits_per_s": len(names) / fit_s,
                     "batch": cfg.fit_batch_size, "rms_median": float(np.median(rms)),
                     "rms_p95": float(np.percentile(rms, 95)), "rms_max": float(rms.max()),
                     "rms_per_image": dict(zip(names, map(float, rms))), "flagged": flagged}
    print(f"fit: {len(names)} images in {fit_s:.1f} s ({len(names) / fit_s:.2f} fits/s, batch "
          f"{cfg.fit_batch_size}, {args.threads} threads); RMS px median {np.median(rms):.2f} p95 "
          f"{np.percentile(rms, 95):.2f} max {rms.max():.2f}; flagged {len(flagged)}")

    # ---- 2. correspondence and warps
    t0 = time.perf_counter()
    maps = bf.pairs(np.stack([s["source_pose"].xy for s in samples]),
                    np.stack([s["source_pose"].visible for s in samples]),
                    np.stack([s["target_pose"].xy for s in samples]),
                    np.stack([s["target_pose"].visible for s in samples]), (H, W), shading=True)
    corr_s = time.perf_counter() - t0
    src = to_t([s["source"] for s in samples])
    tgt = to_t([s["target"] for s in samples])
    warped3d = warp_image(src, maps.flow_px)
    classes = maps.classes
    visible = classes == VISIBLE
    body = classes > 0
    share = (visible.sum((1, 2)).double() / body.sum((1, 2)).clamp_min(1).double()).numpy()
    ok = maps.ok.numpy()
    print(f"correspondence: {n} pairs in {corr_s:.1f} s (fits cached); pairs usable {int(ok.sum())}/{n}; "
          f"visible share of target body pixels: {stats(share)}")

    weights = args.weights or default_weights_dir()
    pipe = pairs_pipeline(weights, cfg)
    lflow = learned_flow(pipe, samples)
    from glocal_cli.models.flow import warp

    warped_learned = warp(src, lflow)
    rows_vis = {}
    mostly = share > 0.5  # pairs whose target body is mostly seen in the source (front to front and the like)
    for label, pred in (("3D warp", warped3d), ("learned flow warp", warped_learned), ("no warp (source)", src)):
        l1, ss = masked_scores(pred, tgt, visible)
        rows_vis[label] = {"l1": l1.tolist(), "ssim": ss.tolist(), "l1_mean": float(np.nanmean(l1)),
                           "ssim_mean": float(np.nanmean(ss)), "l1_mean_share_over_half": float(np.nanmean(l1[mostly])),
                           "ssim_mean_share_over_half": float(np.nanmean(ss[mostly]))}
        print(f"visible pixels, {label}: L1 {np.nanmean(l1):.4f}  SSIM {np.nanmean(ss):.4f}; on the {int(mostly.sum())} "
              f"pairs with visible share > 0.5: L1 {np.nanmean(l1[mostly]):.4f}  SSIM {np.nanmean(ss[mostly]):.4f}")
    report["correspondence"] = {"seconds": corr_s, "usable_pairs": int(ok.sum()),
                                "visible_share": share.tolist(), "visible_share_mean": float(share.mean()),
                                "visible_share_median": float(np.median(share)), "visible_pixels": rows_vis}

    # sanity: the SSIM map's full-image mean is the project's clean SSIM
    full_map = ssim_map(src[:2], tgt[:2]).mean((1, 2)).numpy()
    ref = clean_scores(to_u8(src[:2]), to_u8(tgt[:2]))[0]
    assert np.allclose(full_map, ref, atol=1e-4), (full_map, ref)

    # ---- 3. full-image clean protocol
    warped_u8 = to_u8(warped3d)
    tgt_u8 = np.stack([s["target"] for s in samples])
    full: dict[str, dict] = {}
    columns: dict[str, np.ndarray] = {}

    def score(label: str, pictures: np.ndarray, extra: dict | None = None) -> None:
        ss, ps = clean_scores(pictures, tgt_u8)
        full[label] = {"ssim": float(ss.mean()), "psnr": float(ps.mean()), "ssim_per_pair": ss.tolist(),
                       "psnr_per_pair": ps.tolist(), **(extra or {})}
        print(f"full image, {label}: SSIM {ss.mean():.4f}  PSNR {ps.mean():.2f} dB")

    score("Deformable GAN (third column)", np.stack([s["baseline"] for s in samples]))
    columns["Deformable GAN"] = np.stack([s["baseline"] for s in samples])
    score("copy the source", np.stack([s["source"] for s in samples]))
    score("all white", np.full_like(tgt_u8, 255))
    for fill in ("parts", "white"):
        pics = np.stack([warp_alone(s["source"], warped_u8[i], classes[i].numpy(), maps.target.part[i].numpy(),
                                    maps.source.part[i].numpy(), fill) for i, s in enumerate(samples)])
        score(f"3D warp alone (unseen: {'flat colour per part' if fill == 'parts' else 'white'})", pics)
        if fill == "parts":
            columns["3D warp alone"] = pics
    for mode in args.modes.split(","):
        for parsing in (("auto", "body3d") if mode == "body3d" else ("auto",)):
            run = pipe.with_config(source_parsing=parsing)
            label = f"transfer --flow {mode}" + (" (source parsing from the mesh)" if parsing == "body3d" else "")
            t0 = time.perf_counter()
            try:
                res = run.transfer_batch([s["source"] for s in samples], [s["target_pose"] for s in samples],
                                         [s["source_pose"] for s in samples], paste_back=True,
                                         return_details=True, flow=mode)
            except ConfigError as exc:
                full[label] = {"error": str(exc)}
                print(f"full image, {label}: not run ({exc})")
                continue
            dt = time.perf_counter() - t0
            used = [r.flow_used for r in res]
            pics = np.stack([r.image for r in res])
            score(label, pics, {"seconds": dt, "seconds_per_image": dt / n,
                                "flow_used": {u: used.count(u) for u in sorted(set(used))}})
            columns[f"--flow {mode}" + ("+mesh" if parsing == "body3d" else "")] = pics
    for spec in args.variant:
        label, kw, rules = parse_variant(spec)
        items = ",".join(f"{k}={v}" for k, v in {**kw, **rules}.items())
        t0 = time.perf_counter()
        res = pipe.with_config(**kw).with_rules(**rules).transfer_batch([s["source"] for s in samples], [s["target_pose"] for s in samples],
                                                    [s["source_pose"] for s in samples], paste_back=True, flow="body3d")
        score(f"transfer --flow body3d, {label} ({items})", np.stack(res),
              {"seconds": time.perf_counter() - t0, "settings": kw, "rules": rules})
    report["full_image_clean"] = full
    report["fits_in_pipeline"] = {"fitted": bf.fitted, "pipeline_fitted": pipe.body_flow.fitted,
                                  "pipeline_cache_hits": pipe.body_flow.cache_hits}

    if args.picture:
        pic = geometry_picture(samples, maps, to_u8(warped3d), args.scale, 3)
        size = save_small_png(pic, args.picture)
        print(f"picture: {args.picture} {pic.shape[1]}x{pic.shape[0]}, {size / 1e6:.2f} MB")
    if args.results_picture:
        pic = results_picture(samples, columns, args.scale, 3)
        size = save_small_png(pic, args.results_picture)
        print(f"results picture: {args.results_picture} {pic.shape[1]}x{pic.shape[0]}, {size / 1e6:.2f} MB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
