"""The shipped ``examples/`` are complete and consistent, and ``make demo`` uses them (reads files only: fast).

Sources with their pose and parsing sidecars, target poses and the animation sequence with their
canvas, the inpainting case with its mask; the Makefile's demo target writes the three outputs and
its inputs plan without an error (what ``glocal transfer`` / ``inpaint`` would run).
"""

from __future__ import annotations

import re
import shlex

import numpy as np
import pytest

from glocal_cli.data.images import load_image
from glocal_cli.data.keypoints import KEYPOINT_NAMES, read_pose_file_frame
from glocal_cli.data.masks import load_mask
from glocal_cli.data.parsing import NUM_CLASSES, read_parsing
from glocal_cli.infer.io import list_images
from tests.infer_helpers import EXAMPLES, REPO

SOURCES, POSES, SEQUENCE, INPAINTING = (EXAMPLES / d for d in ("sources", "poses", "sequence", "inpainting"))
K = {name: i for i, name in enumerate(KEYPOINT_NAMES)}


def _pose(path, canvas):
    """The pose of ``path``, checked: 18 points, the canvas ``(H, W)`` recorded, visible points inside it."""
    pose, note, frame = read_pose_file_frame(path)
    assert len(pose) == 18 == len(KEYPOINT_NAMES), path
    assert frame is not None and (frame.height, frame.width) == canvas, f"{path}: canvas not recorded"
    assert "kept person" not in note, f"{path}: more than one person"
    xy = pose.xy[pose.visible]
    assert ((xy >= -0.5) & (xy <= np.array([canvas[1], canvas[0]]) - 0.5)).all(), f"{path}: a point off the canvas"
    return pose


def _near_person(parsing: np.ndarray, x: float, y: float, radius: int = 2) -> bool:
    h, w = parsing.shape
    r, c = int(round(y)), int(round(x))
    return bool((parsing[max(r - radius, 0):r + radius + 1, max(c - radius, 0):c + radius + 1] > 0).any())


def _check_photo(image_path):
    """A photo with its sidecars: pose (torso seen, points on the person) and parsing of the photo's size."""
    image = load_image(image_path)
    canvas = image.shape[:2]
    pose = _pose(image_path.with_suffix(".json"), canvas)
    parsing = read_parsing(image_path.with_name(f"{image_path.stem}_parsing.png"))
    assert parsing.shape == canvas, f"{image_path}: parsing {parsing.shape} vs photo {canvas}"
    assert parsing.max() < NUM_CLASSES and 0.03 < (parsing > 0).mean() < 0.6, image_path
    assert pose.num_visible >= 9, f"{image_path}: only {pose.num_visible} keypoints seen"
    assert pose.visible[[K["neck"], K["r_shoulder"], K["l_shoulder"]]].all(), f"{image_path}: torso not seen"
    for i in np.flatnonzero(pose.visible):
        assert _near_person(parsing, *pose.xy[i]), f"{image_path}: {KEYPOINT_NAMES[i]} is off the person"
    return image, pose, parsing


def test_every_source_has_its_pose_and_parsing():
    sources = list_images(SOURCES)
    assert 4 <= len(sources) <= 6
    sizes = set()
    for src in sources:
        image, _, _ = _check_photo(src)
        sizes.add(image.shape)
    assert sizes == {(256, 176, 3)}
    stems = {p.stem for p in sources}
    leftovers = [p.name for p in SOURCES.iterdir() if p.stem.removesuffix("_parsing") not in stems]
    assert not leftovers, f"files without a source photo: {leftovers}"


def test_target_poses_parse_in_the_photo_canvas():
    files = sorted(POSES.glob("*.json"))
    assert 4 <= len(files) <= 6
    poses = [_pose(f, (256, 176)) for f in files]
    assert all(p.num_visible >= 9 for p in poses)
    assert len({p.xy.tobytes() for p in poses}) == len(poses), "two target poses are the same"


