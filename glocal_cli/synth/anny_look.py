"""What an Anny SynthPeople identity looks like, and the colour and class of every pixel it covers.

:func:`sample_look` draws an identity once (deterministic given the random generator): a body shape
from the body model's phenotype samples (men, women, children, elders; every build), a skin tone,
hair (colour; bald, buzz, short, bob or long), clothes (a top with a sleeve length, neckline, hem and
pattern; trousers, jeans, shorts, a skirt or a dress; shoes or boots), a background and a light.

:func:`colour_pixels` turns the texture channels of the pixels a mesh covers
(:data:`~glocal_cli.synth.anny_mesh.CHANNELS`, interpolated from the vertices) into an unlit
colour and one of the 8 parsing classes. Clothes are laid out on the body's own surface
(template positions and limb coordinates): a sleeve ends at a limb coordinate, a hem at a template
height, so every garment edge and every stripe sits on the same surface point in every pose, and
the class of a pixel is exactly the garment drawn there.

Patterns are small tiles (stripes, checks, plaid, dots, scattered prints, melange and denim noise,
blotches) with a physical size in metres, sampled with wrap-around from a mip pyramid (no moire
when a pattern is small in the picture); logos are letters or simple shapes drawn with OpenCV on
the chest.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from glocal_cli.body.base import BODY_PARTS
from glocal_cli.synth.anny_mesh import HAIR_PART, SKIRT_PART, BodyTables

__all__ = [
    "BOTTOM_KINDS",
    "HAIR_STYLES",
    "PATTERNS",
    "Look",
    "Pattern",
    "colour_pixels",
    "sample_look",
]

_BG, _HAIR, _UPPER, _LOWER, _SHOES, _FACE, _ARMS, _LEGS = range(8)
_P = {name: i for i, name in enumerate(BODY_PARTS)}

PATTERNS: tuple[str, ...] = (
    "plain", "melange", "hstripes", "vstripes", "checks", "plaid", "dots", "print", "blotches", "denim",
)  # fmt: skip
"""Pattern kinds of clothes."""
HAIR_STYLES: tuple[str, ...] = ("bald", "buzz", "short", "bob", "long")
"""Hair styles (``bob`` and ``long`` add a hair shell mesh)."""
BOTTOM_KINDS: tuple[str, ...] = ("trousers", "jeans", "shorts", "skirt", "dress")
"""Lower clothes (``skirt`` and ``dress`` add a skirt mesh over both legs)."""

_SKIN_TONES = np.array(
    [[255, 226, 204], [245, 205, 180], [234, 189, 157], [214, 163, 128], [190, 135, 100], [160, 107, 74],
     [128, 84, 58], [98, 64, 45], [72, 48, 36]], np.float32,
)  # fmt: skip
_HAIR_COLOURS = np.array(
    [[22, 18, 16], [45, 32, 24], [78, 52, 34], [112, 78, 50], [160, 120, 74], [214, 180, 120], [150, 62, 30],
     [120, 118, 116], [196, 194, 190]], np.float32,
)  # fmt: skip
_TILE = 64


@dataclass(frozen=True, eq=False)
class Pattern:
    """A garment's pattern: a tile (mip pyramid) of a physical size, plus an optional logo."""

    kind: str
    levels: tuple[np.ndarray, ...]
    """``float32 (S, S, 3)`` tile, then each level halved (last 1x1)."""
    size: float
    """Edge of the tile in metres."""
    base: np.ndarray
    """Dominant colour ``(3,)`` (for summaries)."""
    logo: np.ndarray | None = None
    """``float32 (h, w, 4)`` RGBA logo for the chest, or ``None``."""
    logo_size: float = 0.12
    """Logo width in metres."""
    logo_back: bool = False
    """The logo is on the back instead of the front."""


@dataclass(frozen=True, eq=False)
class Look:
    """One identity's appearance (colours RGB float 0..255)."""

    category: str
    """``man``, ``woman``, ``boy``, ``girl``, ``old man``, ``old woman``."""
    phenotype: np.ndarray
    """Anny phenotype sliders ``(6,)``: gender, age, muscle, weight, height, proportions."""
    shape: np.ndarray
    """Body-model shape coefficients ``(S,)``."""
    skin: np.ndarray
    lips: np.ndarray
    iris: np.ndarray
    hair_colour: np.ndarray
    hair_style: str
    hairline: float
    """Front hairline (template height, metres; smaller is higher)."""
    hair_end: float
    """Hair shell length (0 chin .. 1 mid spine)."""
    hair_thickness: float
    hair_sweep: float
    hair_wave: float
    hair_tile: Pattern
    top_kind: str
    sleeve: float
    """Sleeve end on the arm's limb coordinate (0 sleeveless, 0.45 short, 1 elbow, 2.05 long)."""
    neckline: str
    """``crew``, ``v``, ``scoop`` or ``turtle``."""
    neck_depth: float
    top_hem: float
    """Template height of the top's hem (metres)."""
    top: Pattern
    bottom_kind: str
    bottom_length: float
    """Leg coverage on the leg's limb coordinate (shorts ~0.5, trousers 2)."""
    waist: float
    """Template height of the trousers' or skirt's waist band."""
    bottom: Pattern
    skirt_length: float
    skirt_flare: float
    belt: np.ndarray | None
    shoes: np.ndarray
    sole: np.ndarray
    shoe_top: float
    """Shoe top on the leg's limb coordinate (1.97 low shoes, ~1.5 boots)."""
    background: dict[str, object] = field(default_factory=dict)
    light: np.ndarray = field(default_factory=lambda: np.array([0.3, -0.5, -0.8], np.float32))
    """Unit vector towards the key light (canonical camera frame)."""
    ambient: float = 0.6
    diffuse: float = 0.45
    tint: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))

    @property
    def has_skirt(self) -> bool:
        """A skirt or dress mesh hangs over the legs."""
        return self.bottom_kind in ("skirt", "dress")

    @property
    def has_hair_shell(self) -> bool:
        """Bob or long hair (a hair mesh)."""
        return self.hair_style in ("bob", "long")

    def describe(self) -> str:
        """``woman, long hair, striped short-sleeve tee, skirt``."""
        sleeve = "sleeveless" if self.sleeve < 0.1 else ("short-sleeve" if self.sleeve < 0.8 else (
            "elbow-sleeve" if self.sleeve < 1.3 else "long-sleeve"))
        return (f"{self.category}, {self.hair_style} hair, {self.top.kind} {sleeve} {self.top_kind}, "
                f"{self.bottom.kind} {self.bottom_kind}")


