"""``glocal serve``: a local web page and JSON API to re-pose a person by dragging a skeleton.

Importing this package is cheap (no FastAPI, no torch): the server lives in
:mod:`glocal_cli.serve.app` (the ASGI app) and :mod:`glocal_cli.serve.engine` (the model side).
See docs/serve.md for the endpoints.
"""

from glocal_cli.serve.config import ServeConfig

__all__ = ["ServeConfig"]
