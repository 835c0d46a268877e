"""glocal: GLocal person image generation (pose transfer and texture inpainting).

The library face lives in :mod:`glocal_cli.api`; the command line in :mod:`glocal_cli.cli`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
