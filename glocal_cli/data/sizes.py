"""Model frame sizes: ``"256x176"`` -> ``(height, width)``.

A light module (it imports only :mod:`glocal_cli.errors`) shared by ``prepare-data`` (every kind),
the SynthPeople renderer and the benchmarks, so that parsing a ``--size`` never pulls in numpy,
PIL or torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from glocal_cli.errors import ConfigError

__all__ = ["parse_size"]


def parse_size(size: str | Sequence[int]) -> tuple[int, int]:
    """``"256x176"`` (case and spaces ignored) or ``(256, 176)`` -> ``(height, width)``.

    Height and width must be positive multiples of 4; anything else raises :class:`ConfigError`
    with a one-line message naming ``--size``.
    """
    if isinstance(size, str):
        parts = size.lower().replace(" ", "").split("x")
        try:
            h, w = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"--size {size!r}: expected HEIGHTxWIDTH, e.g. 256x176") from None
    else:
        try:
            h, w = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ConfigError(f"size {size!r}: expected (height, width)") from None
    if h <= 0 or w <= 0 or h % 4 or w % 4:
        raise ConfigError(f"--size {h}x{w}: height and width must be positive multiples of 4")
    return h, w