# ----------------------------------------------------------------------------------------- sampling


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32) * 255.0


def _cloth_colour(rng: np.random.Generator) -> np.ndarray:
    r = rng.random()
    if r < 0.25:  # neutrals: white, greys, black, beige
        v = float(rng.choice([0.95, 0.85, 0.6, 0.35, 0.12, 0.05]))
        return _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.0, 0.12), v + rng.uniform(-0.04, 0.04))
    if r < 0.35:  # navy and denim blues
        return _hsv(rng.uniform(0.58, 0.65), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.6))
    return _hsv(rng.random(), rng.uniform(0.25, 0.9), rng.uniform(0.3, 0.95))


def _contrasting(rng: np.random.Generator, base: np.ndarray, distance: float = 110.0) -> np.ndarray:
    best = _cloth_colour(rng)
    for _ in range(10):
        if float(np.abs(best - base).sum()) >= distance:
            break
        best = _cloth_colour(rng)
    return best


def _pyramid(tile: np.ndarray) -> tuple[np.ndarray, ...]:
    levels = [tile.astype(np.float32)]
    while levels[-1].shape[0] > 1:
        levels.append(cv2.resize(levels[-1], (levels[-1].shape[1] // 2, levels[-1].shape[0] // 2),
                                 interpolation=cv2.INTER_AREA))
    return tuple(levels)


def _smooth_noise(rng: np.random.Generator, size: int, blur: float, anisotropy: tuple[float, float] = (1.0, 1.0)
                  ) -> np.ndarray:
    """Wrap-around smooth noise in ``[-1, 1]`` roughly (``(size, size)``)."""
    raw = rng.standard_normal((size, size)).astype(np.float32)
    big = np.tile(raw, (3, 3))
    sm = cv2.GaussianBlur(big, (0, 0), sigmaX=blur * anisotropy[0], sigmaY=blur * anisotropy[1])[size:2 * size,
                                                                                                 size:2 * size]
    return sm / max(float(np.abs(sm).max()), 1e-6)


def _make_pattern(rng: np.random.Generator, kind: str, c1: np.ndarray, c2: np.ndarray, c3: np.ndarray) -> Pattern:
    """A tile of ``kind`` in colours ``c1`` (ground), ``c2``, ``c3`` (drawn at 2x and reduced: anti-aliased)."""
    s = _TILE
    hi = s * 2
    canvas = np.empty((hi, hi, 3), np.float32)
    canvas[:] = c1
    size = float(rng.uniform(0.04, 0.10))
    if kind == "hstripes" or kind == "vstripes":
        n = int(rng.integers(1, 3))
        frac = rng.uniform(0.2, 0.55)
        for k in range(n):
            y0 = int(k * hi / n)
            canvas[y0:y0 + int(frac * hi / n)] = c2 if k % 2 == 0 or n == 1 else c3
        if kind == "vstripes":
            canvas = canvas.transpose(1, 0, 2).copy()
    elif kind == "checks":
        a = (np.arange(hi) // (hi // 2)) % 2
        m = (a[:, None] + a[None, :]) % 2 == 1
        canvas[m] = c2
        size = float(rng.uniform(0.03, 0.08))
    elif kind == "plaid":
        band = np.zeros(hi, np.float32)
        for _ in range(3):
            p0, w = int(rng.integers(hi)), int(rng.integers(hi // 24, hi // 6))
            band[(np.arange(hi) - p0) % hi < w] = 1.0
        mix = 0.5 * (band[:, None] + band[None, :])
        canvas = canvas * (1 - mix[..., None]) + c2 * mix[..., None]
        thin = ((np.arange(hi) - int(rng.integers(hi))) % hi) < hi // 40
        canvas[thin, :] = c3
        canvas[:, thin] = c3
        size = float(rng.uniform(0.08, 0.16))
    elif kind == "dots":
        r = int(hi * rng.uniform(0.12, 0.25))
        for cy, cx in ((hi // 4, hi // 4), (3 * hi // 4, 3 * hi // 4)):
            cv2.circle(canvas, (cx, cy), r, c2.tolist(), -1, cv2.LINE_AA)
        size = float(rng.uniform(0.03, 0.07))
    elif kind == "print":
        for _ in range(int(rng.integers(5, 12))):
            col = (c2 if rng.random() < 0.5 else c3).tolist()
            cx, cy = int(rng.integers(hi)), int(rng.integers(hi))
            r = int(hi * rng.uniform(0.04, 0.1))
            for ox in (-hi, 0, hi):  # wrap-around
                for oy in (-hi, 0, hi):
                    if r > 0:
                        if (cx + cy) % 3 == 0:  # a small flower: five petals around a dot
                            for k in range(5):
                                a = 2 * math.pi * k / 5
                                cv2.circle(canvas, (cx + ox + int(r * math.cos(a)), cy + oy + int(r * math.sin(a))),
                                           max(1, r // 2), col, -1, cv2.LINE_AA)
                            cv2.circle(canvas, (cx + ox, cy + oy), max(1, r // 3), c1.tolist(), -1, cv2.LINE_AA)
                        else:
                            cv2.circle(canvas, (cx + ox, cy + oy), r, col, -1, cv2.LINE_AA)
        size = float(rng.uniform(0.10, 0.2))
    elif kind == "blotches":
        n1 = _smooth_noise(rng, hi, hi / 10)
        canvas[n1 > 0.25] = c2
        canvas[n1 < -0.35] = c3
        size = float(rng.uniform(0.15, 0.3))
    elif kind == "denim":
        twill = ((np.arange(hi)[:, None] + np.arange(hi)[None, :]) % 8 < 3).astype(np.float32)
        noise = _smooth_noise(rng, hi, 1.5, (6.0, 0.5))
        canvas = canvas * (1.0 + 0.10 * twill[..., None] + 0.12 * noise[..., None])
        size = float(rng.uniform(0.03, 0.05))
    elif kind == "melange":
        noise = _smooth_noise(rng, hi, 1.2)
        canvas = canvas * (1.0 + 0.08 * noise[..., None])
        size = float(rng.uniform(0.03, 0.06))
    tile = cv2.resize(np.clip(canvas, 0, 255), (s, s), interpolation=cv2.INTER_AREA)
    return Pattern(kind, _pyramid(tile), size, c1.copy())


_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def _make_logo(rng: np.random.Generator, ground: np.ndarray) -> tuple[np.ndarray, float]:
    """An RGBA logo: 1-4 letters, or a shape (disc, ring, star, triangle, heart), in 1-2 colours."""
    col = _contrasting(rng, ground, 160.0)
    col2 = _contrasting(rng, col, 120.0)
    kind = rng.choice(["text", "text", "disc", "ring", "star", "triangle", "heart"])
    if kind == "text":
        text = "".join(rng.choice(list(_LETTERS), int(rng.integers(1, 5))))
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX,
                               cv2.FONT_HERSHEY_COMPLEX]))
        thick = int(rng.integers(3, 7))
        (tw, th), base = cv2.getTextSize(text, font, 2.0, thick)
        h, w = th + base + 12, tw + 12
        rgb = np.zeros((h, w, 3), np.float32)
        mask = np.zeros((h, w), np.uint8)  # OpenCV draws anti-aliased text on 8-bit images only
        cv2.putText(mask, text, (6, th + 6), font, 2.0, 255, thick, cv2.LINE_AA)
        alpha = mask.astype(np.float32) / 255.0
        rgb[:] = col
        size = float(rng.uniform(0.07, 0.045 * len(text) + 0.07))
    else:
        h = w = 96
        rgb = np.zeros((h, w, 3), np.float32)
        mask = np.zeros((h, w), np.uint8)
        rgb[:] = col
        c = (48, 48)
        if kind == "disc":
            cv2.circle(mask, c, 44, 255, -1, cv2.LINE_AA)
            inner = np.zeros_like(mask)
            cv2.circle(inner, c, 22, 255, -1, cv2.LINE_AA)
            t = inner.astype(np.float32)[..., None] / 255.0
            rgb = rgb * (1 - t) + col2 * t
        elif kind == "ring":
            cv2.circle(mask, c, 40, 255, 10, cv2.LINE_AA)
        elif kind == "star":
            pts = [(48 + (44 if k % 2 == 0 else 18) * math.sin(math.pi * k / 5),
                    50 - (44 if k % 2 == 0 else 18) * math.cos(math.pi * k / 5)) for k in range(10)]
            cv2.fillPoly(mask, [np.array(pts, np.int32)], 255, cv2.LINE_AA)
        elif kind == "triangle":
            cv2.fillPoly(mask, [np.array([(48, 6), (90, 88), (6, 88)], np.int32)], 255, cv2.LINE_AA)
        else:  # heart
            cv2.circle(mask, (30, 36), 24, 255, -1, cv2.LINE_AA)
            cv2.circle(mask, (66, 36), 24, 255, -1, cv2.LINE_AA)
            cv2.fillPoly(mask, [np.array([(8, 44), (88, 44), (48, 90)], np.int32)], 255, cv2.LINE_AA)
        alpha = mask.astype(np.float32) / 255.0
        size = float(rng.uniform(0.07, 0.14))
    return np.concatenate([rgb, alpha[..., None]], axis=2), size


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str], p: list[float]) -> str:
    q = np.asarray(p, np.float64)
    return str(options[int(rng.choice(len(options), p=q / q.sum()))])


def _phenotype(rng: np.random.Generator, samples: np.ndarray, heights: np.ndarray) -> tuple[int, str]:
    """Pick a phenotype sample: adults 70%, children 15%, elders 15% (sliders: gender, age, ...)."""
    age, gender = samples[:, 1], samples[:, 0]
    group = _pick(rng, ("adult", "child", "elder"), [0.7, 0.15, 0.15])
    if group == "child":
        ok = (age > 0.05) & (age < 0.3) & (heights > 0.8) & (heights < 1.65)
    elif group == "elder":
        ok = (age > 0.82) & (heights > 1.45) & (heights < 1.95)
    else:
        ok = (age >= 0.4) & (age <= 0.82) & (heights > 1.5) & (heights < 2.0)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        idx = np.arange(len(samples))
    i = int(idx[int(rng.integers(idx.size))])
    male = gender[i] < 0.5  # Anny: gender 0 is male, 1 female
    if group == "child":
        cat = "boy" if male else "girl"
    elif group == "elder":
        cat = "old man" if male else "old woman"
    else:
        cat = "man" if male else "woman"
    return i, cat


def sample_look(rng: np.random.Generator, phenotypes: np.ndarray, coeffs: np.ndarray, heights: np.ndarray) -> Look:
    """Draw an identity (deterministic given ``rng``). ``phenotypes (N, 6)``, ``coeffs (N, S)``: the
    body model's phenotype samples and shape coefficients; ``heights (N,)`` their standing heights (m)."""
    i, cat = _phenotype(rng, phenotypes, heights)
    female = cat in ("woman", "girl", "old woman")
    old = cat.startswith("old")
    tone = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
    skin = np.clip(tone * rng.uniform(0.96, 1.04) + rng.normal(0.0, 4.0, 3), 0, 255).astype(np.float32)
    lips = np.clip(skin * np.array([0.82, 0.6, 0.6]) + (np.array([40, 0, 10]) if female else 0), 0, 255)
    iris = _HAIR_COLOURS[int(rng.integers(0, 5))] * rng.uniform(0.6, 1.4)
    if old:
        hair_c = _HAIR_COLOURS[int(rng.choice([7, 8, 8, 2, 0]))]
    else:
        hair_c = _HAIR_COLOURS[int(rng.integers(0, 7))]
    hair_c = np.clip(hair_c + rng.normal(0, 5, 3), 0, 255).astype(np.float32)
    if female:
        style = _pick(rng, HAIR_STYLES, [0.0, 0.02, 0.15, 0.3, 0.53])
    else:
        style = _pick(rng, HAIR_STYLES, [0.12 if old else 0.03, 0.25, 0.55, 0.06, 0.04])
    hair_tile = _hair_pattern(rng, hair_c)

    # top
    top_kind = _pick(rng, ("tee", "shirt", "tank", "sweater", "blouse"), [0.4, 0.2, 0.12, 0.14, 0.14 if female else 0])
    sleeve = {"tank": 0.0, "tee": float(rng.uniform(0.3, 0.6)), "blouse": float(rng.choice([0.35, 1.0, 1.5, 2.05])),
              "shirt": float(rng.choice([0.45, 2.05, 2.05])), "sweater": 2.05}[top_kind]
    if sleeve > 2.0:
        sleeve = float(rng.uniform(1.92, 2.06))
    neckline = _pick(rng, ("crew", "v", "scoop", "turtle"),
                     [0.5, 0.2, 0.25 if female else 0.08, 0.08 if top_kind == "sweater" else 0.0])
    c1 = _cloth_colour(rng)
    c2, c3 = _contrasting(rng, c1), _contrasting(rng, c1, 80.0)
    pat = _pick(rng, PATTERNS, [0.3, 0.1, 0.14, 0.05, 0.07, 0.07, 0.07, 0.1, 0.04, 0.0])
    top = _make_pattern(rng, pat, c1, c2, c3)
    if rng.random() < 0.3 and pat in ("plain", "melange", "hstripes"):
        logo, logo_size = _make_logo(rng, c1)
        top = Pattern(top.kind + "+logo", top.levels, top.size, top.base, logo, logo_size, bool(rng.random() < 0.15))
    # bottom
    if female:
        bottom_kind = _pick(rng, BOTTOM_KINDS, [0.22, 0.25, 0.13, 0.22, 0.18])
    else:
        bottom_kind = _pick(rng, BOTTOM_KINDS, [0.45, 0.35, 0.2, 0.0, 0.0])
    if bottom_kind == "jeans":
        bc = _hsv(rng.uniform(0.58, 0.63), rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.7))
        bottom = _make_pattern(rng, "denim", bc, bc, bc)
    elif bottom_kind == "dress":
        bottom = top
    else:
        bc = _contrasting(rng, c1, 90.0) if rng.random() < 0.7 else _cloth_colour(rng) * 0.5
        bpat = _pick(rng, PATTERNS, [0.6, 0.12, 0.04, 0.04, 0.05, 0.06, 0.03, 0.06 if bottom_kind == "skirt" else 0,
                                      0.02, 0.0])
        bottom = _make_pattern(rng, bpat, bc, _contrasting(rng, bc), _contrasting(rng, bc, 80.0))
    length = {"trousers": 2.0, "jeans": 2.0, "shorts": float(rng.uniform(0.35, 0.85)), "skirt": 0.0,
              "dress": 0.0}[bottom_kind]
    if bottom_kind in ("trousers", "jeans") and rng.random() < 0.15:
        length = float(rng.uniform(1.4, 1.75))  # cropped
    skirt_len = float(rng.uniform(0.45, 1.7))
    # template heights: the natural waist ~ -0.1, the top of the legs' part ~ -0.013 (hems stay above it)
    waist = float(rng.uniform(-0.1, -0.035))
    if bottom_kind == "dress":
        top_hem = 0.5  # the dress's bodice runs into the skirt
    else:
        top_hem = float(rng.uniform(min(waist + 0.012, -0.02), -0.016))
        if female and rng.random() < 0.08:
            top_hem = float(rng.uniform(-0.16, -0.12))  # crop top
    belt = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.4)) if (
        bottom_kind in ("trousers", "jeans") and rng.random() < 0.3 and top_hem < waist) else None
    # shoes
    shoes = _cloth_colour(rng) * (0.55 if rng.random() < 0.6 else 1.0)
    sole = np.full(3, 240.0 if rng.random() < 0.4 else 40.0, np.float32)
    shoe_top = float(rng.uniform(1.55, 1.75)) if rng.random() < 0.12 else float(rng.uniform(1.93, 1.99))
    # hair shell
    hairline = float(rng.uniform(-0.688, -0.672))
    if cat in ("old man",) and rng.random() < 0.4:
        hairline = float(rng.uniform(-0.72, -0.7))  # receding
    hair_end = float(rng.uniform(-0.15, 0.1)) if style == "bob" else float(rng.uniform(0.25, 0.75))
    # background and light
    bg = _sample_background(rng)
    az = rng.uniform(-0.9, 0.9)
    el = rng.uniform(0.2, 0.9)
    light = np.array([math.sin(az) * math.cos(el), -math.sin(el), -math.cos(az) * math.cos(el)], np.float32)
    tint = np.array([1.0, 1.0, 1.0], np.float32) + rng.normal(0, 0.02, 3).astype(np.float32)
    return Look(
        category=cat, phenotype=phenotypes[i].astype(np.float32), shape=coeffs[i].astype(np.float32),
        skin=skin, lips=lips.astype(np.float32), iris=iris.astype(np.float32), hair_colour=hair_c, hair_style=style,
        hairline=hairline, hair_end=hair_end, hair_thickness=float(rng.uniform(0.012, 0.03)),
        hair_sweep=float(rng.uniform(1.75, 2.05)), hair_wave=float(rng.uniform(0, 2 * math.pi)), hair_tile=hair_tile,
        top_kind=top_kind, sleeve=sleeve, neckline=neckline, neck_depth=float(rng.uniform(0.05, 0.12)),
        top_hem=top_hem, top=top, bottom_kind=bottom_kind, bottom_length=length, waist=waist, bottom=bottom,
        skirt_length=skirt_len, skirt_flare=float(rng.uniform(0.03, 0.22)), belt=belt, shoes=shoes.astype(np.float32),
        sole=sole, shoe_top=shoe_top, background=bg, light=light, ambient=float(rng.uniform(0.5, 0.68)),
        diffuse=float(rng.uniform(0.35, 0.55)), tint=tint,
    )  # fmt: skip


def _sample_background(rng: np.random.Generator) -> dict[str, object]:
    kind = _pick(rng, ("plain", "gradient", "floor", "texture"), [0.4, 0.25, 0.2, 0.15])
    level = float(rng.uniform(200, 250)) if rng.random() < 0.8 else float(rng.uniform(150, 200))
    hue = rng.random()
    colour = _hsv(hue, rng.uniform(0.0, 0.12), level / 255.0)
    colour2 = _hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.0, 0.2), np.clip(level / 255.0 - rng.uniform(0.05, 0.25),
                                                                                  0, 1))
    out: dict[str, object] = {"kind": kind, "colour": colour, "colour2": colour2, "seed": int(rng.integers(2**31))}
    if kind == "texture":
        out["texture"] = _pick(rng, ("noise", "stripes", "tiles"), [0.5, 0.25, 0.25])
    out["shadow"] = float(rng.uniform(0.1, 0.3))
    return out


