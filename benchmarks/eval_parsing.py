"""Source-parsing estimate on real photos: per-class IoU, mIoU and person IoU on held-out labelled photos.

    python benchmarks/eval_parsing.py [--weights weights/default ...] [--data data/ccp-128] [--split test]
        [--flip] [--refine] [--source-parser DIR [--parser-data data/ccp-256] [--ensemble]] [--json out.json]
        [--picture out.png]

The estimate is what ``glocal transfer``/``inpaint`` use for a photo without a parsing file: the semantic
network with ``Pt = Ps`` (:meth:`GLocalModel.estimate_source_parsing`), on the prepared photo (the frame of
``prepare-data ccp``, which must be the weights' frame) and its keypoints. Scored against the dataset's
8-class maps (CCP's labels mapped, skin split by the keypoints): IoU per class over the whole split (pixels
summed, classes absent from both left out of the mean), mIoU over the 8 classes, and person-vs-background IoU.
Several ``--weights`` are scored side by side in one run; ``--flip`` scores each also with
``infer.parsing_flip`` (the photo and its mirror image). ``--source-parser`` scores each ``--weights`` with
``infer.source_parser`` set; a parser whose frame is ``k`` times the data's reads the same photos prepared at its
frame from ``--parser-data`` (``prepare-data ccp --size``), as the pipeline gives it the photo at its frame;
``--ensemble`` averages it with the weights' own network (``infer.parsing_ensemble``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from glocal_cli.data.images import load_image, save_image
from glocal_cli.data.layout import PreparedDataset
from glocal_cli.data.parsing import CLASS_NAMES, colorize, read_parsing
from glocal_cli.paths import REPO_DIR


def iou_table(confusion: np.ndarray) -> dict[str, float]:
    """Per-class IoU, mIoU (classes present in truth or prediction) and person IoU from a K x K confusion."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    out = {f"iou_{CLASS_NAMES[k]}": float(tp[k] / union[k]) for k in range(len(tp)) if union[k] > 0}
    present = union > 0
    out["miou"] = float((tp[present] / union[present]).mean())
    person_tp = confusion[1:, 1:].sum()
    person_union = confusion[1:, :].sum() + confusion[:, 1:].sum() - person_tp
    out["person_iou"] = float(person_tp / max(person_union, 1))
    out["pixel_acc"] = float(tp.sum() / max(confusion.sum(), 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, action="append", default=[])
    ap.add_argument("--data", type=Path, default=REPO_DIR / "data" / "ccp-128")
    ap.add_argument("--split", default="test")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flip", action="store_true", help="also score each weights with infer.parsing_flip")
    ap.add_argument("--source-parser", type=Path, help="score with infer.source_parser set to this folder")
    ap.add_argument("--parser-data", type=Path, help="the photos at the source parser's frame (when larger)")
    ap.add_argument("--ensemble", action="store_true", help="with --source-parser: score infer.parsing_ensemble "
                    "(the mean of the source parser and the weights' own network)")
    ap.add_argument("--refine", action="store_true", help="also score each with infer.parsing_refine")
    ap.add_argument("--worst", type=int, default=0, help="also list the K photos of lowest person IoU and the "
                    "person IoU without them")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--picture", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from glocal_cli.infer.pipeline import GLocalPipeline

    weights = args.weights or [REPO_DIR / "weights" / "default"]
    ds = PreparedDataset(args.data)
    names = [a for a, _ in ds.pairs(args.split)]
    kp = ds.keypoints()
    images = np.stack([load_image(ds.root / "images" / n) for n in names])
    truth = np.stack([read_parsing(ds.root / "parsing" / f"{Path(n).stem}.png") for n in names])
    report: dict = {"data": str(args.data), "split": args.split, "photos": len(names)}
    rows = [images[:8], colorize(truth[:8].reshape(-1, truth.shape[2])).reshape(8, *truth.shape[1:], 3)]
    k = len(CLASS_NAMES)
    from glocal_cli.infer.config import InferConfig

    runs = [(w, False, False) for w in weights] + ([(w, True, False) for w in weights] if args.flip else [])
    if args.refine:
        runs += [(w, flip, True) for w, flip, _ in runs]
    for w, flip, refine in runs:
        cfg = InferConfig(workers=0, parsing_flip=flip, parsing_refine=refine, parsing_ensemble=args.ensemble,
                          source_parser=str(args.source_parser or ""))
        pipe = GLocalPipeline.from_pretrained(w, device="cpu", config=cfg)
        if pipe.frame_hw != (ds.height, ds.width):
            raise SystemExit(f"{w}: frame {pipe.frame_hw} but {args.data} is {ds.height}x{ds.width}")
        big = None
        if pipe.parser_scale > 1:
            if args.parser_data is None:
                raise SystemExit(f"{args.source_parser}: its frame is {pipe.parser_scale}x the data's; give "
                                 "--parser-data (the same photos prepared at its frame)")
            big = np.stack([load_image(args.parser_data / "images" / n) for n in names])
        preds = []
        with torch.inference_mode():
            for s in range(0, len(names), 16):
                chunk = names[s:s + 16]
                img = torch.from_numpy(images[s:s + 16]).permute(0, 3, 1, 2).float() / 127.5 - 1
                xy = torch.from_numpy(np.stack([kp[n].xy for n in chunk])).float()
                vis = torch.from_numpy(np.stack([kp[n].visible for n in chunk]))
                pose = pipe.heatmaps(xy, vis)
                parser_image = None if big is None else torch.from_numpy(big[s:s + 16]).permute(0, 3, 1, 2)
                preds.append(pipe.estimate_source_parsing(img, pose, parser_image).argmax(1).numpy())  # one-hot
        pred = np.concatenate(preds).astype(np.int64)
        confusion = np.bincount(truth.astype(np.int64).ravel() * k + pred.ravel(), minlength=k * k).reshape(k, k)
        if args.worst:
            person_t, person_p = truth > 0, pred > 0
            inter, union = (person_t & person_p).sum((1, 2)), (person_t | person_p).sum((1, 2))
            per_photo = inter / np.maximum(union, 1)
            order = np.argsort(per_photo)
            keep = order[args.worst:]
            print(f"  median photo {np.median(per_photo):.3f}; worst {args.worst}: "
                  + ", ".join(f"{names[i]} {per_photo[i]:.3f}" for i in order[:args.worst])
                  + f"; person IoU without them {inter[keep].sum() / max(union[keep].sum(), 1):.4f}", flush=True)
        label = ((f"{w} {'with' if args.ensemble else '+'} {args.source_parser}" if args.source_parser else str(w)) + (" (parsing_flip)" if flip else "")
                 + (" (parsing_refine)" if refine else ""))
        report[label] = iou_table(confusion)
        print(label, json.dumps({key: round(v, 4) for key, v in report[label].items()}), flush=True)
        rows.append(colorize(pred[:8].reshape(-1, pred.shape[2]).astype(np.uint8)).reshape(8, *pred.shape[1:], 3))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.picture:
        grid = np.concatenate([np.concatenate(list(r), 1) for r in rows], 0)
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        save_image(args.picture, grid)


if __name__ == "__main__":
    main()
