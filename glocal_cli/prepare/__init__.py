"""``glocal prepare-data deepfashion|market|folder|ccp``: raw data -> the prepared dataset layout.

One engine (:mod:`.engine`: workers, journal, frame fitting, parsing import, outputs) and one
module per kind (:mod:`.deepfashion`, :mod:`.market`, :mod:`.folder`); :mod:`.pairs` builds
identity-aware splits and pairs; :mod:`.report` the validation report; :mod:`.body3d` fits the 3D
body to every image (``--correspondence body3d``, ``--parsing body3d``).
"""

from __future__ import annotations

from glocal_cli.prepare.body3d import Body3dOptions, Body3dResult, add_body3d
from glocal_cli.prepare.ccp import prepare_ccp
from glocal_cli.prepare.deepfashion import prepare_deepfashion
from glocal_cli.prepare.engine import PrepareOptions, PrepareResult, parse_size
from glocal_cli.prepare.folder import prepare_folder
from glocal_cli.prepare.market import prepare_market
from glocal_cli.prepare.pairs import generate_pairs, split_by_identity
from glocal_cli.prepare.report import ValidationReport

__all__ = [
    "Body3dOptions",
    "Body3dResult",
    "PrepareOptions",
    "PrepareResult",
    "ValidationReport",
    "add_body3d",
    "generate_pairs",
    "parse_size",
    "prepare_ccp",
    "prepare_deepfashion",
    "prepare_folder",
    "prepare_market",
    "split_by_identity",
]
