"""Frame sizes: one parser for prepare-data (every kind), SynthPeople and the benchmarks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from glocal_cli.data.sizes import parse_size
from glocal_cli.errors import ConfigError
from glocal_cli.synth.dataset import parse_synthetic_size


def test_parse_size_text_and_pairs():
    assert parse_size("256x176") == (256, 176)
    assert parse_size(" 512 X 352 ") == (512, 352)
    assert parse_size((64, 44)) == (64, 44)
    assert parse_size([128, 64]) == (128, 64)
    for bad, message in (("256", "HEIGHTxWIDTH"), ("axb", "HEIGHTxWIDTH"), ("256x175", "multiples of 4"),
                         ("0x4", "multiples of 4"), ((1, 2, 3), "expected \\(height, width\\)"),
                         ((-4, 8), "multiples of 4")):
        with pytest.raises(ConfigError, match=message):
            parse_size(bad)


def test_synthetic_size_adds_the_minimum():
    assert parse_synthetic_size("16x12") == (16, 12)
    with pytest.raises(ConfigError, match="too small to draw a person"):
        parse_synthetic_size("12x12")


def test_sizes_module_is_light():
    code = "import sys, glocal_cli.data.sizes; print(any(m in sys.modules for m in ('numpy', 'torch', 'PIL')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
