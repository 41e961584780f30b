"""Shared pieces of the `faceprior serve` tests: settings for a fast worker, and images."""

from __future__ import annotations

import io

import numpy as np
from conftest import shared_path
from PIL import Image

from faceprior.serve import ServeSettings

DETECTOR_WEIGHTS = "data/weights/retinaface_mobilenet0.25_Final.pth"
GROUP_PHOTO = "data/faces/whole/CodeFormer_whole_imgs/00.jpg"  # four faces, 491 x 310
FACE_PHOTO = "data/faces/whole/facexlib/test.jpg"  # one face, 418 x 520


def fast_settings(**overrides) -> ServeSettings:
    """The bundled 128-px model, the detector from ../shared, one thread: a quick worker."""
    options = dict(
        model="gpen-offline-128",
        detector_weights=str(shared_path(DETECTOR_WEIGHTS)),
        threads=1,
        allowed_hosts=("testserver", "127.0.0.1", "localhost"),
    )
    options.update(overrides)
    return ServeSettings(**options)


def png_bytes(pixels: np.ndarray) -> bytes:
    """PNG bytes of 8-bit pixels (any layout Pillow takes)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    """Pixels of image bytes, through faceprior's own reader (keeps 16 bits and alpha)."""
    from faceprior.io.images import decode_image

    return decode_image(data).pixels
