"""What one SynthPeople identity looks like: skin, hair, clothes, textures, build, background.

An :class:`Appearance` is drawn once per identity (:func:`sample_appearance`) and shared by all of
its poses. Every texture is a function of *body-surface* coordinates (see ``geometry``), so it
moves with the body; :func:`colour_part` evaluates colours and semantic classes for the pixels
of one part.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from glocal_cli.data.geometry import PART_IDS

__all__ = [
    "HAIR_STYLES",
    "LOWER_KINDS",
    "NECKLINES",
    "PART_SIZE",
    "SLEEVES",
    "TEXTURES",
    "Appearance",
    "colour_part",
    "sample_appearance",
]

TEXTURES: tuple[str, ...] = ("plain", "stripes", "checks", "dots", "logo")
"""Upper-clothes textures."""
SLEEVES: tuple[str, ...] = ("none", "short", "long")
"""Sleeve lengths."""
LOWER_KINDS: tuple[str, ...] = ("pants", "shorts", "skirt")
"""Lower-clothes kinds."""
HAIR_STYLES: tuple[str, ...] = ("short", "medium", "long")
"""Hair styles (``long`` adds the ``hair`` part hanging behind the head)."""
NECKLINES: tuple[str, ...] = ("crew", "round", "v")
"""Necklines of the upper clothes (``round`` and ``v`` show skin at the top of the torso)."""

# Classes (see glocal_cli.data.parsing.CLASS_NAMES).
_BG, _HAIR, _UPPER, _LOWER, _SHOES, _FACE, _ARMS, _LEGS = range(8)

PART_SIZE: dict[str, tuple[float, float]] = {
    "head": (0.55, 0.19),
    "neck": (0.22, 0.08),
    "torso": (1.0, 0.30),
    "r_upper_arm": (0.55, 0.07),
    "r_lower_arm": (0.50, 0.055),
    "r_hand": (0.17, 0.045),
    "l_upper_arm": (0.55, 0.07),
    "l_lower_arm": (0.50, 0.055),
    "l_hand": (0.17, 0.045),
    "r_upper_leg": (0.80, 0.10),
    "r_lower_leg": (0.80, 0.07),
    "r_foot": (0.22, 0.05),
    "l_upper_leg": (0.80, 0.10),
    "l_lower_leg": (0.80, 0.07),
    "l_foot": (0.22, 0.05),
    "hair": (0.70, 0.20),
    "skirt": (0.70, 0.32),
}
"""Nominal ``(length, radius)`` of each part in torso lengths: textures are laid out in these
physical units (``u * length`` along, ``theta * radius`` around), identical in every pose."""

_SKIN_TONES = np.array(
    [
        [255, 224, 196],
        [241, 194, 167],
        [224, 172, 138],
        [198, 134, 96],
        [161, 102, 70],
        [120, 75, 50],
        [92, 58, 40],
    ],
    np.float32,
)
_HAIR_COLOURS = np.array(
    [[28, 24, 22], [62, 40, 28], [105, 70, 42], [196, 160, 96], [146, 66, 34], [150, 150, 150]], np.float32
)


@dataclass(frozen=True)
class Appearance:
    """The look of one identity. Colours are RGB ``float32 (3,)`` in 0..255."""

    skin: np.ndarray
    hair_colour: np.ndarray
    hair_style: str
    upper_colour: np.ndarray
    upper_colour2: np.ndarray
    logo_colour: np.ndarray
    texture: str
    texture_period: float
    sleeve: str
    neckline: str
    lower_kind: str
    lower_colour: np.ndarray
    belt: bool
    shoe_colour: np.ndarray
    background: np.ndarray
    build: float
    head_scale: float
    skirt_length: float
    skirt_flare: float
    hair_length: float

    def describe(self) -> str:
        """A short human description (``long-hair, striped short-sleeve top, skirt``)."""
        return f"{self.hair_style} hair, {self.texture} {self.sleeve}-sleeve top, {self.lower_kind}"


def _clothes_colour(rng: np.random.Generator) -> np.ndarray:
    h = rng.random()
    s = rng.uniform(0.15, 0.9)
    v = rng.uniform(0.2, 0.85)
    return np.array(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255.0


def _contrasting(rng: np.random.Generator, base: np.ndarray, min_distance: float = 90.0) -> np.ndarray:
    best = _clothes_colour(rng)
    for _ in range(8):
        if float(np.abs(best - base).sum()) >= min_distance:
            break
        best = _clothes_colour(rng)
    return best


def _pick(rng: np.random.Generator, options: tuple[str, ...], p: tuple[float, ...]) -> str:
    return options[int(rng.choice(len(options), p=np.asarray(p) / np.sum(p)))]


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw an identity's appearance (deterministic given the generator state)."""
    tone = _SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))]
    skin = np.clip(tone + rng.normal(0.0, 6.0, 3), 0, 255).astype(np.float32)
    hair = np.clip(_HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))] + rng.normal(0.0, 6.0, 3), 0, 255)
    upper = _clothes_colour(rng)
    upper2 = _contrasting(rng, upper)
    logo = _contrasting(rng, upper)
    lower = _contrasting(rng, upper, 60.0)
    shoes = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.6), rng.uniform(0.08, 0.6)), np.float32)
    bg_level = rng.uniform(218.0, 246.0)
    background = np.clip(bg_level + rng.normal(0.0, 4.0, 3), 0, 255).astype(np.float32)
    return Appearance(
        skin=skin,
        hair_colour=hair.astype(np.float32),
        hair_style=_pick(rng, HAIR_STYLES, (0.45, 0.25, 0.30)),
        upper_colour=upper,
        upper_colour2=upper2,
        logo_colour=logo,
        texture=_pick(rng, TEXTURES, (0.2, 0.25, 0.15, 0.15, 0.25)),
        texture_period=float(rng.uniform(0.08, 0.16)),
        sleeve=_pick(rng, SLEEVES, (0.25, 0.45, 0.30)),
        neckline=_pick(rng, NECKLINES, (0.5, 0.3, 0.2)),
        lower_kind=_pick(rng, LOWER_KINDS, (0.5, 0.2, 0.3)),
        lower_colour=lower,
        belt=bool(rng.random() < 0.3),
        shoe_colour=shoes * 255.0,
        background=background,
        build=float(rng.uniform(0.9, 1.15)),
        head_scale=float(rng.uniform(0.93, 1.07)),
        skirt_length=float(rng.uniform(0.55, 1.05)),
        skirt_flare=float(rng.uniform(1.15, 1.6)),
        hair_length=float(rng.uniform(0.55, 0.95)),
    )


