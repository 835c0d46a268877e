"""Body parts of a SynthPeople figure and the one primitive they are all made of.

Every body part is a *generalised cylinder* around an axis from ``A`` to ``B`` in image pixels:

* ``u`` runs along the axis (``0`` at ``A``, ``1`` at ``B``; capsule end caps extend it a little
  beyond ``[0, 1]``),
* ``s`` runs across it (``-1 .. 1``, positive towards the axis normal ``n = (t_y, -t_x)``, which
  is image-right for an axis that points down),
* the half-width ``w(u)`` follows the part's *profile* (a linear taper, or an ellipse).

The surface point seen at ``(u, s)`` is ``(u, theta)`` with ``theta = yaw + asin(s)``: the
cylinder turns its ``yaw`` half towards the camera (``theta = 0`` is the front centre line of the
body, ``+pi/2`` the person's left side, ``pi`` the back). ``(part, u, theta)`` is therefore the
same physical point in every pose and view, and :func:`surface_to_pixel` maps it back into any
image whose frames are known. Both directions are exact inverses of each other and fully
vectorised.

The per-image geometry is a ``float32 (NUM_PARTS, FRAME_COLUMNS)`` array of *frames*
(:data:`FRAME_COLUMNS`) indexed by part id; row 0 (background) is unused.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "ATTACHED_PARTS",
    "FRAME_COLUMNS",
    "NUM_PARTS",
    "PART_IDS",
    "PART_NAMES",
    "PROFILE_CAPSULE",
    "PROFILE_ELLIPSE",
    "PROFILE_TRAPEZOID",
    "PartSamples",
    "pixel_to_surface",
    "profile_width",
    "surface_to_pixel",
]

PART_NAMES: tuple[str, ...] = (
    "background",
    "head",
    "neck",
    "torso",
    "r_upper_arm",
    "r_lower_arm",
    "r_hand",
    "l_upper_arm",
    "l_lower_arm",
    "l_hand",
    "r_upper_leg",
    "r_lower_leg",
    "r_foot",
    "l_upper_leg",
    "l_lower_leg",
    "l_foot",
    "hair",
    "skirt",
)
"""Part ids of the surface maps (``PART_NAMES[id]``); ``hair`` is long hair hanging behind the
head, ``skirt`` exists only for identities that wear one."""

NUM_PARTS = len(PART_NAMES)
"""Number of part ids including background (18)."""

PART_IDS: dict[str, int] = {name: i for i, name in enumerate(PART_NAMES)}
"""Part name -> id."""

PROFILE_CAPSULE = 0
"""Linear taper from ``wa`` to ``wb`` with round end caps of radius ``wa`` / ``wb`` (limbs, neck)."""
PROFILE_TRAPEZOID = 1
"""Linear taper with flat ends (torso, skirt, long hair)."""
PROFILE_ELLIPSE = 2
"""Ellipse with semi-axes ``wa`` (across) and ``|B - A| / 2`` (along): the head."""

FRAME_COLUMNS: tuple[str, ...] = ("ax", "ay", "bx", "by", "wa", "wb", "profile", "present")
"""Columns of a frames array: axis ends, half-widths, profile code, 1 when the part is drawn."""

ATTACHED_PARTS: dict[str, tuple[str, ...]] = {
    "nose": ("head",),
    "neck": ("neck", "torso", "head", "hair", "r_upper_arm", "l_upper_arm"),
    "r_shoulder": ("torso", "r_upper_arm"),
    "r_elbow": ("r_upper_arm", "r_lower_arm"),
    "r_wrist": ("r_lower_arm", "r_hand"),
    "l_shoulder": ("torso", "l_upper_arm"),
    "l_elbow": ("l_upper_arm", "l_lower_arm"),
    "l_wrist": ("l_lower_arm", "l_hand"),
    "r_hip": ("torso", "r_upper_leg", "skirt"),
    "r_knee": ("r_upper_leg", "r_lower_leg", "skirt"),
    "r_ankle": ("r_lower_leg", "r_foot"),
    "l_hip": ("torso", "l_upper_leg", "skirt"),
    "l_knee": ("l_upper_leg", "l_lower_leg", "skirt"),
    "l_ankle": ("l_lower_leg", "l_foot"),
    "r_eye": ("head",),
    "l_eye": ("head",),
    "r_ear": ("head",),
    "l_ear": ("head",),
}
"""For each keypoint, the parts on which it lies: a keypoint is visible when the part drawn at its
pixel is one of these (otherwise something else covers it)."""


def profile_width(profile: np.ndarray, wa: np.ndarray, wb: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Half-width ``w(u)`` in pixels for each sample (``u`` outside ``[0, 1]`` is clamped)."""
    uc = np.clip(u, 0.0, 1.0)
    linear = wa + (wb - wa) * uc
    ey = 2.0 * uc - 1.0
    ellipse = wa * np.sqrt(np.maximum(1.0 - ey * ey, 0.0))
    return np.where(profile == PROFILE_ELLIPSE, ellipse, linear)