# ------------------------------------------------------------------------------------ colouring


def _sample_tile(pattern: Pattern, u: np.ndarray, v: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Bilinear, wrap-around sample of the pattern at surface coordinates ``(u, v)`` (metres); ``px`` the
    pixel footprint (metres) picks the mip level. ``(n, 3)``."""
    if u.size == 0:
        return np.zeros((0, 3), np.float32)
    texel = pattern.size / _TILE
    level = np.clip(np.floor(np.log2(np.maximum(px, 1e-6) / texel) + 0.5), 0, len(pattern.levels) - 1).astype(int)
    lo, hi = int(level.min()), int(level.max())
    if lo == hi:
        return _bilinear_wrap(pattern.levels[lo], u / pattern.size, v / pattern.size)
    out = np.empty((u.size, 3), np.float32)
    for lv in range(lo, hi + 1):
        m = level == lv
        if m.any():
            out[m] = _bilinear_wrap(pattern.levels[lv], u[m] / pattern.size, v[m] / pattern.size)
    return out


def _bilinear_wrap(tile: np.ndarray, fu: np.ndarray, fv: np.ndarray) -> np.ndarray:
    """``tile (n, n, 3)`` at ``(fu, fv)`` in tile units (wrapping), bilinear."""
    n = tile.shape[0]
    flat = tile.reshape(-1, 3)
    x = fu.astype(np.float32) * np.float32(n) - np.float32(0.5)
    y = fv.astype(np.float32) * np.float32(n) - np.float32(0.5)
    x0, y0 = np.floor(x), np.floor(y)
    ax, ay = (x - x0)[:, None], (y - y0)[:, None]
    xi = x0.astype(np.int64) % n
    yi = (y0.astype(np.int64) % n) * n
    x1 = (xi + 1) % n
    y1 = (yi + n) % (n * n)
    top = flat.take(yi + xi, axis=0) * (1 - ax) + flat.take(yi + x1, axis=0) * ax
    bottom = flat.take(y1 + xi, axis=0) * (1 - ax) + flat.take(y1 + x1, axis=0) * ax
    return top * (1 - ay) + bottom * ay


def _ramp(d: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Anti-aliased step: 1 where ``d > 0`` by more than half a pixel ``px``, 0 below, linear between."""
    return np.clip(d / np.maximum(px, 1e-6) + 0.5, 0.0, 1.0)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (np.asarray(b, np.float32) - a) * t[:, None]


def colour_pixels(look: Look, tables: BodyTables, part: np.ndarray, ch: np.ndarray, px: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Unlit colours ``float32 (n, 3)`` and classes ``uint8 (n,)`` of covered pixels.

    ``part (n,)``: mesh part id per pixel (body parts, :data:`SKIRT_PART`, :data:`HAIR_PART`); ``ch (n,
    6)`` the interpolated texture channels; ``px (n,)`` the pixel footprint in template metres.
    """
    n = part.size
    col = np.zeros((n, 3), np.float32)
    cls = np.zeros(n, np.uint8)
    limb, x, y, z = ch[:, 0], ch[:, 1], ch[:, 2], ch[:, 3]
    L = tables.landmarks

    # ---- head: hair cap, face (eyes, brows, lips), neck
    m = part == _P["head"]
    if m.any():
        col[m], cls[m] = _head(look, L, x[m], y[m], z[m], px[m])
    # ---- torso
    m = part == _P["torso"]
    if m.any():
        col[m], cls[m] = _torso(look, L, x[m], y[m], z[m], px[m])
    # ---- arms and hands
    arm_ids = [_P[f"{p}.{s}"] for p in ("upperarm", "lowerarm", "hand") for s in ("L", "R")]
    m = np.isin(part, arm_ids)
    if m.any():
        lm_ = limb[m]
        u = np.arctan2(ch[m, 5], ch[m, 4]) * 0.045
        sleeve = look.sleeve - lm_
        cover = _ramp(sleeve * 0.28, px[m])
        cloth = _sample_tile(look.top, u, lm_ * 0.28, px[m])
        col[m] = _mix(np.broadcast_to(look.skin, (int(m.sum()), 3)).astype(np.float32), cloth, cover)
        cls[m] = np.where(sleeve > 0, _UPPER, _ARMS)
        # a cuff line at the end of long sleeves and a hem on short ones
        if look.sleeve > 0.1:
            cuff = _ramp(0.012 - np.abs(sleeve * 0.28 - 0.01), px[m]) * (sleeve > 0)
            col[m] = _mix(col[m], col[m] * 0.8, cuff)
    # ---- legs and feet
    leg_ids = [_P[f"{p}.{s}"] for p in ("upperleg", "lowerleg") for s in ("L", "R")]
    m = np.isin(part, leg_ids + [_P["foot.L"], _P["foot.R"]])
    if m.any():
        col[m], cls[m] = _legs(look, limb[m], np.arctan2(ch[m, 5], ch[m, 4]), y[m], px[m],
                               np.isin(part[m], [_P["foot.L"], _P["foot.R"]]))
    # ---- garments
    m = part == SKIRT_PART
    if m.any():
        length = 0.5
        c = _sample_tile(look.bottom, x[m], limb[m] * length, px[m])
        hem = _ramp(0.012 - np.abs((1.0 - limb[m]) * length - 0.006), px[m])
        col[m] = _mix(c, c * 0.82, hem)
        cls[m] = _LOWER
    m = part == HAIR_PART
    if m.any():
        col[m] = _hair_colour(look, x[m], limb[m] * 0.3, px[m])
        cls[m] = _HAIR
    return col, cls


def _hair_pattern(rng: np.random.Generator, colour: np.ndarray) -> Pattern:
    """Strands: noise stretched along the hair (tile rows), light and dark streaks of the hair colour."""
    streaks = _smooth_noise(rng, _TILE, 0.8, (1.0, 12.0))
    fine = _smooth_noise(rng, _TILE, 0.5, (1.0, 4.0))
    tile = colour[None, None, :] * (1.0 + 0.22 * streaks[..., None] + 0.08 * fine[..., None])
    return Pattern("hair", _pyramid(np.clip(tile, 0, 255).astype(np.float32)), 0.06, colour.copy())


def _hair_colour(look: Look, u: np.ndarray, v: np.ndarray, px: np.ndarray) -> np.ndarray:
    """Hair: its colour with strands (``u`` across the strands, ``v`` along them, metres)."""
    return _sample_tile(look.hair_tile, u, v, px)


def _head(look: Look, L: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, z: np.ndarray, px: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    n = x.size
    hc = L["head_centre"]
    a = np.abs(np.arctan2(x - hc[0], -(z - hc[2])))  # 0 facing the camera, pi at the back
    col = np.broadcast_to(look.skin, (n, 3)).astype(np.float32).copy()
    cls = np.full(n, _FACE, np.uint8)
    # neck below the jaw line (skin; labelled arms like other non-face skin)
    chin_y = float(L["chin"][1])
    jaw = chin_y - 0.045 * _smooth(a, 0.35, 1.4)
    neck = y > jaw
    cls[neck] = _ARMS
    # cheeks a little warmer, the neck a little darker
    col[neck] *= 0.95
    # features (3-D distances on the template surface)
    for side in ("r_eye", "l_eye"):
        e = L[side]
        d = np.sqrt((x - e[0]) ** 2 + ((y - e[1]) * 1.6) ** 2 + (z - e[2]) ** 2)
        white = _ramp(0.009 - d, px * 0.5)
        col = _mix(col, np.array([222, 218, 212], np.float32), white * 0.6)
        d_iris = np.sqrt((x - e[0]) ** 2 + (y - e[1]) ** 2 + (z - e[2]) ** 2)
        col = _mix(col, look.iris, _ramp(0.0058 - d_iris, px * 0.5))
        col = _mix(col, np.array([10, 10, 12], np.float32), _ramp(0.0028 - d_iris, px * 0.5))
        # brow: a band above the eye
        db = np.maximum(np.abs(y - (e[1] - 0.02 + 0.004 * ((x - e[0]) / 0.02) ** 2)) - 0.0035, 0.0)
        brow = _ramp(0.002 - np.sqrt(db**2 + np.maximum(np.abs(x - e[0]) - 0.02, 0) ** 2), px * 0.5)
        col = _mix(col, look.hair_colour * 0.8 + 20, brow * (z < e[2] + 0.02) * 0.85)
    nose = L["nose"]
    mouth_y = float(nose[1]) + 0.6 * (chin_y - float(nose[1])) * 0.55 + 0.01
    dm = np.sqrt(((y - mouth_y) * 2.2) ** 2 + np.maximum(np.abs(x) - 0.018, 0) ** 2)
    lips = _ramp(0.008 - dm, px * 0.5) * (z < nose[2] + 0.05)
    col = _mix(col, look.lips, lips)
    # hair cap
    if look.hair_style != "bald":
        back_y = {"buzz": -0.575, "short": -0.565, "bob": -0.55, "long": -0.55}[look.hair_style]
        side_y = {"buzz": -0.655, "short": -0.645, "bob": -0.62, "long": -0.62}[look.hair_style]
        front = look.hairline if look.hair_style != "buzz" else look.hairline - 0.006
        line = np.where(a < 1.0, front + (side_y - front) * _smooth(a, 0.55, 1.0),
                        side_y + (back_y - side_y) * _smooth(a, 1.6, 2.4))
        hair = _ramp(line - y, px)
        is_hair = y < line
    else:
        sides = (a > 1.3) & (y > -0.66) & (y < -0.59)
        hair = sides.astype(np.float32) * (look.category == "old man")
        is_hair = hair > 0.5
    hcol = _hair_colour(look, a * 0.09, y, px)
    if look.hair_style == "buzz":
        hcol = _mix(hcol, look.skin, np.full(n, 0.15, np.float32))
    col = _mix(col, hcol, hair)
    cls[is_hair] = _HAIR
    # a top with a turtle neck covers the neck
    if look.neckline == "turtle":
        cover = y > jaw + 0.02
        c = _sample_tile(look.top, np.arctan2(x[cover], -z[cover]) * 0.06, y[cover], px[cover]) if cover.any() else None
        if c is not None:
            col[cover] = c
            cls[cover] = _UPPER
    return col, cls


def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _torso(look: Look, L: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, z: np.ndarray, px: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    n = x.size
    ang = np.arctan2(x, -z)  # 0 = front centre
    u = ang * 0.14
    neck_base = float(L["neck"][1])
    top = _sample_tile(look.top, u, y, px)
    # neckline: skin inside it (front only; the back is a crew neck)
    if look.neckline == "v":
        d_neck = (neck_base + 0.02 + look.neck_depth) - y - 2.2 * np.abs(x)
    elif look.neckline == "scoop":
        d_neck = (neck_base + 0.015 + look.neck_depth * 0.8) - y - 9.0 * x * x
    elif look.neckline == "crew":
        d_neck = (neck_base + 0.022) - y - 4.0 * x * x
    else:  # turtle
        d_neck = np.full(n, -1.0, np.float32)
    d_neck = np.where(z < -0.02, d_neck, np.minimum(d_neck, (neck_base + 0.005) - y))
    # bare torso between the top's hem and the waist band (crop tops)
    near_waist = y > look.waist - 0.02
    bottom_cloth = np.zeros((n, 3), np.float32)
    bottom_cloth[near_waist] = _sample_tile(look.bottom, u[near_waist], y[near_waist], px[near_waist])
    d_top = look.top_hem - y  # > 0: on the top
    d_waist = y - look.waist  # > 0: below the waist band
    col = np.broadcast_to(look.skin, (n, 3)).astype(np.float32).copy()
    cls = np.full(n, _ARMS, np.uint8)
    on_bottom = d_waist > 0
    col = _mix(col, bottom_cloth, _ramp(d_waist, px))
    cls[on_bottom] = _LOWER
    if look.belt is not None:
        band = _ramp(0.018 - np.abs(y - look.waist - 0.02), px)
        col = _mix(col, look.belt, band)
    on_top = (d_top > 0) & (d_neck < 0)
    cover = _ramp(d_top, px) * _ramp(-d_neck, px)
    col = _mix(col, top, cover)
    cls[on_top] = _UPPER
    # hem and collar lines a shade darker
    hem = _ramp(0.008 - np.abs(d_top - 0.004), px) * (d_top > 0)
    col = _mix(col, col * 0.8, hem)
    if look.top.logo is not None:
        col = _logo(look.top, col, u, y, neck_base, px, on_top)
    return col, cls


def _logo(p: Pattern, col: np.ndarray, u: np.ndarray, y: np.ndarray, neck_y: float, px: np.ndarray,
          on_top: np.ndarray) -> np.ndarray:
    """The pattern's logo alpha-blended over ``col`` on the chest (or the back)."""
    logo = p.logo
    assert logo is not None
    h, w = logo.shape[:2]
    width = p.logo_size
    height = width * h / w
    centre_y = neck_y + 0.13 + height * 0.3
    uu = u if not p.logo_back else (np.where(u > 0, u, u + 2 * np.pi * 0.14) - np.pi * 0.14)
    fx = uu / width + 0.5
    fy = (y - centre_y) / height + 0.5
    inside = (fx > -0.02) & (fx < 1.02) & (fy > -0.02) & (fy < 1.02) & on_top
    if not inside.any():
        return col
    # minified like the tiles: a level of the logo's pyramid near the pixel footprint (no aliasing)
    level = int(np.clip(np.round(np.log2(max(float(np.median(px[inside])) / (width / w), 1e-6))), 0, 6))
    img = logo
    for _ in range(level):
        if min(img.shape[:2]) < 4:
            break
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    lh, lw = img.shape[:2]
    x = np.clip(fx[inside] * lw - 0.5, 0, lw - 1)
    yv = np.clip(fy[inside] * lh - 0.5, 0, lh - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(yv).astype(int)
    ax, ay = (x - x0)[:, None], (yv - y0)[:, None]
    x1, y1 = np.minimum(x0 + 1, lw - 1), np.minimum(y0 + 1, lh - 1)
    sample = ((img[y0, x0] * (1 - ax) + img[y0, x1] * ax) * (1 - ay)
              + (img[y1, x0] * (1 - ax) + img[y1, x1] * ax) * ay)
    # the logo's alpha is 0 at its border, so the clamped lookup just outside it adds nothing
    alpha = sample[:, 3]
    out = col.copy()
    out[inside] = col[inside] + (sample[:, :3] - col[inside]) * alpha[:, None]
    return out


def _legs(look: Look, limb: np.ndarray, around: np.ndarray, y: np.ndarray, px: np.ndarray, foot: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    n = limb.size
    u = around * 0.065
    v = limb * 0.4
    col = np.broadcast_to(look.skin, (n, 3)).astype(np.float32).copy()
    cls = np.full(n, _LEGS, np.uint8)
    if not look.has_skirt:
        d = (look.bottom_length - limb) * 0.4
        cloth = _sample_tile(look.bottom, u, v, px)
        if look.bottom_kind == "jeans":  # side seams
            seam = _ramp(0.004 - np.abs(np.abs(around) - math.pi / 2) * 0.065, px)
            cloth = _mix(cloth, cloth * 0.7, seam)
        col = _mix(col, cloth, _ramp(d, px))
        cls[d > 0] = _LOWER
    else:
        # under a skirt: the top of the legs wears the skirt's colour (never bare hips under a dress)
        d = (0.15 - limb) * 0.4
        col = _mix(col, look.bottom.base, _ramp(d, px))
        cls[d > 0] = _LOWER
    d_shoe = np.where(foot, 1.0, (limb - look.shoe_top) * 0.4)
    shoe = np.broadcast_to(look.shoes, (n, 3)).astype(np.float32)
    shoe = np.where(((y > np.float32(0.838)) & foot)[:, None], look.sole, shoe)
    col = _mix(col, shoe, _ramp(d_shoe, px))
    cls[d_shoe > 0] = _SHOES
    return col, cls
