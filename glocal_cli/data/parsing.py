"""Semantic parsing: the 8 canonical classes, label maps, remaps, one-hot and colour views.

The classes are PISE's merge of the 20 LIP/CIHP labels (see docs/design.md, "Data contracts"):
``0 background, 1 hair (+hat), 2 upper clothes (+coat), 3 lower clothes (dress, pants, skirt),
4 shoes, 5 face, 6 arms, 7 legs (+socks)``. A label map is a ``uint8 (H, W)`` array of class ids.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glocal_cli.data import atomic_output
from glocal_cli.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "CCP59_NAMES",
    "CCP59_TO_8",
    "CLASS_NAMES",
    "LIP20_NAMES",
    "LIP20_TO_8",
    "NUM_CLASSES",
    "PALETTE",
    "class_ids",
    "colorize",
    "one_hot",
    "one_hot_torch",
    "parse_remap",
    "read_parsing",
    "remap_labels",
    "SKIN",
    "split_skin",
    "write_parsing",
]

CLASS_NAMES: tuple[str, ...] = ("background", "hair", "upper", "lower", "shoes", "face", "arms", "legs")
"""The 8 canonical classes, in label order (``CLASS_NAMES[k]`` is the name of label ``k``)."""

NUM_CLASSES = len(CLASS_NAMES)
"""Number of canonical classes (8)."""

PALETTE: np.ndarray = np.array(
    [
        [255, 255, 255],  # background: white, like the padding of the frames
        [128, 64, 0],  # hair: brown
        [220, 40, 40],  # upper clothes: red
        [40, 70, 200],  # lower clothes: blue
        [40, 40, 40],  # shoes: near black
        [250, 200, 150],  # face: light skin
        [230, 150, 60],  # arms: orange
        [60, 170, 80],  # legs: green
    ],
    dtype=np.uint8,
)
"""``uint8 (8, 3)`` RGB colour per class, for pictures (``colorize``)."""
PALETTE.setflags(write=False)

LIP20_NAMES: tuple[str, ...] = (
    "background",
    "hat",
    "hair",
    "glove",
    "sunglasses",
    "upper_clothes",
    "dress",
    "coat",
    "socks",
    "pants",
    "jumpsuits",
    "scarf",
    "skirt",
    "face",
    "left_arm",
    "right_arm",
    "left_leg",
    "right_leg",
    "left_shoe",
    "right_shoe",
)
"""The 20 LIP / CIHP labels (0..19), the output of LIP/CIHP human parsers."""

LIP20_TO_8: tuple[int, ...] = (0, 1, 1, 0, 0, 2, 3, 2, 7, 3, 6, 0, 3, 5, 6, 6, 7, 7, 4, 4, 0)
"""LIP/CIHP label -> canonical class, verbatim from PISE issue #2 (``from_label`` 0..20).

It has 21 entries although LIP/CIHP have 20 labels (0..19): PISE's table carries a trailing
entry for a label 20 that no LIP/CIHP parser emits. We keep it verbatim (label 20 -> background)
so that maps prepared with PISE's table remap identically; labels >= 21 are rejected. Note that
PISE maps jumpsuits (10) to arms (6); kept as published, since PISE's released maps follow it.
"""


def _check_table(table: Sequence[int] | np.ndarray) -> np.ndarray:
    lut = np.asarray(table, dtype=np.int64).reshape(-1)
    if lut.size == 0:
        raise ValueError("remap table is empty")
    if lut.min() < 0 or lut.max() > 255:
        raise ValueError("remap table targets must be in 0..255")
    return lut


def remap_labels(
    labels: np.ndarray, table: Sequence[int] | np.ndarray, where: str = "label map"
) -> np.ndarray:
    """Map every label ``l`` to ``table[l]``; ``uint8`` result of ``labels``' shape.

    Labels outside ``0 .. len(table) - 1`` raise :class:`InputError` listing them (``where``
    names the file in the message).
    """
    lut = _check_table(table)
    arr = np.asarray(labels)
    if arr.size and (arr.min() < 0 or arr.max() >= lut.size):
        values = np.unique(arr)
        bad = values[(values < 0) | (values >= lut.size)]
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (" ..." if bad.size > 10 else "")
        raise InputError(f"{where}: labels {shown} are outside the remap table (0..{lut.size - 1})")
    return lut.astype(np.uint8)[arr.astype(np.int64)]


def parse_remap(text: str) -> tuple[int, ...]:
    """Parse a user remap ``"0:0,1:1,2:1,..."`` (source label: canonical class) into a lookup table.

    Source labels may be given in any order; every label from 0 to the largest must be given
    (no gaps), each target must be a canonical class id (0..7). Errors are :class:`InputError`.
    """
    mapping: dict[int, int] = {}
    items = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
    if not items:
        raise InputError(f"remap {text!r}: empty; expected 'source:class' pairs like '0:0,1:1,2:1'")
    for item in items:
        src, sep, dst = item.partition(":")
        if not sep:
            raise InputError(f"remap {text!r}: item {item!r} is not 'source:class'")
        try:
            s, d = int(src), int(dst)
        except ValueError:
            raise InputError(f"remap {text!r}: item {item!r} is not two integers") from None
        if s < 0 or s > 255:
            raise InputError(f"remap {text!r}: source label {s} is outside 0..255")
        if not 0 <= d < NUM_CLASSES:
            raise InputError(f"remap {text!r}: target {d} is not a class id 0..{NUM_CLASSES - 1}")
        if s in mapping and mapping[s] != d:
            raise InputError(f"remap {text!r}: label {s} is mapped twice")
        mapping[s] = d
    missing = [i for i in range(max(mapping) + 1) if i not in mapping]
    if missing:
        raise InputError(
            f"remap {text!r}: labels {missing[:10]} are not mapped (give every label 0..{max(mapping)})"
        )
    return tuple(mapping[i] for i in range(max(mapping) + 1))


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """``float32 (C, H, W)`` one-hot of an ``(H, W)`` label map (or ``(B, C, H, W)`` from ``(B, H, W)``)."""
    arr = np.asarray(labels).astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {int(arr.min())}..{int(arr.max())}")
    out = np.eye(num_classes, dtype=np.float32)[arr]  # (..., H, W, C)
    return np.moveaxis(out, -1, -3)


def one_hot_torch(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """``(B, C, H, W)`` float one-hot of a ``(B, H, W)`` integer tensor (same device)."""
    import torch

    lab = labels.long()
    out = torch.zeros((*lab.shape[:-2], num_classes, *lab.shape[-2:]), dtype=torch.float32, device=lab.device)
    return out.scatter_(-3, lab.unsqueeze(-3), 1.0)


def colorize(labels: np.ndarray, palette: np.ndarray = PALETTE) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB picture of a label map (labels beyond the palette are drawn black)."""
    arr = np.asarray(labels).astype(np.int64)
    pal = np.concatenate([np.asarray(palette, np.uint8), np.zeros((1, 3), np.uint8)])
    return pal[np.clip(arr, 0, len(pal) - 1)]


