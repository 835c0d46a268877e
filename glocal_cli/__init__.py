"""glocal: GLocal person image generation (pose transfer and texture inpainting).

The library face is :class:`glocal_cli.infer.pipeline.GLocalPipeline` (inference), :func:`glocal_cli.train.trainer.train`,
:func:`glocal_cli.metrics.evaluate.evaluate` and :func:`glocal_cli.evaluate.evaluate_model`; the command line is
:mod:`glocal_cli.cli` (``docs/design.md`` has the layers).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
