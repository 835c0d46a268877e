"""Benchmark image names: DeepFashion In-shop paths <-> community names, Market-1501 identities.

DeepFashion (community convention, see ``../shared/data/README.md``): the raw In-shop path
``img/MEN/Denim/id_00000080/01_1_front.jpg`` becomes ``fashionMENDenimid0000008001_1front.jpg``:
``"fashion"`` + gender + category (kept whole, underscores included) + the id folder without its
underscore + the file name without its underscores except the first. Names are parsed with one
anchored regular expression, never by splitting at fixed positions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from glocal_cli.errors import InputError

__all__ = [
    "DeepFashionName",
    "deepfashion_name_from_path",
    "deepfashion_path_from_name",
    "identity_of",
    "is_deepfashion_name",
    "is_market_name",
    "market_camera",
    "market_identity",
    "parse_deepfashion_name",
]

_DF_NAME = re.compile(
    r"^fashion(?P<gender>WOMEN|MEN)(?P<category>[A-Za-z][A-Za-z_-]*?)id(?P<item>\d{8})"
    r"(?P<clothes>\d{2})_(?P<view>\d+)(?P<pose>[A-Za-z]+)(?P<ext>\.[A-Za-z0-9]+)$"
)
_DF_ID_DIR = re.compile(r"^id_(?P<item>\d{8})$")
_DF_FILE = re.compile(r"^(?P<clothes>\d{2})_(?P<view>\d+)_(?P<pose>[A-Za-z]+)(?P<ext>\.[A-Za-z0-9]+)$")
_MARKET_NAME = re.compile(
    r"^(?P<person>-?\d+)_c(?P<camera>\d+)s(?P<sequence>\d+)_(?P<frame>\d+)_(?P<box>\d+)(?:\.[A-Za-z0-9]+)+$"
)


@dataclass(frozen=True)
class DeepFashionName:
    """The parts of a DeepFashion In-shop image name.

    For ``img/MEN/Denim/id_00000080/01_1_front.jpg``: gender ``MEN``, category ``Denim``, item
    ``00000080``, clothes ``01``, view ``1``, pose ``front``, ext ``.jpg``.
    """

    gender: str
    category: str
    item: str
    clothes: str
    view: str
    pose: str
    ext: str

    @property
    def benchmark_name(self) -> str:
        """The community name, e.g. ``fashionMENDenimid0000008001_1front.jpg``."""
        return (
            f"fashion{self.gender}{self.category}id{self.item}{self.clothes}_{self.view}{self.pose}{self.ext}"
        )

    @property
    def raw_path(self) -> str:
        """The In-shop path relative to the dataset root, e.g. ``img/MEN/Denim/id_00000080/01_1_front.jpg``."""
        return f"img/{self.gender}/{self.category}/id_{self.item}/{self.clothes}_{self.view}_{self.pose}{self.ext}"

    @property
    def identity(self) -> str:
        """The item folder ``MEN/Denim/id_00000080``: all its photos show the same person and garment."""
        return f"{self.gender}/{self.category}/id_{self.item}"

    @property
    def outfit(self) -> str:
        """Item plus clothes index (``MEN/Denim/id_00000080/01``): the grouping of the community's pairs."""
        return f"{self.identity}/{self.clothes}"


MARKET_JUNK: tuple[str, ...] = ("market/-1", "market/0000")
"""Identities that are not one person (junk boxes, distractors): never paired (``market_identity``'s
values)."""


def parse_deepfashion_name(name: str) -> DeepFashionName:
    """Split a community DeepFashion name into its parts; :class:`InputError` if it is not one."""
    m = _DF_NAME.match(PurePosixPath(name).name)
    if m is None:
        raise InputError(
            f"{name!r} is not a DeepFashion benchmark name (like 'fashionMENDenimid0000008001_1front.jpg')"
        )
    return DeepFashionName(**m.groupdict())


