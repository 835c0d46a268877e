"""The data contracts on the community's real files in ``../shared/data`` (skipped when absent).

"Keypoints fall on the person" check used for the sample panels (DeepFashion):

* a panel is 256x256 and shows a 176-wide photo padded by 40 px of white on both sides;
* its background colour is the per-channel median of the photo's 3 outermost columns on each side
  (studio backgrounds are near-white or light grey and fill the photo's sides);
* the person mask holds the pixels whose RGB distance to that background colour AND to pure white
  exceeds 20, dilated by a 5x5 square (2 px tolerance: joints sit on the silhouette's edge);
* pass: at least 95 % of all visible keypoints of all panels are in the mask, and at least 70 %
  in every panel (white garments on white backgrounds lose a few points);
* the check has power: the same keypoints moved 40 px sideways (the error of forgetting the
  padding) must fall to at most 75 %.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from glocal_cli.data.images import load_image
from glocal_cli.data.keypoints import Pose, convert_frame, read_keypoint_csv, write_keypoint_csv
from glocal_cli.data.layout import read_list, read_pairs_csv
from glocal_cli.data.naming import identity_of, is_market_name

DF_CSV = "fasion-annotation-test.csv"
MARKET_CSV = "market-annotation-test.csv"


def _sample_pairs(samples: Path) -> list[tuple[Path, str, str]]:
    out = []
    for path in sorted(samples.glob("*.png")):
        source, sep, target = path.name[: -len(".png")].partition(".jpg_")
        assert sep, f"{path.name}: sample name is not '<from>.jpg_<to>.jpg.png'"
        out.append((path, source + ".jpg", target))
    return out


def _person_mask(panel: np.ndarray, pad: int) -> np.ndarray:
    photo = panel[:, pad : panel.shape[1] - pad].astype(np.float32)
    sides = np.concatenate([photo[:, :3].reshape(-1, 3), photo[:, -3:].reshape(-1, 3)])
    background = np.median(sides, axis=0)
    pix = panel.astype(np.float32)
    dist = np.minimum(np.linalg.norm(pix - background, axis=2), np.linalg.norm(pix - 255.0, axis=2))
    mask = (dist > 20).astype(np.uint8)
    return cv2.dilate(mask, np.ones((5, 5), np.uint8)).astype(bool)


def _on_mask(mask: np.ndarray, pose: Pose, shift_x: int = 0) -> np.ndarray:
    pts = np.rint(pose.xy[pose.visible]).astype(int)
    h, w = mask.shape
    x = pts[:, 0] + shift_x
    x = np.where(x < w, x, pts[:, 0] - shift_x)  # move the other way near the right edge
    return mask[np.clip(pts[:, 1], 0, h - 1), np.clip(x, 0, w - 1)]


@pytest.fixture(scope="module")
def df_keypoints(shared_data) -> dict[str, Pose]:
    return read_keypoint_csv(shared_data / "deepfashion" / DF_CSV)


def test_deepfashion_annotation_csv(shared_data, df_keypoints, tmp_path):
    kp = df_keypoints
    assert len(kp) == 4038
    assert sum(p.num_visible == 0 for p in kp.values()) == 619
    assert set(kp) == set(read_list(shared_data / "deepfashion" / "test.lst"))
    # coordinates are in the 256x256 padded frame
    xy = np.concatenate([p.xy[p.visible] for p in kp.values()])
    assert xy.min() >= 0 and xy.max() < 256
    # in the 176-wide frame only a handful of points (on the padding) leave the frame
    narrow = [convert_frame(p, "deepfashion-256x256", "deepfashion-256x176") for p in kp.values()]
    lost = sum(p.num_visible for p in kp.values()) - sum(p.num_visible for p in narrow)
    assert 0 < lost < 50
    # writing the parsed file reproduces it byte for byte
    write_keypoint_csv(tmp_path / "copy.csv", kp)
    assert (tmp_path / "copy.csv").read_bytes() == (shared_data / "deepfashion" / DF_CSV).read_bytes()


def test_deepfashion_pairs_share_identity(shared_data, df_keypoints):
    pairs = read_pairs_csv(shared_data / "deepfashion" / "fashion-pairs-test.csv")
    assert len(pairs) == 8570
    assert all(a in df_keypoints and b in df_keypoints for a, b in pairs)
    assert all(identity_of(a) == identity_of(b) for a, b in pairs)


def test_deepfashion_sample_keypoints_fall_on_the_person(shared_data, df_keypoints):
    samples = _sample_pairs(shared_data / "deepfashion" / "samples")
    assert samples, "no DeepFashion sample PNGs"
    inside = []
    shifted = []
    per_panel = {}
    for path, source, target in samples:
        image = load_image(path)
        assert image.shape == (256, 768, 3), path.name
        for k, name in enumerate((source, target)):
            pose = df_keypoints[name]
            if pose.num_visible == 0:
                continue
            mask = _person_mask(image[:, 256 * k : 256 * (k + 1)], pad=40)
            hits = _on_mask(mask, pose)
            inside.append(hits)
            shifted.append(_on_mask(mask, pose, shift_x=40))
            per_panel[f"{path.name}[{k}]"] = hits.mean()
    rate = np.concatenate(inside).mean()
    control = np.concatenate(shifted).mean()
    worst = min(per_panel, key=per_panel.get)
    assert len(per_panel) >= 2 * len(samples) - 10
    assert rate >= 0.95, f"only {rate:.1%} of visible keypoints on the person"
    assert per_panel[worst] >= 0.70, f"{worst}: only {per_panel[worst]:.0%} of its keypoints on the person"
    assert control <= 0.75, f"the check has no power: shifted keypoints still score {control:.1%}"


def test_market_annotation_csv(shared_data, tmp_path):
    market = shared_data / "market1501"
    kp = read_keypoint_csv(market / MARKET_CSV)
    assert len(kp) == 19732 and all(is_market_name(n) for n in kp)
    xy = np.concatenate([p.xy[p.visible] for p in kp.values()])
    # the 128x64 (H x W) frame, x and y not swapped, people centred in their crops
    assert xy[:, 0].min() >= 0 and xy[:, 0].max() < 64 and xy[:, 1].min() >= 0 and xy[:, 1].max() < 128
    assert 28 <= np.median(xy[:, 0]) <= 36
    pairs = read_pairs_csv(market / "market-pairs-test.csv")
    assert len(pairs) == 12000 and all(a in kp and b in kp for a, b in pairs)
    assert all(identity_of(a) == identity_of(b) for a, b in pairs)
    write_keypoint_csv(tmp_path / "copy.csv", kp)
    assert (tmp_path / "copy.csv").read_bytes() == (market / MARKET_CSV).read_bytes()


def test_market_sample_panels(shared_data):
    """Panels are 64x128 with no padding; their keypoints are checked when the CSV has them."""
    market = shared_data / "market1501"
    samples = _sample_pairs(market / "samples")
    assert samples
    for path, source, target in samples:
        assert load_image(path).shape == (128, 192, 3), path.name
        assert identity_of(source) == identity_of(target), path.name
    kp = read_keypoint_csv(market / MARKET_CSV)
    annotated = [s for s in samples if s[1] in kp and s[2] in kp]
    if not annotated:
        pytest.skip(
            f"none of the {len(samples)} Market-1501 sample pairs is in {MARKET_CSV} (the samples come "
            "from identities outside the annotated test set), so their keypoints cannot be checked"
        )
    # Market backgrounds are street scenes, so the white-background mask does not apply: check
    # instead that the keypoints lie in their 64x128 panel and are centred on the person's crop.
    for _path, source, target in annotated:
        for name in (source, target):
            pose = kp[name]
            assert pose.clip_to_frame(128, 64).num_visible == pose.num_visible, name
