"""Shared fixtures: locating ../shared (specs, parity packs, photos, weights).

Tests that need a file from ``../shared`` call :func:`shared_path`. Without it they skip with
the reason, except when ``FACEPRIOR_REQUIRE_SHARED=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACEPRIOR_SHARED", PROJECT_ROOT.parent / "shared"))
# The restoration models inside the package, newest first: what an offline install (and a
# server without downloads) offers, each pinned by its zoo entry.
BUNDLED_MODELS = (
    "gpen-offline-128-v5",
    "gpen-offline-128-v4",
    "gpen-offline-128-v3",
    "gpen-offline-128-v2",
    "mmrb-offline-128",
    "gpen-offline-128",
)


def shared_path(relative: str) -> Path:
    """Path of ``relative`` inside the shared folder; skip (or fail in CI) when missing."""
    path = SHARED / relative
    if not path.exists():
        message = f"needs {path} (the read-only ../shared folder beside the checkout)"
        if os.environ.get("FACEPRIOR_REQUIRE_SHARED") == "1":
            pytest.fail(message + "; FACEPRIOR_REQUIRE_SHARED=1 makes this an error")
        pytest.skip(message)
    return path


def load_parity_pack(name: str):
    """Load ``../shared/parity/<name>`` with the pack loader that ships beside the packs."""
    root = shared_path("parity")
    pack_dir = shared_path(f"parity/{name}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from packs import load_pack

    return load_pack(str(pack_dir))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's model cache from tests."""
    monkeypatch.setenv("FACEPRIOR_HOME", str(tmp_path_factory.mktemp("faceprior-home")))


@pytest.fixture(scope="module")
def one_thread():
    """Toy-sized ops gain nothing from threads, and lose a lot on a busy machine.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class GivenFaces:
    """A detector that returns fixed detections (in input-image pixels, best score first)."""

    def __init__(self, detections):
        self.detections = detections

    def detect(self, image):
        assert image.dtype.name == "uint8" and image.shape[2] == 3
        return list(self.detections)


@pytest.fixture(scope="module")
def tiny_gpen(tmp_path_factory) -> str:
    """A random-weight 64 px GPEN saved as safetensors (loaded by path like a real model)."""
    import torch

    import faceprior
    from faceprior.models.gpen import FullGenerator

    torch.manual_seed(0)
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=1 / 16)
    path = tmp_path_factory.mktemp("models") / "tiny-gpen.safetensors"
    return str(faceprior.save_model(network, path))
