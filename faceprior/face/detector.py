"""The face-detector interface the pipeline codes against.

Every detector takes a BGR uint8 photo and returns :class:`FaceDetection` objects in
input-image pixels, best score first, with the 5 landmarks in faceprior's order (image-left
eye first). Large photos are shrunk before detection, as GPEN does (a face in a >1500 px
photo is large enough to be found at 1000 px, and the network cost grows with the area);
boxes and landmarks are mapped back to the original pixels. ``faceprior.face.detection``
builds detectors by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from ..errors import ArgumentError
from .types import FaceDetection


class FaceDetector(ABC):
    """Base class: input checks, the large-photo resize, and conversion to FaceDetection.

    ``score_threshold``: faces scoring at or below it are dropped. ``nms_threshold``: IoU
    above which the lower-scoring of two overlapping boxes is dropped. ``max_size``: photos
    whose longer side exceeds it are scaled so that side becomes ``resize_to`` before
    detection (None: never resize).
    """

    def __init__(
        self,
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        max_size: int | None = 1500,
        resize_to: int = 1000,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ArgumentError("score_threshold", f"must be in [0, 1], got {score_threshold}")
        if not 0.0 < nms_threshold <= 1.0:
            raise ArgumentError("nms_threshold", f"must be in (0, 1], got {nms_threshold}")
        if max_size is not None and max_size <= 0:
            raise ArgumentError("max_size", f"must be positive or None, got {max_size}")
        if resize_to <= 0:
            raise ArgumentError("resize_to", f"must be positive, got {resize_to}")
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_size = max_size
        self.resize_to = resize_to

    def detect(self, image_bgr: np.ndarray) -> list[FaceDetection]:
        """Faces in a BGR uint8 photo (gray and BGRA are accepted), best score first."""
        image = as_bgr_uint8(image_bgr)
        scale = 1.0
        if self.max_size is not None and max(image.shape[:2]) > self.max_size:
            scale = self.resize_to / max(image.shape[:2])
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        boxes, scores, landmarks = self.detect_arrays(image)
        order = np.argsort(-scores, kind="stable")
        return [
            FaceDetection(
                box=boxes[i].astype(np.float64) / scale,
                score=float(scores[i]),
                landmarks=landmarks[i].astype(np.float64) / scale,
            )
            for i in order
        ]

    @abstractmethod
    def detect_arrays(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect at the given size: boxes (M, 4), scores (M,), landmarks (M, 5, 2) in our order."""


def as_bgr_uint8(image: np.ndarray) -> np.ndarray:
    """Check a photo and bring gray (H, W) / (H, W, 1) and BGRA (H, W, 4) to 3-channel BGR."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise ArgumentError(
            "image", f"must be a uint8 numpy array (BGR) to detect faces, got {kind}"
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ArgumentError(
            "image", f"must be an (H, W, 3) BGR array to detect faces, got shape {image.shape}"
        )
    if min(image.shape[:2]) < 1:
        raise ArgumentError("image", f"is empty (shape {image.shape})")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image
