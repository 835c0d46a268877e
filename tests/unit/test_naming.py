"""DeepFashion raw path <-> benchmark name, identities for pairs, Market-1501 names."""

from __future__ import annotations

import pytest

from glocal_cli.data.naming import (
    deepfashion_name_from_path,
    deepfashion_path_from_name,
    identity_of,
    is_deepfashion_name,
    is_market_name,
    market_camera,
    market_identity,
    parse_deepfashion_name,
)
from glocal_cli.errors import InputError


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("img/MEN/Denim/id_00000080/01_1_front.jpg", "fashionMENDenimid0000008001_1front.jpg"),
        (
            "img/WOMEN/Blouses_Shirts/id_00003372/03_3_back.jpg",
            "fashionWOMENBlouses_Shirtsid0000337203_3back.jpg",
        ),
        (
            "img/MEN/Tees_Tanks/id_00007301/04_7_additional.jpg",
            "fashionMENTees_Tanksid0000730104_7additional.jpg",
        ),
    ],
)
def test_readme_example_both_ways(raw, name):
    assert deepfashion_name_from_path(raw) == name
    assert deepfashion_path_from_name(name) == raw
    assert deepfashion_name_from_path("/data/In-shop/" + raw) == name
    assert deepfashion_name_from_path(raw.replace("/", "\\")) == name
    assert deepfashion_path_from_name(name, prefix="") == raw[len("img/") :]
    assert deepfashion_path_from_name(name, prefix="/x/img/") == "/x/" + raw


def test_parts_and_identity():
    parts = parse_deepfashion_name("fashionMENDenimid0000008001_1front.jpg")
    assert (parts.gender, parts.category, parts.item, parts.clothes, parts.view, parts.pose) == (
        "MEN",
        "Denim",
        "00000080",
        "01",
        "1",
        "front",
    )
    assert parts.identity == "MEN/Denim/id_00000080"
    assert identity_of("fashionMENDenimid0000008001_1front.jpg") == "MEN/Denim/id_00000080/01"
    assert identity_of("fashionMENDenimid0000008001_1front.jpg") == identity_of(
        "fashionMENDenimid0000008001_3back.jpg"
    )
    assert identity_of("fashionMENDenimid0000008001_1front.jpg") != identity_of(
        "fashionMENDenimid0000008002_1front.jpg"
    )
    assert identity_of("0188_c2s2_149727_03.jpg") == "market/0188"
    # WOMEN is not read as MEN + a category starting with "WO"
    assert parse_deepfashion_name("fashionWOMENDressesid0000080304_4full.jpg").gender == "WOMEN"


def test_bad_names_and_paths():
    for bad in (
        "fashionMENDenim01_1front.jpg",
        "MENDenimid0000008001_1front.jpg",
        "fashionKIDSid0000008001_1x.jpg",
    ):
        assert not is_deepfashion_name(bad)
        with pytest.raises(InputError, match="not a DeepFashion benchmark name"):
            deepfashion_path_from_name(bad)
    for bad in ("img/MEN/Denim/id_80/01_1_front.jpg", "img/KIDS/Denim/id_00000080/01_1_front.jpg", "a/b.jpg"):
        with pytest.raises(InputError):
            deepfashion_name_from_path(bad)
    with pytest.raises(InputError, match="cannot tell its identity"):
        identity_of("holiday.jpg")


def test_market_names():
    assert market_identity("0188_c2s2_149727_03.jpg") == "0188"
    assert market_identity("-1_c1s1_000401_03.jpg") == "-1"
    assert market_identity("images/0002_c1s1_000451_03.jpg") == "0002"
    assert market_camera("0188_c2s2_149727_03.jpg") == 2
    assert is_market_name("0000_c1s3_022226_03.jpg") and not is_market_name("fashionMEN.jpg")
    assert is_market_name("1488_c5s3_071862_01.jpg.jpg")  # 18 real names carry a doubled suffix
    with pytest.raises(InputError, match="not a Market-1501 name"):
        market_identity("noseparator.jpg")


def test_round_trip_on_every_community_name(shared_data):
    """benchmark -> raw -> benchmark for all 48,674 train and 4,038 test names."""
    names = []
    for split in ("train", "test"):
        names += (shared_data / "deepfashion" / f"{split}.lst").read_text().split()
    assert len(names) == 48674 + 4038
    raw = [deepfashion_path_from_name(n) for n in names]
    assert [deepfashion_name_from_path(r) for r in raw] == names
    assert len(set(raw)) == len(names)  # the mapping is one-to-one


def test_identity_of_synthpeople_names_matches_the_renderer():
    from glocal_cli.data.naming import identity_of
    from glocal_cli.synth.writer import identity_key

    for name in ("synth_id00012_03.png", "synth_id00000_00.png", "synth_id12345_17.png"):
        assert identity_of(name) == identity_key(name)
    assert identity_of("synth_id00012_03.png") != identity_of("synth_id00013_03.png")
