"""Make the two small files that Anny SynthPeople ships (``glocal_cli/synth/data/``).

1. ``anny_render_faces.npz``: the triangle list the renderer draws. The compact Anny mesh has
   27,420 triangles, 20,000 of them in the head, hands and feet, far below a pixel at 256x176.
   This script drops the faces that are never seen from outside (the mouth cavity, the back of the
   eyes: rasterised from 60 directions at ~700 px per metre), then merges the vertices of the head
   (outside the face), hands and feet on a 1 cm grid and of the face on a 6 mm grid, each cluster
   kept as its original vertex nearest the cluster's mean (so the faces still index the body's
   own vertices and pose with its skinning). Half the triangles, the same picture at 256x176
   (the rasteriser's cost grows with the number of faces).
2. ``anny_poses.npz``: body poses fitted (``glocal_cli.body.fit.fit_keypoints``) to the rows of
   the community's DeepFashion test keypoint annotation (``fasion-annotation-test.csv``) that have
   at least 8 points and a torso, with a keypoint RMS under 6 px and a body leaning less than 25
   degrees: global orientation, body pose, camera, the annotated keypoints and which were seen
   (256x176 frame), and the row names. Numbers only; DeepFashion's terms (non-commercial research)
   apply to the annotation they come from.

Run (a few minutes on 2 cores)::

    .venv/bin/python scripts/make_synth_anny_data.py [--csv ../shared/data/deepfashion/fasion-annotation-test.csv]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch

OUT_DIR = Path(__file__).resolve().parents[1] / "glocal_cli" / "data" / "synth" / "data"


def seen_faces(body, size: int = 1400, scale: float = 700.0) -> np.ndarray:  # noqa: ANN001
    """Faces visible from outside the rest body (60 directions)."""
    from glocal_cli.body.anny_body import axis_angle_to_matrix
    from glocal_cli.body.render import rasterize

    orient, pose = body.zero_pose(1)
    with torch.no_grad():
        verts = body(orient, pose, body.default_shape(1)).vertices[0]
    seen = torch.zeros(len(body.faces), dtype=torch.bool)
    for el in (-0.9, -0.45, 0.0, 0.45, 0.9):
        for az in np.linspace(0, 2 * math.pi, 12, endpoint=False):
            rot = axis_angle_to_matrix(torch.tensor([el, 0.0, 0.0])) @ axis_angle_to_matrix(
                torch.tensor([0.0, float(az), 0.0]))
            w = verts @ rot.T
            xy = w[:, :2] * scale + size / 2
            r = rasterize(xy[None], w[None, :, 2].contiguous(), body.faces, size, size)
            seen[r.face_id[r.face_id >= 0].unique()] = True
    return seen.numpy()


def cluster_faces(verts: np.ndarray, faces: np.ndarray, parts: np.ndarray, face_cell: float = 0.006,
                  cell: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering of the head, hands and feet (see the module docstring)."""
    detail = np.isin(parts, (1, 5, 8, 11, 14))
    keep = np.zeros(len(verts), bool)
    keep[faces[~detail].reshape(-1)] = True  # vertices shared with the torso and limbs stay
    vpart = np.zeros(len(verts), np.int64)
    vpart[faces.reshape(-1)] = np.repeat(parts, 3)
    face_front = (vpart == 1) & (verts[:, 2] < -0.06) & (verts[:, 1] > -0.71) & (verts[:, 1] < -0.52)
    size = np.where(face_front, face_cell, cell)
    key = np.floor(verts / size[:, None]).astype(np.int64)
    k = (((vpart * 2 + face_front) * 1000003 + key[:, 0]) * 1000003 + key[:, 1]) * 1000003 + key[:, 2]
    k = np.where(keep, -1 - np.arange(len(verts)), k)
    uniq, inv = np.unique(k, return_inverse=True)
    count = np.bincount(inv)
    mean = np.stack([np.bincount(inv, verts[:, c]) for c in range(3)], 1) / count[:, None]
    d = ((verts - mean[inv]) ** 2).sum(1)
    order = np.lexsort((d, inv))
    first = order[np.r_[0, np.flatnonzero(np.diff(inv[order])) + 1]]
    rep = np.empty(len(uniq), np.int64)
    rep[inv[first]] = first
    new = rep[inv[faces]]
    ok = (new[:, 0] != new[:, 1]) & (new[:, 1] != new[:, 2]) & (new[:, 0] != new[:, 2])
    new, new_parts = new[ok], parts[ok]
    _, first_face = np.unique(np.sort(new, 1), axis=0, return_index=True)
    first_face = np.sort(first_face)
    return new[first_face], new_parts[first_face]


