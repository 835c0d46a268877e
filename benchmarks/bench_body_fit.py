"""Body fitting on the real annotated DeepFashion images: RMS keypoint error and time per image.

    python benchmarks/bench_body_fit.py [--images N] [--batch 16] [--model anny] [--threads 2]
        [--set KEY=VALUE ...] [--compare [--ref KEY=VALUE ...]]

Uses the community keypoints (``../shared/data/deepfashion/fasion-annotation-test.csv``) of the
images in the 59 sample pairs (or the first N annotated images with ``--images``), converted to the
176x256 frame. Prints the median / 95th percentile / max RMS over visible keypoints (pixels of the
176x256 frame), the share of fits flagged, and seconds per image at the given batch size.

``--set`` changes a :class:`BodyFitConfig` field (e.g. ``--set iters_shape=100 --set yaw_starts=0,180``).
``--compare`` also fits every batch with a reference configuration, alternating batch by batch in the same
run (times on a loaded machine are only comparable side by side): by default the fit as it was before the
Levenberg-Marquardt solver (:data:`REFERENCE`: L-BFGS, 25/150/200 iterations);
``--ref KEY=VALUE`` changes it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import time

import numpy as np
import torch

from glocal_cli.body import load_body_model
from glocal_cli.body.config import BodyFitConfig
from glocal_cli.body.fit import fit_keypoints
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.paths import shared_data_dir

REFERENCE = {"solver": "lbfgs"}
"""``--compare``'s reference: the fit before the LM solver (``BodyFitConfig(solver="lbfgs")``)."""


def sample_names(root) -> list[str]:  # noqa: ANN001
    names: list[str] = []
    for p in sorted((root / "deepfashion" / "samples").glob("*.png")):
        a, b = p.name[:-4].split(".jpg_")
        for n in (a + ".jpg", b):
            if n not in names:
                names.append(n)
    return names


def _value(text: str):  # noqa: ANN202
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return tuple(float(v) for v in value) if isinstance(value, (tuple, list)) else value


def make_config(base: dict, sets: list[str], no_shape: bool) -> BodyFitConfig:
    """A BodyFitConfig from ``base`` field values then ``KEY=VALUE`` strings."""
    known = {f.name for f in dataclasses.fields(BodyFitConfig)}
    values = dict(base)
    for item in sets:
        key, _, text = item.partition("=")
        if key not in known:
            raise SystemExit(f"--set/--ref: no BodyFitConfig field {key!r}")
        values[key] = _value(text)
    if no_shape:
        values["fit_shape"] = False
    return BodyFitConfig(**{k: v for k, v in values.items() if k in known})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=0, help="first N annotated images instead of the samples")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--model", default="anny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-shape", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a BodyFitConfig field")
    ap.add_argument("--compare", action="store_true", help="also fit with the reference config, side by side")
    ap.add_argument("--ref", action="append", default=[], metavar="KEY=VALUE",
                    help="a field of the --compare reference (default: solver=lbfgs, the fit before the LM solver)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = shared_data_dir()
    if root is None:
        raise SystemExit("../shared/data not found (set GLOCAL_SHARED_DATA)")
    poses = read_keypoint_csv(root / "deepfashion" / "fasion-annotation-test.csv", frame="deepfashion-256x256",
                              to_frame="deepfashion-256x176")
    names = [n for n in poses if poses[n].num_visible >= 6][: args.images] if args.images else sample_names(root)
    names = [n for n in names if n in poses]
    body = load_body_model(args.model)
    configs = {"config": make_config({}, args.set, args.no_shape)}
    if args.compare:
        configs = {"reference": make_config(REFERENCE, args.ref, args.no_shape), **configs}
    stats = {k: {"rms": [], "flagged": 0, "reasons": [], "time": 0.0} for k in configs}
    for start in range(0, len(names), args.batch):
        chunk = names[start:start + args.batch]
        kp = np.stack([poses[n].xy for n in chunk]).astype(np.float32)
        vis = np.stack([poses[n].visible for n in chunk])
        order = list(configs) if (start // args.batch) % 2 == 0 else list(configs)[::-1]  # alternate who goes first
        for key in order:
            t0 = time.perf_counter()
            res = fit_keypoints(body, kp, vis, 256, 176, configs[key])
            s = stats[key]
            s["time"] += time.perf_counter() - t0
            s["rms"] += res.rms_px.tolist()
            s["flagged"] += int((~res.ok).sum())
            s["reasons"] += [r for r in res.reason if r]
    print(f"{len(names)} images, model {args.model}, batch {args.batch}, {args.threads} threads")
    for key, cfg in configs.items():
        s = stats[key]
        r = np.array(s["rms"])
        if len(configs) > 1:
            changed = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                       if getattr(cfg, f.name) != f.default}
            print(f"== {key}: {changed or 'defaults'}")
        print(f"RMS px (176x256): median {np.median(r):.2f}  p95 {np.percentile(r, 95):.2f}  max {r.max():.2f}")
        print(f"flagged {s['flagged']} ({s['flagged'] / len(names):.1%}); {s['time'] / len(names):.3f} s per image")
        for reason in sorted(set(s["reasons"])):
            print(f"  flagged: {reason} x{s['reasons'].count(reason)}")
    if len(configs) > 1:
        rr, rn = np.array(stats["reference"]["rms"]), np.array(stats["config"]["rms"])
        print(f"config vs reference: time x{stats['reference']['time'] / stats['config']['time']:.2f} faster; "
              f"per-image RMS change median {np.median(rn - rr):+.3f} px, worst {np.max(rn - rr):+.2f} px")


if __name__ == "__main__":
    main()
