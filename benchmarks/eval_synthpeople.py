"""A weights folder on a SynthPeople test split: SSIM, PSNR, L1, L1 on target pixels invisible / visible
in the source (exact visibility), parsing mIoU, with the learned flow and with the exact (given) flow, and
(``--pipeline``) through ``glocal transfer``'s whole path: the 3D bodies fitted to the keypoints and the
pipeline's defaults (``infer.*``, e.g. the mesh-guided blend), optionally under ``--variant`` settings.

    python benchmarks/eval_synthpeople.py --weights weights/default --data data/synthpeople-anny-128 \
        [--pipeline] [--variant LABEL:key=value,...]

The metrics are those of ``benchmarks/ablation.py`` (its accumulator); L1 on the [-1, 1] scale.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path


def _ablation():  # noqa: ANN202 - the sibling script, loaded as a module
    spec = importlib.util.spec_from_file_location("ablation", Path(__file__).with_name("ablation.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ablation"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="weights/default")
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=0, help="first N test pairs (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="")
    ap.add_argument("--pipeline", action="store_true",
                    help="also GLocalPipeline.transfer_batch (fits + glocal transfer's defaults) on the same pairs")
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL:key=value[,key=value]: --pipeline again with these infer.* settings")
    args = ap.parse_args()
    import numpy as np
    import torch

    from glocal_cli.data.datasets import batch_to_device, open_dataset
    from glocal_cli.models.generator import GLocalModel
    from glocal_cli.train.stages import given_flow_inputs

    torch.set_num_threads(args.threads)
    ab = _ablation()
    ds = open_dataset(args.data)
    model = GLocalModel.from_pretrained(args.weights).eval()
    sigma = 6.0 * model.height / 256.0
    ns = argparse.Namespace(eval_pairs=args.pairs)
    results: dict[str, dict] = {}
    copy = ab._Accumulator(8)
    for mode in ("learned", "given"):
        acc = ab._Accumulator(model.num_classes)
        t0 = time.perf_counter()
        with torch.no_grad():
            for raw in ab.test_loader(ds, ns):
                batch = batch_to_device(raw, torch.device("cpu"), sigma, model.height, model.width)
                kw = {}
                if mode == "given":
                    kw["flow"], kw["visibility"] = given_flow_inputs(batch)
                out = model(batch["source_image"], batch["source_pose"], batch["target_pose"],
                            batch.get("source_parsing"), None, mode="transfer", check_finite=False, **kw)
                acc.add(out.image, batch, out.target_parsing.argmax(1), keep_images=False, visibility=out.visibility)
                if mode == "learned":
                    copy.add(batch["source_image"], batch, None, keep_images=False)
        res = acc.result()
        res["seconds"] = time.perf_counter() - t0
        results[mode] = res
    if args.pipeline:
        from glocal_cli.data.keypoints import Pose
        from glocal_cli.infer.config import InferConfig
        from glocal_cli.infer.pipeline import GLocalPipeline

        pipe = GLocalPipeline.from_pretrained(args.weights, "cpu", config=InferConfig(
            pose_frame="source", batch_size=16, workers=0, paste_back=False))
        runs = [("pipeline (defaults)", {}, {})]
        from bench_body_pairs import parse_variant  # the sibling script (benchmarks/ is on sys.path)

        for spec in args.variant:
            label, kw, rules = parse_variant(spec)
            runs.append((f"pipeline, {label}", kw, rules))
        for name, kw, rules in runs:
            run = pipe.with_config(**kw).with_rules(**rules)
            acc = ab._Accumulator(model.num_classes)
            t0 = time.perf_counter()
            for raw in ab.test_loader(ds, ns):
                batch = batch_to_device(raw, torch.device("cpu"), sigma, model.height, model.width)
                photos = ((raw["source_image"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
                photos = list(photos.permute(0, 2, 3, 1).numpy())
                poses = [[Pose(raw[f"{r}_xy"][i].numpy(), raw[f"{r}_visible"][i].numpy()) for i in range(len(photos))]
                         for r in ("target", "source")]
                res = run.transfer_batch(photos, poses[0], poses[1], return_details=True)
                image = torch.from_numpy(np.stack([r.image for r in res])).permute(0, 3, 1, 2).float() / 127.5 - 1
                labels = torch.from_numpy(np.stack([r.parsing for r in res])).long()
                acc.add(image, batch, labels, keep_images=False)
            res_acc = acc.result()
            res_acc["seconds"] = time.perf_counter() - t0
            res_acc["settings"] = kw
            results[name] = res_acc
    results["copy_source"] = copy.result()
    keys = ("ssim", "psnr", "l1", "l1_invisible", "l1_visible", "miou")
    print(f"{args.weights} on {args.data} ({copy.n} test pairs, {model.height}x{model.width})")
    print("| flow | " + " | ".join(keys) + " |")
    print("| --- " * (len(keys) + 1) + "|")
    for name, res in results.items():
        cells = [f"{res.get(k, float('nan')):.4f}" if k != "psnr" else f"{res.get(k, 0):.2f}" for k in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