def render_faces(body) -> dict[str, np.ndarray]:  # noqa: ANN001
    faces = body.faces.numpy()
    parts = body.face_parts.numpy()
    seen = seen_faces(body)
    verts = body.v_template.double().numpy()
    new, new_parts = cluster_faces(verts, faces[seen], parts[seen])
    print(f"render mesh: {len(faces)} -> {seen.sum()} seen -> {len(new)} faces")
    return {"faces": new.astype(np.int32), "face_parts": new_parts.astype(np.uint8),
            "source_faces_sha256": np.array(hashlib.sha256(faces.astype(np.int64).tobytes()).hexdigest()[:16])}


def _tilt_degrees(orient: np.ndarray) -> np.ndarray:
    """Angle between each body's up axis and the vertical."""
    from glocal_cli.body.anny_body import axis_angle_to_matrix

    rot = axis_angle_to_matrix(torch.from_numpy(orient).double()).numpy()
    up = rot[:, :, 1]  # the body's y axis (down) in the camera frame
    return np.degrees(np.arccos(np.clip(up[:, 1], -1.0, 1.0)))


def fit_annotation(body, csv: Path, batch: int = 64, max_tilt: float = 25.0) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Fit every usable row; keep fits under 6 px RMS whose body leans less than ``max_tilt`` degrees."""
    from glocal_cli.body.fit import fit_keypoints
    from glocal_cli.data.keypoints import read_keypoint_csv

    poses = read_keypoint_csv(csv, "deepfashion-256x256", "deepfashion-256x176")
    items = []
    for name, p in poses.items():
        v = p.visible
        if v.sum() >= 8 and v[2] and v[5] and (v[8] or v[11]):
            items.append((name, p))
    keys = ("names", "global_orient", "body_pose", "camera", "keypoints", "visible", "rms")
    out: dict[str, list] = {k: [] for k in keys}
    t0 = time.perf_counter()
    dropped = {"rms": 0, "tilt": 0}
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        kp = np.stack([p.xy for _, p in chunk]).astype(np.float32)
        vis = np.stack([p.visible for _, p in chunk])
        fit = fit_keypoints(body, kp, vis, 256, 176)
        tilt = _tilt_degrees(fit.global_orient.numpy())
        for i, (name, _) in enumerate(chunk):
            if not bool(fit.ok[i]) or float(fit.rms_px[i]) >= 6.0:
                dropped["rms"] += 1
                continue
            if tilt[i] > max_tilt:
                dropped["tilt"] += 1
                continue
            out["names"].append(name)
            out["global_orient"].append(fit.global_orient[i].numpy())
            out["body_pose"].append(fit.body_pose[i].numpy())
            out["camera"].append(fit.camera[i].numpy())
            out["keypoints"].append(np.where(vis[i][:, None], kp[i], -1.0))
            out["visible"].append(vis[i])
            out["rms"].append(float(fit.rms_px[i]))
        print(f"  fitted {start + len(chunk)}/{len(items)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"dropped: {dropped['rms']} flagged or over 6 px RMS, {dropped['tilt']} leaning over {max_tilt} degrees")
    return {
        "names": np.array(out["names"]),
        "global_orient": np.stack(out["global_orient"]).astype(np.float32),
        "body_pose": np.stack(out["body_pose"]).astype(np.float32),
        "camera": np.stack(out["camera"]).astype(np.float32),
        "keypoints": np.stack(out["keypoints"]).astype(np.float32),
        "visible": np.stack(out["visible"]).astype(bool),
        "rms_px": np.array(out["rms"], np.float16),
        "annotation_sha256": np.array(hashlib.sha256(csv.read_bytes()).hexdigest()[:16]),
    }


def compact(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Smaller file: rotations as float16 (1e-3 rad), names as one newline-joined byte string."""
    out = dict(data)
    out["names"] = np.frombuffer("\n".join(str(n) for n in data["names"]).encode("ascii"), np.uint8)
    out["global_orient"] = data["global_orient"].astype(np.float16)
    out["body_pose"] = data["body_pose"].astype(np.float16)
    out["keypoints"] = data["keypoints"].astype(np.float16)
    out["visible"] = np.packbits(data["visible"], axis=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=None, help="fasion-annotation-test.csv (default: found in ../shared)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--skip-mesh", action="store_true")
    ap.add_argument("--skip-poses", action="store_true")
    args = ap.parse_args()
    from glocal_cli.body import load_body_model
    from glocal_cli.synth.poses import find_pose_csv

    body = load_body_model("anny")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.skip_mesh:
        np.savez_compressed(args.out / "anny_render_faces.npz", **render_faces(body))
    if not args.skip_poses:
        csv = args.csv or find_pose_csv()
        if csv is None:
            raise SystemExit("fasion-annotation-test.csv not found: pass --csv")
        data = fit_annotation(body, Path(csv))
        np.savez_compressed(args.out / "anny_poses.npz", **compact(data))
        print(f"{len(data['names'])} poses -> {args.out / 'anny_poses.npz'}")


if __name__ == "__main__":
    main()