def is_deepfashion_name(name: str) -> bool:
    """Whether ``name`` follows the community DeepFashion naming."""
    return _DF_NAME.match(PurePosixPath(name).name) is not None


def deepfashion_name_from_path(path: str) -> str:
    """Raw In-shop path (``[.../]img/MEN/Denim/id_00000080/01_1_front.jpg``) -> benchmark name.

    Only the last four path parts are used (gender / category / id folder / file), so absolute
    paths and paths without the ``img/`` prefix work. Backslashes are accepted as separators.
    """
    parts = PurePosixPath(str(path).replace("\\", "/")).parts
    if len(parts) < 4:
        raise InputError(f"{path!r}: expected '<gender>/<category>/id_<8 digits>/<nn>_<view>_<pose>.jpg'")
    gender, category, id_dir, file = parts[-4:]
    m_id, m_file = _DF_ID_DIR.match(id_dir), _DF_FILE.match(file)
    if gender not in ("MEN", "WOMEN") or m_id is None or m_file is None or not category:
        raise InputError(
            f"{path!r}: not a DeepFashion In-shop image path (like 'img/MEN/Denim/id_00000080/01_1_front.jpg')"
        )
    parsed = DeepFashionName(gender=gender, category=category, item=m_id["item"], **m_file.groupdict())
    name = parsed.benchmark_name
    if parse_deepfashion_name(name) != parsed:
        raise InputError(f"{path!r}: the category {category!r} makes the benchmark name ambiguous")
    return name


def deepfashion_path_from_name(name: str, prefix: str = "img") -> str:
    """Benchmark name -> raw In-shop path, ``prefix/MEN/Denim/id_00000080/01_1_front.jpg`` (``prefix`` may be '')."""
    relative = parse_deepfashion_name(name).raw_path[len("img/") :]
    return f"{prefix.rstrip('/')}/{relative}" if prefix else relative


def is_market_name(name: str) -> bool:
    """Whether ``name`` follows Market-1501's ``PPPP_cCsS_FFFFFF_BB.jpg`` naming.

    A few real Market-1501 files carry a doubled suffix (``1488_c5s3_071862_01.jpg.jpg``); they count.
    """
    return _MARKET_NAME.match(PurePosixPath(name).name) is not None


def market_identity(name: str) -> str:
    """Person id of a Market-1501 name: the prefix before the first ``_`` (``'0188'``; ``'-1'`` for junk)."""
    base = PurePosixPath(name).name
    head, sep, _ = base.partition("_")
    if not sep or not head:
        raise InputError(f"{name!r} is not a Market-1501 name (like '0188_c2s2_149727_03.jpg')")
    return head


def market_camera(name: str) -> int:
    """Camera index (1..6) of a Market-1501 name."""
    m = _MARKET_NAME.match(PurePosixPath(name).name)
    if m is None:
        raise InputError(f"{name!r} is not a Market-1501 name (like '0188_c2s2_149727_03.jpg')")
    return int(m["camera"])


_SYNTH_NAME = re.compile(r"^synth_(id\d+)_\d+\.\w+$")


def identity_of(name: str) -> str:
    """Identity key for pair generation: photos with the same key show the same person and outfit.

    DeepFashion names give their outfit key ``MEN/Denim/id_00000080/01`` (item folder and clothes
    index: every one of the community's 8,570 test pairs shares it); Market-1501 names give
    ``market/<person id>``; SynthPeople names (``synth_id00012_03.png``) give ``synth/id00012``.
    Other names raise :class:`InputError`.
    """
    synth = _SYNTH_NAME.match(name)
    if synth:
        return f"synth/{synth.group(1)}"
    if is_deepfashion_name(name):
        return parse_deepfashion_name(name).outfit
    if is_market_name(name):
        return f"market/{market_identity(name)}"
    raise InputError(
        f"{name!r}: neither a DeepFashion nor a Market-1501 benchmark name; cannot tell its identity"
    )
