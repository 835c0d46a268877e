"""Regenerate ``examples/``: SynthPeople-on-Anny source photos, real target poses, a pose sequence, an inpainting case.

    .venv/bin/python scripts/make_examples.py [--out examples] [--annotation PATH]

Everything written here may be shipped: the photos are renders of SynthPeople on Anny body shapes
(``glocal prepare-data synthetic --body anny``; Anny code Apache-2.0, body data CC0), and the target
poses are numbers taken from the DeepFashion keypoint annotation (no photo is copied).

- ``sources/person_NN.png`` (256x176) with ``person_NN.json`` (OpenPose COCO-18, ``canvas_height`` /
  ``canvas_width`` recorded) and ``person_NN_parsing.png`` (8-class labels), the renderer's exact
  keypoints and parsing: a man, a woman in a dress, a child, an old man, an old woman and a woman
  in a skirt seen from the back, each the first SynthPeople identity of seed 0 that fits the wish;
- ``poses/pose_NN.json``: real poses of ``fasion-annotation-test.csv`` (front, side, back, walking,
  an arm raised, arms out), converted from its padded 256x256 frame to 256x176 (canvas recorded);
- ``sequence/seq_NN.json``: 16 poses interpolated between real poses (front, arms out, arm raised,
  walking, back to front), each key pose moved onto the first one's neck and torso length;
- ``inpainting/person_inpaint.png`` with its sidecars and ``person_inpaint_mask.png`` (white = hole);
- ``README.md``: what each file is and where it comes from.

Deterministic: the same files on every run. The real annotation is read from ``--annotation``
(default ``../shared/data/deepfashion/fasion-annotation-test.csv`` beside the repository) when it
is there, and the script says so; without it the target poses and the sequence already in
``--out`` are kept (the script says that too) and only the renders are redone.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from glocal_cli.data.images import save_image
from glocal_cli.data.keypoints import KEYPOINT_NAMES, Pose, read_keypoint_csv, write_openpose_json
from glocal_cli.data.parsing import write_parsing

HEIGHT, WIDTH = 256, 176
SEED = 0
"""SynthPeople seed whose identities are searched for the sources."""
REPO = Path(__file__).resolve().parents[1]
ANNOTATION = REPO.parent / "shared" / "data" / "deepfashion" / "fasion-annotation-test.csv"
K = {name: i for i, name in enumerate(KEYPOINT_NAMES)}


@dataclass(frozen=True)
class Wish:
    """One source photo: which SynthPeople identity (the first that ``fits``) and how it is turned."""

    stem: str
    what: str
    fits: Callable[[object], bool]
    yaw: float
    """Body turn, radians (0 faces the camera, pi shows the back)."""


def _patterned(look) -> bool:
    return not look.top.kind.startswith("plain") or look.top.logo is not None


SOURCES = (
    Wish("person_00", "man, front", lambda lk: lk.category == "man" and not lk.has_skirt and _patterned(lk), 0.15),
    Wish("person_01", "woman in a dress, front", lambda lk: lk.category == "woman" and lk.bottom_kind == "dress", -0.2),
    Wish("person_02", "child, front", lambda lk: lk.category in ("boy", "girl") and lk.top.logo is not None, 0.1),
    Wish("person_03", "old man, three-quarter view", lambda lk: lk.category == "old man" and _patterned(lk), 0.55),
    Wish("person_04", "old woman, front", lambda lk: lk.category == "old woman" and lk.hair_style != "bald", -0.1),
    Wish("person_05", "woman in a skirt, back view",
         lambda lk: lk.category == "woman" and lk.bottom_kind == "skirt" and lk.hair_style == "long", math.pi),
)
INPAINT = Wish("person_inpaint", "man with a chest logo, front (inpainting case)",
               lambda lk: lk.category == "man" and lk.top.logo is not None and not lk.top.logo_back, 0.05)

# Target poses: rows of the DeepFashion test annotation, found among the 934 full-body rows by the
# rule in the comment (scores over the 256x176 frame, torso = neck to mid-hip), then checked by eye.
TARGETS = (
    ("front", "fashionWOMENTees_Tanksid0000138406_4full.jpg"),  # widest shoulders, arms down, feet together
    ("side", "fashionWOMENDressesid0000753401_2side.jpg"),  # narrowest shoulders among the *side rows
    ("back", "fashionWOMENRompers_Jumpsuitsid0000315901_3back.jpg"),  # tallest *back row without a nose
    ("walking", "fashionWOMENSweatersid0000250202_7additional.jpg"),  # widest stride (ankles apart / torso)
    ("arm raised", "fashionWOMENDressesid0000713206_4full.jpg"),  # a wrist highest above its shoulder
    ("arms out", "fashionWOMENTees_Tanksid0000149205_4full.jpg"),  # both arms held out to the sides
)
SEQUENCE_KEYS = ("front", "arms out", "arm raised", "walking")
"""Key poses of the animation, visited in this order and back to the first."""
SEQUENCE_STEPS = 4
"""Poses per key pose (the key itself and 3 in-betweens): 16 in all."""


# ------------------------------------------------------------------------------------------ sources


def _tidy_poses(body, rng: np.random.Generator, yaw: float, shape: np.ndarray, skirt: bool, tries: int = 200):
    """Sampled standing poses at ``yaw`` whose arms hang clear of the torso (every limb readable in
    the photo): those of the sampler's draws whose wrists are below the elbows, the elbows below the
    shoulders, and both wrists outside the hips (a generator, ``global_orient (1, 3)``, ``body_pose (1, P, 3)``)."""
    import torch

    from glocal_cli.synth.anny_poses import sample_poses

    names = list(body.pose_joints)
    for _ in range(tries):
        orient, pose = sample_poses(body, rng, 1, yaws=np.array([yaw]))
        if skirt:  # legs stay under the skirt (as SynthPeople does for skirt and dress wearers)
            for joint in ("hip_l", "hip_r"):
                j = names.index(joint)
                pose[:, j, 0] = np.clip(pose[:, j, 0] * 0.7, -0.3, 0.3)
                pose[:, j, 2] = np.clip(pose[:, j, 2], -0.3, 0.3)
        with torch.no_grad():
            kp = body(torch.from_numpy(orient), torch.from_numpy(pose), torch.from_numpy(shape)[None],
                      vertices=False).keypoints[0].numpy()
        x, y = kp[:, 0], kp[:, 1]  # y grows downwards (the renderer's image axis)
        hips = sorted((x[K["r_hip"]], x[K["l_hip"]]))
        width = hips[1] - hips[0]
        arms_down = all(y[K[f"{s}_wrist"]] > y[K[f"{s}_elbow"]] > y[K[f"{s}_shoulder"]] for s in ("r", "l"))
        outside = all(x[K[f"{s}_wrist"]] < hips[0] - 0.1 * width or x[K[f"{s}_wrist"]] > hips[1] + 0.1 * width
                      for s in ("r", "l"))
        if arms_down and outside:
            yield orient, pose


def _torso_seen(pose: Pose) -> bool:
    """The photo's keypoints show the torso (neck, both shoulders, a hip) and at least 11 points:
    enough for every flow mode, the 3D body fit included."""
    v = pose.visible
    return bool(v[K["neck"]] and v[K["r_shoulder"]] and v[K["l_shoulder"]] and (v[K["r_hip"]] or v[K["l_hip"]])
                and v.sum() >= 11)


def render_sources(out: Path, wishes: tuple[Wish, ...], folder: str) -> list[str]:
    """Render each wish into ``out/folder``: the first identity of seed :data:`SEED` that fits it, in
    the first of a few tidy poses whose keypoints show the torso; returns a README line per photo."""
    from glocal_cli.data.config import AnnySynthConfig
    from glocal_cli.synth.anny_people import load_anny_body, render_anny_identity, sample_identity_look
    from glocal_cli.synth.anny_poses import RealPoses

    body = load_anny_body()
    opts = AnnySynthConfig(closeup=0.0, noise=0)  # full length; no sensor noise (smaller PNGs)
    no_real = RealPoses(None)
    dest = out / folder
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for wish in wishes:
        for index in range(2000):
            look = sample_identity_look(body, SEED, index)
            if index in _TAKEN or not wish.fits(look):
                continue
            rng = np.random.default_rng([SEED, index, 7])
            tidy = _tidy_poses(body, rng, wish.yaw, look.shape, look.has_skirt)
            ident = next((r for _, r in zip(range(4), (render_anny_identity(
                body, SEED, index, 1, HEIGHT, WIDTH, no_real, opts, poses=p) for p in tidy))
                if _torso_seen(r.keypoints[0])), None)
            if ident is not None:
                break
        else:
            raise SystemExit(f"{wish.stem}: no SynthPeople identity of seed {SEED} fits ({wish.what})")
        _TAKEN.add(index)
        save_image(dest / f"{wish.stem}.png", ident.images[0])
        write_openpose_json(dest / f"{wish.stem}.json", ident.keypoints[0], canvas=(HEIGHT, WIDTH))
        write_parsing(dest / f"{wish.stem}_parsing.png", ident.parsing[0])
        lines.append(f"| `{folder}/{wish.stem}.png` | {wish.what}: SynthPeople seed {SEED}, identity {index} "
                     f"({look.describe()}), {int(ident.keypoints[0].visible.sum())} of 18 keypoints seen |")
        if wish is INPAINT:
            write_mask(dest / f"{wish.stem}_mask.png", ident.keypoints[0], ident.parsing[0])
    return lines


_TAKEN: set[int] = set()
"""Identities already used (each example shows another person)."""


def write_mask(path: Path, pose: Pose, parsing: np.ndarray) -> None:
    """The inpainting hole (white): a blob over the chest logo and a brush stroke from the left
    elbow across the trousers, kept on the person (clothes, arms and legs)."""
    xy = pose.xy
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    neck, rh, lh = xy[K["neck"]], xy[K["r_hip"]], xy[K["l_hip"]]
    torso = float(np.linalg.norm((rh + lh) / 2 - neck))
    chest = neck + 0.3 * ((rh + lh) / 2 - neck)
    cv2.ellipse(mask, (round(chest[0]), round(chest[1])), (round(0.28 * torso), round(0.2 * torso)), 15, 0, 360, 255, -1)
    stroke = np.array([xy[K["l_elbow"]], (lh + xy[K["l_knee"]]) / 2, xy[K["r_knee"]]], np.float32)
    cv2.polylines(mask, [np.round(stroke).astype(np.int32)], False, 255, thickness=max(3, round(0.12 * torso)))
    mask[parsing == 0] = 0  # the hole covers only the person
    save_image(path, np.repeat(mask[..., None], 3, axis=2))


# ------------------------------------------------------------------------------------- target poses


def _torso(pose: Pose) -> tuple[np.ndarray, float]:
    neck = pose.xy[K["neck"]]
    hips = (pose.xy[K["r_hip"]] + pose.xy[K["l_hip"]]) / 2
    return neck, float(np.linalg.norm(hips - neck))


def write_targets(out: Path, annotation: Path) -> list[str]:
    """The target poses and the sequence from the real annotation; returns README lines."""
    poses = read_keypoint_csv(annotation, "deepfashion-256x256", "deepfashion-256x176")
    by_role = {}
    for role, name in TARGETS:
        if name not in poses:
            raise SystemExit(f"{annotation}: row {name!r} not found (a different annotation file?)")
        by_role[role] = poses[name]
    (out / "poses").mkdir(parents=True, exist_ok=True)
    for old in (out / "poses").glob("pose_*.json"):
        old.unlink()
    lines = []
    for j, (role, name) in enumerate(TARGETS):
        pose = by_role[role]
        write_openpose_json(out / "poses" / f"pose_{j:02d}.json", pose, canvas=(HEIGHT, WIDTH))
        lines.append(f"| `poses/pose_{j:02d}.json` | {role}: DeepFashion annotation row `{name}` "
                     f"({int(pose.visible.sum())} of 18 points) |")
    seq = out / "sequence"
    seq.mkdir(parents=True, exist_ok=True)
    for old in seq.glob("seq_*.json"):
        old.unlink()
    ref_neck, ref_len = _torso(by_role[SEQUENCE_KEYS[0]])
    keys = []
    for role in SEQUENCE_KEYS:  # each key pose moved onto the first: same neck, same torso length
        pose = by_role[role]
        neck, length = _torso(pose)
        s = ref_len / length
        keys.append(Pose((ref_neck + (pose.xy - neck) * s).astype(np.float32), pose.visible.copy()))
    n = 0
    for a in range(len(keys)):
        p, q = keys[a], keys[(a + 1) % len(keys)]
        for step in range(SEQUENCE_STEPS):
            t = step / SEQUENCE_STEPS
            both = p.visible & q.visible
            xy = np.where(both[:, None], (1 - t) * p.xy + t * q.xy, p.xy).astype(np.float32)
            vis = both if step else p.visible
            pose = Pose(xy, vis).clip_to_frame(HEIGHT, WIDTH)
            write_openpose_json(seq / f"seq_{n:02d}.json", pose, canvas=(HEIGHT, WIDTH))
            n += 1
    lines.append(f"| `sequence/seq_00.json` .. `seq_{n - 1:02d}.json` | {n} poses: the key poses "
                 f"{', '.join(SEQUENCE_KEYS)} (rows above, moved onto the first's neck and torso length) and "
                 f"{SEQUENCE_STEPS - 1} linear in-betweens each, looping back to the first |")
    return lines


README = """# Examples

