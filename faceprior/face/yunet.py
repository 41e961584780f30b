"""YuNet (Wu et al. 2023) through OpenCV's ``cv2.FaceDetectorYN``: a light CPU alternative.

The ~230 kB ONNX model runs inside OpenCV (no torch), which makes it the cheap choice for
large batches of photos with frontal faces; RetinaFace is more robust on small, blurred or
turned faces. OpenCV lists the landmarks as "right eye, left eye, nose, right mouth corner,
left mouth corner" in the *person's* frame, i.e. the person's right eye is the image-left one:
that is already faceprior's image-left-first order (checked against RetinaFace on real
photos, see tests/test_yunet.py), so the points are taken over unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import CheckpointError, ModelNotFoundError
from .detector import FaceDetector

# Columns of one cv2.FaceDetectorYN row: x, y, w, h, 5 x (x, y) landmarks, score.
_LANDMARK_COLUMNS = slice(4, 14)
_SCORE_COLUMN = 14


class YuNetDetector(FaceDetector):
    """``cv2.FaceDetectorYN`` behind the :class:`FaceDetector` interface.

    ``top_k`` bounds the candidates kept before NMS; the other options are described on
    :class:`FaceDetector`.
    """

    def __init__(
        self,
        weights: str | os.PathLike,
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        max_size: int | None = 1500,
        resize_to: int = 1000,
        top_k: int = 5000,
    ) -> None:
        super().__init__(score_threshold, nms_threshold, max_size, resize_to)
        path = Path(weights)
        if not path.is_file():
            raise ModelNotFoundError(f"YuNet model not found: {path}")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise RuntimeError(f"YuNet needs OpenCV >= 4.8, have {cv2.__version__}")
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold, top_k
            )
        except cv2.error as error:
            raise CheckpointError(
                f"{path}: OpenCV cannot load it as a YuNet model: {error}"
            ) from None

    def detect_arrays(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        height, width = image_bgr.shape[:2]
        self._net.setInputSize((width, height))
        _, faces = self._net.detect(np.ascontiguousarray(image_bgr))
        if faces is None:
            faces = np.zeros((0, 15), dtype=np.float32)
        boxes = faces[:, :4].copy()
        boxes[:, 2:] += boxes[:, :2]
        landmarks = faces[:, _LANDMARK_COLUMNS].reshape(-1, 5, 2)
        return boxes, faces[:, _SCORE_COLUMN], landmarks
