"""What the report says about each face and photo (:class:`~faceprior.pipeline.results.
FaceResult`, the colour note)."""

from __future__ import annotations

import numpy as np

from ..face.types import FaceDetection
from .results import FaceResult

COLOUR_NOTES = {
    "grey": "grey (R = G = B): restored in luminance only, output exactly grey",
    "near-grey": "near-grey (little colour): restored in luminance, the input's chroma kept",
    "colour": "colour",
}
BROKEN_OUTPUT = "the model returned NaN or infinite values; face left as is"


def face_report(
    detection: FaceDetection,
    matrix: np.ndarray,
    model: str,
    number: int,
    strength: float,
    detail: str,
    broken: bool,
) -> FaceResult:
    """One face of the report: where it was found, which model restored it and how."""
    return FaceResult(
        detection.box,
        detection.score,
        detection.landmarks,
        matrix,
        model=model,
        index=number,
        strength=strength,
        detail=detail,
        error=BROKEN_OUTPUT if broken else "",
    )


def template_in(matrix: np.ndarray, conventions) -> np.ndarray:
    """The alignment template's points mapped from the crop back to input pixels."""
    if conventions.template is None:
        return np.zeros((0, 2))
    import cv2

    from ..face.align import template_points

    points = np.asarray(template_points(conventions.template, conventions.input_size), float)
    inverse = cv2.invertAffineTransform(matrix)
    return points @ inverse[:, :2].T + inverse[:, 2]