Inputs of `make demo` (written by `scripts/make_examples.py`, deterministic). Nothing here comes
from a photo with a licence: the people are renders of SynthPeople on Anny body shapes
(`glocal prepare-data synthetic --body anny`; Anny: code Apache-2.0, body data CC0), and the
target poses are keypoint coordinates (numbers) from the community's DeepFashion test annotation
`fasion-annotation-test.csv`, converted from its padded 256x256 frame to 256x176.

Every source photo is 256x176 with two sidecars: `<stem>.json` (OpenPose COCO-18 keypoints, the
renderer's exact ones, with `canvas_height` / `canvas_width`) and `<stem>_parsing.png` (the 8-class
label map, 0 background .. 7 legs). Every pose file records its canvas (256x176), so
`pose_frame: auto` reads it as the source photo's pixels. Masks are white where the hole is.

| file | what it is |
| --- | --- |
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "examples")
    parser.add_argument("--annotation", type=Path, default=ANNOTATION,
                        help="DeepFashion fasion-annotation-test.csv (target poses and the sequence)")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for old in (out / "sources").glob("person_*"):  # sources are rewritten whole (no stale ones)
        old.unlink()
    lines = render_sources(out, SOURCES, "sources")
    lines += render_sources(out, (INPAINT,), "inpainting")
    lines[-1] = lines[-1][:-2] + "; `inpainting/person_inpaint_mask.png`: the hole (chest logo, a stroke over arm and legs) |"
    if args.annotation.is_file():
        print(f"reading the real target poses from {args.annotation}")
        pose_lines = write_targets(out, args.annotation)
        (out / "README.md").write_text(README + "\n".join(lines + pose_lines) + "\n", encoding="utf-8")
    else:
        print(f"{args.annotation} is absent: target poses, sequence and README.md in {out} are kept as they are")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {len(SOURCES)} sources, 1 inpainting case and their sidecars to {out} ({total / 1024:.0f} KiB in all)")


if __name__ == "__main__":
    main()
