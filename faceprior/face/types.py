"""Data passed between detection, alignment and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The detector used when none is named: small, fast on a CPU, bundled with faceprior.
DEFAULT_DETECTOR = "retinaface-mobilenet0.25"


@dataclass(frozen=True)
class FaceDetection:
    """One detected face in input-image pixel coordinates.

    ``landmarks`` is (5, 2) float (x, y): left eye, right eye, nose, left mouth corner, right
    mouth corner, where left/right are as seen in the image (image-left first), the order
    RetinaFace produces and the alignment templates use.
    """

    box: np.ndarray  # (4,) float: x0, y0, x1, y1
    score: float
    landmarks: np.ndarray  # (5, 2) float

    @property
    def size(self) -> float:
        """Shorter side of the box, the usual 'face size' for minimum-size filters."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))