# --------------------------------------------------------------------------------------- colouring


def _ramp(distance: np.ndarray, px: float) -> np.ndarray:
    """Anti-aliased step: 1 inside (``distance > 0``), 0 outside, linear over one pixel ``px``."""
    return np.clip(distance * np.float32(1.0 / px) + 0.5, 0.0, 1.0)


def _wrap(theta: np.ndarray) -> np.ndarray:
    """Angle in ``(-pi, pi]``."""
    return np.float32(np.pi) - np.mod(np.float32(np.pi) - theta, np.float32(2 * np.pi))


def _band(x: np.ndarray, period: float, px: float) -> np.ndarray:
    """Stripes of half the period, anti-aliased: ``1`` on a stripe, ``0`` between stripes."""
    tri = np.abs(np.mod(x * np.float32(1.0 / period), 1.0) - 0.5)
    return _ramp((0.25 - tri) * np.float32(period), px)


def _planar(c: np.ndarray) -> np.ndarray:
    """A colour ``(3,)`` as a ``(3, 1)`` column; per-sample colours ``(3, n)`` unchanged."""
    return c[:, None] if c.ndim == 1 else c


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-sample blend ``a + (b - a) * t`` -> ``(3, n)``; ``a``/``b`` are ``(3,)`` or ``(3, n)``.

    Colours are channel-planar (``(3, n)``): numpy's broadcasting is several times faster with
    the long axis last.
    """
    a, b = _planar(a), _planar(b)
    return a + (b - a) * t[None, :]


def _solid(c: np.ndarray, n: int) -> np.ndarray:
    """``(3, n)`` copies of one colour."""
    return np.repeat(c.astype(np.float32)[:, None], n, axis=1)


def _upper_texture(app: Appearance, part: str, u: np.ndarray, phi: np.ndarray, px: float) -> np.ndarray:
    """Upper-clothes colour ``(3, n)`` from surface coordinates (torso and sleeves)."""
    length, radius = PART_SIZE[part]
    ux = u * np.float32(length)
    c = phi * np.float32(radius)
    p = app.texture_period
    if app.texture == "stripes":
        return _mix(app.upper_colour, app.upper_colour2, _band(ux, p, px))
    if app.texture == "checks":
        n_around = max(1, round(2 * np.pi * radius / p))
        pc = 2 * np.pi * radius / n_around
        a = _band(ux, p, px)
        b = _band(c, pc, px)
        return _mix(app.upper_colour, app.upper_colour2, a + b - 2 * a * b)
    if app.texture == "dots":
        n_around = max(1, round(2 * np.pi * radius / p))
        pc = 2 * np.pi * radius / n_around
        du = (np.mod(ux / np.float32(p), 1.0) - 0.5) * np.float32(p)
        dc = (np.mod(c / np.float32(pc), 1.0) - 0.5) * np.float32(pc)
        dist = np.sqrt(du * du + dc * dc)
        return _mix(app.upper_colour, app.upper_colour2, _ramp(np.float32(0.22 * p) - dist, px))
    if app.texture == "logo" and part == "torso":
        # A patch on the chest (front only): a rectangle with a disc in it.
        du = ux - np.float32(0.36)
        rect = np.minimum(np.float32(0.11) - np.abs(du), np.float32(0.13) - np.abs(c))
        inner = np.float32(0.06) - np.sqrt(du * du + c * c)
        out = _mix(app.upper_colour, app.logo_colour, _ramp(rect, px))
        return _mix(out, app.upper_colour2, _ramp(inner, px))
    return _solid(app.upper_colour, u.size)


def colour_part(
    app: Appearance, part_id: int, u: np.ndarray, s: np.ndarray, theta: np.ndarray, torso_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Colours ``float32 (3, n)`` (channel-planar, unshaded) and classes ``uint8 (n,)`` of samples of one part.

    ``theta`` is the absolute surface angle; ``torso_px`` is one pixel in torso lengths (for
    anti-aliasing textures); ``s`` is unused by the texture itself (shading is applied by the
    renderer) but kept for symmetry of the call.
    """
    del s
    name = _PART_BY_ID[part_id]
    n = u.size
    px = float(torso_px)
    phi = _wrap(theta)
    cls = np.empty(n, np.uint8)
    length, radius = PART_SIZE[name]

    if name == "head":
        a = np.abs(phi)
        if app.hair_style == "short":
            hairline = np.where(a < 0.9, 0.27, np.where(a < 1.5, 0.42, 1.2))
        else:
            hairline = np.where(a < 0.75, 0.25, np.where(a < 1.25, 0.5, 1.2))
        d_face = (u - hairline.astype(np.float32)) * np.float32(length)
        face = d_face > 0
        cls[:] = np.where(face, _FACE, _HAIR)
        col = _mix(app.hair_colour, app.skin, _ramp(d_face, px))
        # Eyes, eyebrows and mouth (features are part of the face class).
        du_eye = (u - 0.5) * np.float32(length)
        for side in (-1.0, 1.0):
            dc = (phi - np.float32(0.33 * side)) * np.float32(radius)
            eye = _ramp(np.float32(0.022) - np.sqrt(du_eye * du_eye + dc * dc), px)
            col = _mix(col, np.array([35, 30, 30], np.float32), eye * face)
            dbrow = (u - 0.41) * np.float32(length)
            brow = _ramp(
                np.minimum(np.float32(0.008) - np.abs(dbrow), np.float32(0.04) - np.abs(dc)),
                px,
            )
            col = _mix(col, app.hair_colour, brow * face)
        du_m = (u - 0.78) * np.float32(length)
        mouth = _ramp(np.minimum(np.float32(0.011) - np.abs(du_m), np.float32(0.045) - np.abs(phi * radius)), px)
        lips = app.skin * np.float32(0.7) + np.array([60, 10, 10], np.float32)
        col = _mix(col, lips, mouth * face)
        return col.astype(np.float32, copy=False), cls

    if name == "hair":
        cls[:] = _HAIR
        return _solid(app.hair_colour, n), cls

    if name == "neck":
        cls[:] = _ARMS
        return _solid(app.skin, n), cls

    if name == "torso":
        waist = np.float32(0.84)
        d_upper = (waist - u) * np.float32(length)
        col = _mix(app.lower_colour, _upper_texture(app, name, u, phi, px), _ramp(d_upper, px))
        upper = d_upper > 0
        cls[:] = np.where(upper, _UPPER, _LOWER)
        if app.belt:
            d_belt = np.float32(0.035) - np.abs((u - np.float32(0.87)) * np.float32(length))
            col = _mix(col, np.array([40, 30, 25], np.float32), _ramp(d_belt, px) * (~upper))
        if app.neckline != "crew":
            du = u * np.float32(length)
            dc = np.abs(phi) * np.float32(radius)
            if app.neckline == "round":
                d_skin = np.float32(1.0) - np.sqrt((du / np.float32(0.12)) ** 2 + (dc / np.float32(0.11)) ** 2)
                d_skin = d_skin * np.float32(0.1)
            else:
                d_skin = (np.float32(0.2) - du - dc * np.float32(1.6)) * np.float32(0.5)
            skin = d_skin > 0
            cls[skin] = _ARMS
            col = _mix(col, app.skin, _ramp(d_skin, px))
        return col.astype(np.float32, copy=False), cls

    if name.endswith("upper_arm") or name.endswith("lower_arm"):
        if name.endswith("upper_arm"):
            cover = {"none": -1.0, "short": 0.45, "long": 2.0}[app.sleeve]
        else:
            cover = {"none": -1.0, "short": -1.0, "long": 0.93}[app.sleeve]
        d_sleeve = (np.float32(cover) - u) * np.float32(length)
        sleeve = d_sleeve > 0
        cls[:] = np.where(sleeve, _UPPER, _ARMS)
        if cover < 0:
            return _solid(app.skin, n), cls
        return _mix(app.skin, _upper_texture(app, name, u, phi, px), _ramp(d_sleeve, px)).astype(np.float32, copy=False), cls

    if name.endswith("hand"):
        cls[:] = _ARMS
        return _solid(app.skin, n), cls

    if name.endswith("upper_leg") or name.endswith("lower_leg"):
        if app.lower_kind == "pants":
            cover = 2.0
        elif app.lower_kind == "shorts":
            cover = 0.42 if name.endswith("upper_leg") else -1.0
        else:
            cover = -1.0
        d_cloth = (np.float32(cover) - u) * np.float32(length)
        cloth = d_cloth > 0
        cls[:] = np.where(cloth, _LOWER, _LEGS)
        col = _mix(app.skin, app.lower_colour, _ramp(d_cloth, px))
        if app.lower_kind == "pants":
            seam = _ramp(np.float32(0.006) - np.abs(np.abs(phi) - np.float32(np.pi / 2)) * np.float32(radius), px)
            col = _mix(col, app.lower_colour * np.float32(0.6), seam * cloth)
        return col.astype(np.float32, copy=False), cls

    if name.endswith("foot"):
        cls[:] = _SHOES
        return _solid(app.shoe_colour, n), cls

    # skirt
    cls[:] = _LOWER
    hem = _ramp(np.float32(0.02) - np.abs((u - np.float32(0.93)) * np.float32(length)), px)
    col = _mix(app.lower_colour, app.lower_colour * np.float32(0.7), hem)
    return col.astype(np.float32, copy=False), cls


_PART_BY_ID = {i: name for name, i in PART_IDS.items()}
