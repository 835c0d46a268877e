"""Evaluation metrics (SSIM, PSNR, FID, IS, LPIPS) and named protocols.

The library entry points are :func:`glocal_cli.metrics.evaluate.evaluate` (generated images) and
:func:`glocal_cli.evaluate.evaluate_model` (a model plus a prepared dataset). Names below are imported
on first use so that reading the config (``metrics.config``) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalResult": "glocal_cli.metrics.report",
    "MetricResult": "glocal_cli.metrics.report",
    "EvalConfig": "glocal_cli.metrics.config",
    "PROTOCOLS": "glocal_cli.metrics.protocol",
    "get_protocol": "glocal_cli.metrics.protocol",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'glocal_cli.metrics' has no attribute {name!r}")