class PartSamples:
    """The pixels of one part's bounding box with their surface coordinates and coverage.

    Arrays over the bounding box (rows ``y0 .. y0 + bh``, columns ``x0 .. x0 + bw``): ``u``;
    ``lat`` (signed distance from the axis, pixels) and ``w`` (half-width there), whose ratio is
    ``s`` (:meth:`s_at` for some pixels, :attr:`s` for all); ``sd`` (signed distance to the part
    outline in pixels, positive inside).
    """

    __slots__ = ("x0", "y0", "bw", "bh", "u", "lat", "w", "sd")

    def __init__(
        self, x0: int, y0: int, bw: int, bh: int, u: np.ndarray, lat: np.ndarray, w: np.ndarray, sd: np.ndarray
    ):
        self.x0, self.y0, self.bw, self.bh = x0, y0, bw, bh
        self.u, self.lat, self.w, self.sd = u, lat, w, sd

    def s_at(self, flat_index: np.ndarray) -> np.ndarray:
        """``s`` (clipped to ``[-1, 1]``) at flat bounding-box indices."""
        s = self.lat.reshape(-1).take(flat_index) / self.w.reshape(-1).take(flat_index)
        return np.minimum(np.maximum(s, np.float32(-1.0), out=s), np.float32(1.0), out=s)

    @property
    def s(self) -> np.ndarray:
        """``s`` over the whole bounding box."""
        return self.s_at(np.arange(self.bw * self.bh)).reshape(self.bh, self.bw)


def pixel_to_surface(frame: np.ndarray, height: int, width: int, margin: float = 1.5) -> PartSamples | None:
    """Rasterise one part: ``(u, s)`` and signed distance for every pixel of its bounding box.

    ``frame`` is one row of a frames array. Pixel ``(r, c)`` sits at ``x = c, y = r``. Returns
    ``None`` when the part's bounding box misses the image.
    """
    ax, ay, bx, by, wa, wb, profile, _present = frame.tolist()
    profile = int(profile)
    reach = (wa if profile == PROFILE_ELLIPSE else max(wa, wb)) + margin
    x0 = max(math.floor(min(ax, bx) - reach), 0)
    x1 = min(math.ceil(max(ax, bx) + reach) + 1, width)
    y0 = max(math.floor(min(ay, by) - reach), 0)
    y1 = min(math.ceil(max(ay, by) + reach) + 1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    dx, dy = bx - ax, by - ay
    length = max(math.hypot(dx, dy), 1e-3)
    tx, ty = dx / length, dy / length
    f32 = np.float32
    xs = np.arange(x0, x1, dtype=np.float32) - f32(ax)
    ys = (np.arange(y0, y1, dtype=np.float32) - f32(ay))[:, None]
    along = ys * f32(ty) + xs * f32(tx)
    lat = ys * f32(-tx) + xs * f32(ty)
    u = along * f32(1.0 / length)
    if profile == PROFILE_ELLIPSE:
        half = f32(0.5 * length)
        ex = lat * f32(1.0 / wa)
        ey = u * f32(2.0) - f32(1.0)
        ey2 = ey * ey
        sd = (f32(1.0) - np.sqrt(ex * ex + ey2)) * f32(min(wa, half))
        w = f32(wa) * np.sqrt(np.maximum(f32(1.0) - ey2, f32(1e-6)))
    else:
        uc = np.minimum(np.maximum(u, f32(0.0)), f32(1.0))
        w = uc * f32(wb - wa) + f32(max(wa, 1e-3))
        if profile == PROFILE_TRAPEZOID:
            sd = np.minimum(w - np.abs(lat), np.minimum(along, f32(length) - along))
        else:
            # Distance to the axis segment (round caps of radius wa / wb at the ends).
            beyond = along - uc * f32(length)
            sd = w - np.sqrt(beyond * beyond + lat * lat)
    return PartSamples(x0, y0, x1 - x0, y1 - y0, u, lat, w, sd)


def surface_to_pixel(
    frames: np.ndarray, yaw: float, part: np.ndarray, u: np.ndarray, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project surface points ``(part, u, theta)`` into the image whose ``frames`` and ``yaw`` are given.

    Returns ``(x, y, facing)``: pixel coordinates (float) and whether the point is on the half of
    its part turned towards the camera (``cos(theta - yaw) > 0``) and the part is present. Points
    that do not face the camera get the coordinates of the silhouette edge they would be behind.
    """
    f = frames[part]
    ax, ay, bx, by = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
    wa, wb, profile, present = f[:, 4], f[:, 5], f[:, 6], f[:, 7]
    delta = theta - np.float32(yaw)
    s = np.sin(delta)
    facing = (np.cos(delta) > 0.0) & (present > 0.5)
    dx, dy = bx - ax, by - ay
    length = np.maximum(np.hypot(dx, dy), 1e-3)
    tx, ty = dx / length, dy / length
    w = profile_width(profile, wa, wb, u)
    along = u * length
    x = ax + along * tx + s * w * ty
    y = ay + along * ty - s * w * tx
    return x.astype(np.float32), y.astype(np.float32), facing
