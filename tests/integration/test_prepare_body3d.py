"""``prepare-data ... --correspondence body3d / --parsing body3d`` on real sample photos (fast fit settings).

DeepFashion: 8 real photos of 4 people (the sample strips), community keypoints, one image's annotation
cut down to 4 points so that its fit is flagged. Market-1501: real crops at 128x64 with borrowed
keypoints (parsing from the mesh only: the kind's photos have no plain background).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from glocal_cli.body import load_body_model
from glocal_cli.body.config import BodyConfig, BodyFitConfig
from glocal_cli.body.correspond import INVISIBLE, VISIBLE, load_correspondence
from glocal_cli.data.backends import BackendSpec
from glocal_cli.data.keypoints import read_keypoint_csv
from glocal_cli.data.layout import PreparedDataset, read_manifest, read_pairs_csv
from glocal_cli.data.naming import parse_deepfashion_name
from glocal_cli.data.parsing import NUM_CLASSES, read_parsing
from glocal_cli.errors import ConfigError
from glocal_cli.prepare import PrepareOptions, prepare_deepfashion, prepare_market
from tests.integration.test_prepare_deepfashion import sample_photos, write_raw

# shrunk fitting (the code path is the real one): a few L-BFGS iterations, so a looser RMS limit (the flagged
# fit of these tests is the one with too few keypoints); one person per unit
FAST = BodyConfig(fit=BodyFitConfig(iters_camera=5, iters_pose=20, iters_shape=20, max_rms_px=16.0), fit_batch_size=2)
FIT_KEYS = ("global_orient", "body_pose", "shape", "camera", "rms_px", "ok", "reason", "frame")


def _strip_pairs(shared: Path, count: int) -> list[tuple[str, str]]:
    """The first ``count`` sample strips with a person in both panels (``source, target``)."""
    out = []
    for strip in sorted((shared / "deepfashion" / "samples").glob("*.png")):
        base = strip.name[: -len(".png")]
        cut = base.index(".jpg_") + len(".jpg")
        a, b = base[:cut], base[cut + 1 :]
        if "flat" in a or "flat" in b:
            continue
        out.append((a, b))
    return out[:count]


@pytest.fixture(scope="module")
def df_case(shared_data, tmp_path_factory) -> dict:
    """A raw tree of 8 photos and an annotation CSV in which one image keeps only 4 keypoints."""
    root = tmp_path_factory.mktemp("b3df")
    pairs = _strip_pairs(shared_data, 4)
    names = sorted({n for p in pairs for n in p})
    photos = sample_photos(shared_data)
    write_raw(root / "raw", {n: photos[n] for n in names})
    lines = (shared_data / "deepfashion" / "fasion-annotation-test.csv").read_text().splitlines()
    rows = {line.split(":", 1)[0]: line for line in lines[1:]}
    crippled = names[-1]
    ys, xs = (json.loads(v) for v in rows[crippled].split(":", 1)[1].split(":"))
    keep = [0, 1, 14, 15]  # nose, neck, eyes: too few points for a body
    ys = [v if i in keep else -1 for i, v in enumerate(ys)]
    xs = [v if i in keep else -1 for i, v in enumerate(xs)]
    rows[crippled] = f"{crippled}: {ys}: {xs}"
    ann = root / "ann.csv"
    ann.write_text("\n".join([lines[0]] + [rows[n] for n in names]) + "\n")
    return {"raw": root / "raw", "ann": ann, "names": names, "crippled": crippled, "root": root}


def _prepare_df(case: dict, out: Path, **kw):
    opts = PrepareOptions(out=out, keypoints=BackendSpec("csv"), correspondence="body3d", body_parsing=True,
                          body=FAST, test_fraction=0.5, **kw)
    return prepare_deepfashion(case["raw"], opts, annotations=[case["ann"]])


def _files(out: Path) -> dict[str, bytes]:
    return {f"{sub}/{p.name}": p.read_bytes() for sub in ("body", "correspondence", "parsing")
            for p in sorted((out / sub).iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def df_out(df_case) -> tuple[Path, object]:
    out = df_case["root"] / "out"
    return out, _prepare_df(df_case, out)


def test_fits_correspondence_and_parsing_files(df_case, df_out) -> None:
    out, result = df_out
    names, crippled = df_case["names"], df_case["crippled"]
    ds = PreparedDataset(out)
    m = ds.manifest
    assert m.has_correspondence and m.has_parsing and m.parsing_source == "body3d"
    b3 = m.options["body3d"]
    assert b3["body_model"] == "anny" and b3["fits"] == len(names) and b3["fits_ok"] == len(names) - 1
    ds.check()

    # per-image fits: plain arrays, model-frame camera, shape shared by the two photos of a person
    body = load_body_model("anny")
    fits = {}
    for n in names:
        with np.load(out / "body" / f"{Path(n).stem}.npz", allow_pickle=False) as f:
            fits[n] = {k: f[k] for k in f.files}
        d = fits[n]
        assert set(FIT_KEYS) <= set(d)
        assert d["global_orient"].shape == (3,) and d["camera"].shape == (3,)
        assert d["body_pose"].shape == (len(body.pose_joints), 3) and d["shape"].shape == (body.shape_dim,)
        assert d["rms_px"].shape == () and d["frame"].tolist() == [256, 176]
        assert bool(d["ok"]) == (n != crippled)
    assert re.search(r"only \d keypoints", str(fits[crippled]["reason"]))
    by_person: dict[str, list[str]] = {}
    for n in names:
        by_person.setdefault(parse_deepfashion_name(n).identity, []).append(n)
    shapes = [fits[group[0]]["shape"] for group in by_person.values()]
    for group in by_person.values():
        assert len(group) == 2 and np.array_equal(fits[group[0]]["shape"], fits[group[1]]["shape"])
    assert not np.array_equal(shapes[0], shapes[1])
    csv_rows = (out / "body" / "fits.csv").read_text().splitlines()
    assert csv_rows[0] == "name,rms_px,ok,reason" and len(csv_rows) == len(names) + 1
    assert [r.split(",")[2] for r in csv_rows[1:]] == ["0" if n == crippled else "1" for n in names]

    # correspondence: every pair of the pair files whose fits are ok; the others are in the report
    pairs = sorted({(b, a) for s in ("train", "val", "test") if (out / f"pairs-{s}.csv").is_file()
                    for a, b in read_pairs_csv(out / f"pairs-{s}.csv")})
    assert pairs
    report = json.loads((out / "validation-report.json").read_text())
    flagged = {p["path"] for p in report["problems"].get("pair_flagged", [])}
    assert report["problems"]["fit_flagged"][0]["path"] == crippled
    shares = []
    for target, source in pairs:
        path = out / "correspondence" / f"{Path(target).stem}__{Path(source).stem}.npz"
        if crippled in (target, source):
            assert not path.exists() and f"{source},{target}" in flagged
            continue
        maps = load_correspondence(path)
        assert maps.flow.shape == (256, 176, 2) and maps.visibility.shape == (256, 176)
        assert set(np.unique(maps.visibility).tolist()) <= {0, 1, 2}
        n_body = int(((maps.visibility == VISIBLE) | (maps.visibility == INVISIBLE)).sum())
        assert n_body > 0.05 * 256 * 176  # a person, not a speck
        shares.append(float((maps.visibility == VISIBLE).sum()) / n_body)
        vis = maps.visibility == VISIBLE
        rows, cols = np.nonzero(vis)
        src = np.stack([cols, rows], 1) + maps.flow[vis]
        assert (src[:, 0] > -1).all() and (src[:, 0] < 176).all() and (src[:, 1] > -1).all() and (src[:, 1] < 256).all()
    # front/back pairs of the samples see little of each other, front/side more: a plausible mean share
    assert len(shares) == len(pairs) - len(flagged) and 0.02 < float(np.mean(shares)) < 0.9
    assert len(flagged) == sum(crippled in p for p in pairs)

    # parsing: 8 classes, covering the person's body keypoints
    kp = read_keypoint_csv(out / "keypoints.csv")
    on, total = 0, 0
    for n in names:
        labels = read_parsing(out / "parsing" / f"{Path(n).stem}.png")
        assert labels.shape == (256, 176) and int(labels.max()) < NUM_CLASSES
        assert (labels > 0).mean() > 0.05
        if n == crippled:
            continue
        pose = kp[n]
        for k in range(1, 14):  # neck .. ankles (the face points may sit on hair)
            if pose.visible[k]:
                x, y = (int(round(v)) for v in pose.xy[k])
                if 0 <= x < 176 and 0 <= y < 256:
                    total += 1
                    on += bool((labels[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3] > 0).any())
    assert total > 40 and on / total > 0.9
    rows = dict(result.rows())
    assert "flagged" in rows["body3d fits"] and "person mask: plain" in rows["body3d parsing"]


def test_resume_redoes_only_what_is_missing_and_is_deterministic(df_case, df_out) -> None:
    out, _ = df_out
    before = _files(out)
    names = df_case["names"]
    victim = names[0]  # one person's fit: its unit (that person) is refitted, its pairs and maps redone
    person = {n for n in names if parse_deepfashion_name(n).identity == parse_deepfashion_name(victim).identity}
    others = sorted(set(names) - person)
    untouched = [p for p in sorted((out / "correspondence").glob("*.npz"))
                 if not any(p.name.startswith(Path(n).stem + "__") or p.name.endswith("__" + Path(n).stem + ".npz")
                            for n in person)]
    assert untouched
    lost_pair, lost_map = untouched[0], out / "parsing" / f"{Path(others[0]).stem}.png"
    keep = untouched[1:] + [out / "body" / f"{Path(n).stem}.npz" for n in others]
    keep += [out / "parsing" / f"{Path(n).stem}.png" for n in others[1:]]
    mtimes = {p: p.stat().st_mtime_ns for p in keep}
    (out / "manifest.json").unlink()  # as if the run had been interrupted in the body3d stage
    (out / "body" / f"{Path(victim).stem}.npz").unlink()
    lost_pair.unlink()
    lost_map.unlink()
    result = _prepare_df(df_case, out)
    assert result.body3d is not None and result.body3d.fitted == 2
    assert _files(out) == before  # the same bytes as the uninterrupted run
    for p, t in mtimes.items():
        assert p.stat().st_mtime_ns == t, p  # kept, not rewritten
    assert read_manifest(out).has_correspondence


def test_changed_body_settings_are_refused_without_overwrite(df_case, tmp_path) -> None:
    out = tmp_path / "out"
    _prepare_df(df_case, out, person_mask="none")
    (out / "manifest.json").unlink()
    other = BodyConfig(fit=BodyFitConfig(iters_camera=5, iters_pose=20, iters_shape=21, max_rms_px=16.0),
                       fit_batch_size=2)
    opts = PrepareOptions(out=out, keypoints=BackendSpec("csv"), correspondence="body3d", body=other,
                          test_fraction=0.5)
    from glocal_cli.errors import OutputExistsError

    with pytest.raises(OutputExistsError, match="body.*--overwrite"):
        prepare_deepfashion(df_case["raw"], opts, annotations=[df_case["ann"]])


def test_market_kind_gets_mesh_parsing(shared_data, tmp_path) -> None:
    if not (shared_data / "market1501" / "samples").is_dir():
        pytest.skip("Market-1501 samples not found")
    from tests.integration.test_prepare_market import borrowed_annotation, market_crops

    crops = dict(sorted(market_crops(shared_data).items())[:6])
    raw = tmp_path / "Market-1501"
    (raw / "bounding_box_test").mkdir(parents=True)
    for name, crop in crops.items():
        Image.fromarray(crop).save(raw / "bounding_box_test" / name, quality=95)
    ann = tmp_path / "ann.csv"
    borrowed_annotation(shared_data, crops, ann)
    out = tmp_path / "out"
    opts = PrepareOptions(out=out, height=128, width=64, keypoints=BackendSpec("csv"), body_parsing=True, body=FAST)
    result = prepare_market(raw, opts, annotations=[ann])
    ds = PreparedDataset(out)
    assert ds.has_parsing and ds.manifest.parsing_source == "body3d" and not ds.manifest.has_correspondence
    assert ds.manifest.options["body3d"]["person_mask"] == "none"
    assert not (out / "correspondence").exists() and result.body3d is not None
    ok = {r.split(",")[0]: r.split(",")[2] == "1" for r in (out / "body" / "fits.csv").read_text().splitlines()[1:]}
    for n in crops:
        labels = read_parsing(ds.parsing_path(n))
        assert labels.shape == (128, 64) and int(labels.max()) < NUM_CLASSES
        if ok[n]:
            assert 0.05 < (labels > 0).mean() < 0.9


def test_cli_wiring_and_one_line_errors(df_case, tmp_path) -> None:
    import typer

    from glocal_cli.cli.prepare_real import folder_command

    app = typer.Typer()
    app.command()(folder_command)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 48, 3), 200, np.uint8)).save(photos / "a.png")
    runner = CliRunner()
    res = runner.invoke(app, ["--images", str(photos), "--out", str(tmp_path / "o"), "--keypoints", "auto",
                              "--dry-run", "--correspondence", "body3d", "--parsing", "body3d"])
    assert res.exit_code == 0, res.output
    assert "body3d" in res.output
    res = runner.invoke(app, ["--images", str(photos), "--out", str(tmp_path / "o"), "--dry-run",
                              "--correspondence", "body3d", "--body-model", "smplx"])
    assert res.exit_code != 0 and "smplx:PATH" in res.output
    res = runner.invoke(app, ["--images", str(photos), "--out", str(tmp_path / "o"), "--dry-run",
                              "--correspondence", "mesh"])
    assert res.exit_code != 0 and "--correspondence 'mesh'" in res.output
    with pytest.raises(ConfigError, match="either a folder"):
        PrepareOptions(out=tmp_path, parsing_dir=tmp_path, body_parsing=True)
    assert os.path.basename(str(tmp_path / "o")) == "o" and not (tmp_path / "o").exists()


def test_synthetic_cli_adds_body3d_and_resumes(tmp_path) -> None:
    import typer

    from glocal_cli.cli.prepare_synthetic import synthetic_command

    app = typer.Typer()
    app.command()(synthetic_command)
    out = tmp_path / "synth"
    args = ["--out", str(out), "-n", "2", "-k", "2", "--size", "64x44", "-j", "1", "--correspondence", "body3d"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    ds = PreparedDataset(out)
    m = ds.manifest
    assert m.has_surface and m.has_correspondence and m.parsing_source == ""  # its exact parsing stays
    b3 = m.options["body3d"]
    assert b3["fits"] == 4 and b3["body_model"] == "anny" and not b3["parsing"]
    assert "correspondence" in res.output
    pairs = sorted({(b, a) for s in ("train", "test") for a, b in ds.pairs(s)})
    written = sorted((out / "correspondence").glob("*.npz"))
    assert len(written) == b3["pairs_ok"] and b3["pairs_ok"] + b3["pairs_flagged"] == len(pairs)
    for path in written:
        assert load_correspondence(path).visibility.shape == (64, 44)
    times = {p: p.stat().st_mtime_ns for p in written + sorted((out / "body").glob("*.npz"))}
    res = CliRunner().invoke(app, args)  # same options: everything is kept
    assert res.exit_code == 0, res.output
    assert all(p.stat().st_mtime_ns == t for p, t in times.items())
    assert read_manifest(out).options["body3d"]["fitted"] == 0
    # surface maps win over the correspondence files in training
    from glocal_cli.data.datasets import PairDataset

    assert PairDataset(out, split="train", with_flow=True).flow_from == "surface"
