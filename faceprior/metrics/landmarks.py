"""Landmark distance (LMD): how far the restored face's 5 detected landmarks move from the GT's.

Both images are run through the same detector (``faceprior.face.detection``); the most
confident face of each is used and the restored landmarks are scaled to ground-truth pixels.
Images are shrunk so their longer side is at most ``detect_size`` (512) before detection:
aligned faces fill the frame, and detectors trained on photos score a 1024-pixel face poorly.
``lmd`` is the mean Euclidean distance over the 5 points in ground-truth pixels; it is NaN
(``n/a`` in tables, left out of the mean) for a pair where either image has no detected face.
"""

from __future__ import annotations

import numpy as np


def missing_reason() -> str | None:
    """Why the metric cannot run here, or ``None`` when the detector module is importable."""
    import importlib

    try:
        importlib.import_module("faceprior.face.detection")
    except ImportError as error:
        return f"face detection is not available ({error})"
    return None


class LandmarkScorer:
    """``score(restored, gt)`` for RGB (H, W, 3) images in [0, 255]."""

    columns = ("lmd",)

    def __init__(self, detector, detect_size: int = 512):
        self.detector = detector
        self.detect_size = detect_size

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks (5, 2) of the most confident face in image pixels, or ``None``."""
        import cv2

        bgr = np.ascontiguousarray(np.clip(np.rint(image[..., ::-1]), 0, 255).astype(np.uint8))
        scale = min(1.0, self.detect_size / max(bgr.shape[:2]))
        if scale < 1.0:
            size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        faces = self.detector.detect(bgr)
        return None if not faces else np.asarray(faces[0].landmarks, np.float64) / scale

    def score(self, restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        a, b = self.landmarks(restored), self.landmarks(gt)
        if a is None or b is None:
            return {"lmd": float("nan")}
        scale = np.array([gt.shape[1] / restored.shape[1], gt.shape[0] / restored.shape[0]])
        return {"lmd": float(np.linalg.norm(a * scale - b, axis=1).mean())}