def read_parsing(path: str | os.PathLike[str], remap: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Read a label-map PNG as ``uint8 (H, W)`` canonical classes.

    The PNG must hold single-channel labels (mode ``L``/``P``/``I``; an RGB image whose three
    channels are equal is accepted too). Without ``remap`` the labels must already be 0..7; with
    it they are mapped through the table (e.g. :data:`LIP20_TO_8`). Unknown labels raise
    :class:`InputError` naming the file and the label values.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("RGB", "RGBA"):
                rgb = np.asarray(im.convert("RGB"))
                if not (
                    np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
                ):
                    raise InputError(
                        f"{p}: parsing is a colour image; expected a single-channel label map (PNG mode L or P)"
                    )
                arr = rgb[..., 0]
            elif im.mode == "P":
                arr = np.asarray(im)  # palette indices are the labels
            elif im.mode in ("L", "I", "I;16", "I;16B", "I;16L"):
                arr = np.asarray(im)
            else:
                raise InputError(
                    f"{p}: parsing has image mode {im.mode}; expected a single-channel label map"
                )
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise InputError(f"{p}: cannot read parsing map ({e.__class__.__name__}: {e})") from None
    table = tuple(range(NUM_CLASSES)) if remap is None else remap
    return remap_labels(arr, table, where=str(p) if remap is not None else f"{p} (canonical 8-class map)")


def write_parsing(path: str | os.PathLike[str], labels: np.ndarray) -> None:
    """Write an ``(H, W)`` label map (values 0..255) as a single-channel PNG, atomically."""
    from PIL import Image

    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"a label map must be 2-D, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError("label values must be in 0..255")
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"{p}: label maps are stored as .png (lossless)")
    with atomic_output(p) as tmp:
        Image.fromarray(arr.astype(np.uint8)).save(tmp, format="PNG")


