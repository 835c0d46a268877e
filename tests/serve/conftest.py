"""Fixtures of the ``glocal serve`` tests: a tiny random model, engines and test clients."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.infer_helpers import EXAMPLES, save_tiny_weights

pytest.importorskip("fastapi", reason="glocal serve needs fastapi (installed by make install)")


@pytest.fixture(scope="session")
def serve_pipeline(tmp_path_factory):
    """A ``tiny`` (32x24) pipeline with seeded random weights, on the CPU."""
    from glocal_cli.infer.config import InferConfig
    from glocal_cli.infer.pipeline import GLocalPipeline

    weights = save_tiny_weights(tmp_path_factory.mktemp("serve-weights"))
    return GLocalPipeline.from_pretrained(weights, device="cpu", config=InferConfig(batch_size=4, workers=0))


@pytest.fixture
def make_client(serve_pipeline, tmp_path):
    """``make_client(**serve_config) -> TestClient`` on a fresh engine writing under ``tmp_path/out``."""
    from fastapi.testclient import TestClient

    from glocal_cli.serve.app import create_app
    from glocal_cli.serve.config import ServeConfig
    from glocal_cli.serve.engine import ServeEngine

    clients = []

    def make(**changes):
        cfg = ServeConfig(**{"out": str(tmp_path / "out"), "keypoints": "none", **changes})
        client = TestClient(create_app(ServeEngine(serve_pipeline, cfg, EXAMPLES)))
        client.__enter__()  # runs the app's startup (detector warm-up)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def from_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def example_bytes(name: str = "person_00") -> bytes:
    return (Path(EXAMPLES) / "sources" / f"{name}.png").read_bytes()