def test_the_sequence_is_long_and_smooth_enough_for_an_animation():
    files = sorted(SEQUENCE.glob("*.json"))
    assert len(files) >= 8
    poses = [_pose(f, (256, 176)) for f in files]
    assert all(p.num_visible >= 9 for p in poses)
    torso = np.linalg.norm(poses[0].xy[K["neck"]] - poses[0].xy[[K["r_hip"], K["l_hip"]]].mean(0))
    for a, b in zip(poses, poses[1:] + poses[:1]):  # loops back to the first
        both = a.visible & b.visible
        assert both.sum() >= 9
        step = np.linalg.norm(a.xy[both] - b.xy[both], axis=1)
        assert 0 < step.max() < 0.8 * torso, "a jump between consecutive poses"


def test_the_inpainting_case_has_a_mask_of_its_photo_size_on_the_person():
    photos = list_images(INPAINTING)
    assert len(photos) >= 1
    for photo in photos:
        image, _, parsing = _check_photo(photo)
        mask, notes = load_mask(photo.with_name(f"{photo.stem}_mask.png"))
        assert mask.shape == image.shape[:2] and not notes, f"{photo}: mask not binary or of another size"
        assert 0.01 < mask.mean() < 0.3
        assert (parsing[mask] > 0).mean() > 0.95, "the hole should lie on the person"


def test_examples_stay_small():
    total = sum(p.stat().st_size for p in EXAMPLES.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024


def _demo_commands() -> list[list[str]]:
    text = (REPO / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r"^demo:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE)
    assert match, "Makefile has no demo target"
    return [shlex.split(line.strip()) for line in match.group(1).splitlines()]


def _option(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_make_demo_writes_transfer_animation_and_inpainting_from_the_examples():
    from glocal_cli.infer.batch import JobSpec, plan_tasks
    from glocal_cli.infer.config import InferConfig

    cmds = [c for c in _demo_commands() if c and c[0].endswith("/glocal")]
    kinds = [c[1] for c in cmds]
    assert kinds.count("transfer") == 2 and kinds.count("inpaint") == 1
    outs = [_option(c, "--out") for c in cmds]
    assert all(o and o.startswith("outputs/demo") for o in outs)
    video = [_option(c, "--video") for c in cmds if "--video" in c]
    assert len(video) == 1 and video[0].startswith("outputs/demo/") and video[0].endswith((".gif", ".mp4"))
    assert all("--grid" in c for c in cmds if "--video" not in c), "transfer and inpainting results come with grids"
    assert not any("--overwrite" in c for c in cmds), "the demo keeps what exists"
    counts = {}
    for cmd in cmds:  # the inputs plan as the commands would (files found, masks matched)
        mask = _option(cmd, "--mask") or "irregular"
        pose = _option(cmd, "--pose")
        spec = JobSpec(cmd[1], REPO / _option(cmd, "--source"), REPO / _option(cmd, "--out"),
                       pose=REPO / pose if pose else None,
                       mask=mask if mask in ("file", "irregular", "semantic") else str(REPO / mask),
                       video=REPO / video[0] if "--video" in cmd else None)
        tasks = plan_tasks(spec, InferConfig(), (64, 44))
        assert all(t.source_pose is not None and t.source_parsing is not None for t in tasks), cmd
        counts["video" if "--video" in cmd else cmd[1]] = len(tasks)
    n_src, n_pose = len(list_images(SOURCES)), len(list(POSES.glob("*.json")))
    assert counts == {"transfer": n_src * n_pose, "video": len(list(SEQUENCE.glob("*.json"))),
                      "inpaint": len(list_images(INPAINTING))}


@pytest.mark.parametrize("folder", ["sources", "inpainting"])
def test_script_and_readme_name_every_photo(folder):
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for photo in list_images(EXAMPLES / folder):
        assert f"`{folder}/{photo.name}`" in readme, f"README.md does not describe {folder}/{photo.name}"