def class_ids(names: str | Sequence[str]) -> list[int]:
    """Class ids of names like ``"hair,upper"`` (or a list); unknown names get a did-you-mean.

    Also accepts ids given as digits (``"1,2"``). Raises :class:`InputError`.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[int] = []
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        if name.isdigit() and int(name) < NUM_CLASSES:
            idx = int(name)
        elif name in CLASS_NAMES:
            idx = CLASS_NAMES.index(name)
        else:
            close = difflib.get_close_matches(name, CLASS_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(f"unknown class {raw.strip()!r}{hint} (classes: {', '.join(CLASS_NAMES)})")
        if idx not in out:
            out.append(idx)
    if not out:
        raise InputError(f"no class names given in {names!r}")
    return out


# ----------------------------------------------------------------- Clothing Co-Parsing (CCP, 59 labels)

SKIN = 8
"""Marker label (outside the 8 classes) of a source label that covers several body classes: CCP's ``skin``
(face, arms and legs together), split by :func:`split_skin` once the keypoints are known."""

CCP59_NAMES: tuple[str, ...] = (
    "null", "accessories", "bag", "belt", "blazer", "blouse", "bodysuit", "boots", "bra", "bracelet", "cape",
    "cardigan", "clogs", "coat", "dress", "earrings", "flats", "glasses", "gloves", "hair", "hat", "heels",
    "hoodie", "intimate", "jacket", "jeans", "jumper", "leggings", "loafers", "necklace", "panties", "pants",
    "pumps", "purse", "ring", "romper", "sandals", "scarf", "shirt", "shoes", "shorts", "skin", "skirt",
    "sneakers", "socks", "stockings", "suit", "sunglasses", "sweater", "sweatshirt", "swimwear", "t-shirt", "tie",
    "tights", "top", "vest", "wallet", "watch", "wedges",
)
"""The 59 labels of Clothing Co-Parsing (``labels.txt``), in label order."""

_CCP59_CLASS: dict[str, int] = {
    # carried or worn apart from the body outline: background, as PISE merges LIP's bags and gloves
    "null": 0, "accessories": 0, "bag": 0, "purse": 0, "wallet": 0,
    "hair": 1, "hat": 1,
    **dict.fromkeys(("blazer", "blouse", "bodysuit", "bra", "cape", "cardigan", "coat", "hoodie", "jacket", "jumper",
                     "necklace", "scarf", "shirt", "suit", "sweater", "sweatshirt", "swimwear", "t-shirt", "tie", "top",
                     "vest"), 2),
    **dict.fromkeys(("belt", "dress", "intimate", "jeans", "leggings", "panties", "pants", "romper", "shorts",
                     "skirt"), 3),
    **dict.fromkeys(("boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "shoes", "sneakers",
                     "wedges"), 4),
    **dict.fromkeys(("earrings", "glasses", "sunglasses"), 5),  # worn on the face: the face's outline
    **dict.fromkeys(("bracelet", "gloves", "ring", "watch"), 6),  # worn on the arms and hands
    **dict.fromkeys(("socks", "stockings", "tights"), 7),  # PISE: socks are legs
    "skin": SKIN,
}
CCP59_TO_8: tuple[int, ...] = tuple(_CCP59_CLASS[n] for n in CCP59_NAMES)
"""CCP label -> canonical class, with ``skin`` -> :data:`SKIN` (split into face, arms and legs by the pose)."""

# segments of the body that skin pixels are assigned to (COCO-18 keypoint ids): the head (nose-neck, the eyes
# and ears), arms (shoulder-elbow-wrist) and legs (hip-knee-ankle)
_HEAD_SEGMENTS = ((0, 1), (0, 14), (0, 15), (14, 16), (15, 17), (16, 16), (17, 17))
_ARM_SEGMENTS = ((2, 3), (3, 4), (5, 6), (6, 7))
_LEG_SEGMENTS = ((8, 9), (9, 10), (11, 12), (12, 13))


def split_skin(labels: np.ndarray, xy: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """``labels`` with every :data:`SKIN` pixel made face (5), arms (6) or legs (7).

    Each skin pixel takes the class of the nearest body segment drawn between visible keypoints (``xy``
    ``(18, 2)`` in the label map's pixels, COCO-18 order): the head (nose to neck, eyes, ears), the arms
    (shoulder-elbow-wrist; a lone wrist or elbow counts as a point) and the legs (hip-knee-ankle). A hand
    beyond the wrist and a foot beyond the ankle are nearest to their limb's last segment. With no segment
    at all (no keypoints), skin above the upper third of the skin's extent is face and the rest arms.
    """
    out = np.asarray(labels, np.uint8).copy()
    skin = out == SKIN
    if not skin.any():
        return out
    ys, xs = np.nonzero(skin)
    pts = np.stack([xs, ys], 1).astype(np.float32) + 0.5
    xy = np.asarray(xy, np.float32)
    vis = np.asarray(visible, bool)
    segments: list[tuple[np.ndarray, np.ndarray]] = []
    classes: list[int] = []
    for group, cls in ((_HEAD_SEGMENTS, 5), (_ARM_SEGMENTS, 6), (_LEG_SEGMENTS, 7)):
        for a, b in group:
            if vis[a] and vis[b]:
                segments.append((xy[a], xy[b]))
                classes.append(cls)
            elif vis[a] or vis[b]:  # one end seen: that point alone
                p = xy[a] if vis[a] else xy[b]
                segments.append((p, p))
                classes.append(cls)
    if not segments:
        top = ys.min() + (ys.max() - ys.min()) / 3.0
        out[skin] = np.where(ys < top, 5, 6).astype(np.uint8)
        return out
    a = np.stack([s[0] for s in segments])  # (S, 2)
    b = np.stack([s[1] for s in segments])
    ab = b - a
    denom = np.maximum((ab**2).sum(1), 1e-6)  # (S,)
    t = np.clip(((pts[:, None, :] - a[None]) * ab[None]).sum(2) / denom[None], 0.0, 1.0)  # (N, S)
    nearest = a[None] + t[..., None] * ab[None]
    d2 = ((pts[:, None, :] - nearest) ** 2).sum(2)
    out[ys, xs] = np.asarray(classes, np.uint8)[d2.argmin(1)]
    return out
