"""Face alignment: a similarity transform from 5 detected landmarks to a template, and the crop.

Restoration models were trained on faces warped to one fixed 5-point template, so a face must
be warped the same way before restoration and pasted back with the inverse matrix. The fit is
Umeyama's least-squares similarity (rotation, uniform scale, translation; never a reflection),
as in GPEN (templates and fit: ``faceprior.models.templates``, beside the networks). Only the
``size`` x ``size`` output is computed, so aligning a face costs the same whatever the size of
the photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ArgumentError
from ..models.templates import check_points, similarity_transform, template_points

__all__ = ["align_face", "invert_affine", "similarity_transform", "template_points"]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (the paste-back matrix for a crop matrix)."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    template: str,
    size: int,
    border_mode: int = cv2.BORDER_CONSTANT,
    border_value: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp the face with these (5, 2) landmarks onto ``template`` at ``size`` px.

    Returns ``(crop, matrix, inverse_matrix)``: the ``size`` x ``size`` crop (bilinear, same
    dtype and channels as ``image``), the 2x3 image-to-crop matrix, and its inverse for
    pasting a restored crop back (``cv2.warpAffine(crop, inverse_matrix, (W, H))``).
    ``border_mode``/``border_value``: OpenCV border handling where the crop leaves the photo
    (GPEN: constant black; ``cv2.BORDER_REFLECT`` avoids black corners near the edges);
    ``border_value`` is the grey level of every channel for ``cv2.BORDER_CONSTANT``.
    Points are fitted in float32, as GPEN does, so matrices equal the official ones.
    """
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ArgumentError(
            "image", f"must be an (H, W[, C]) array for align_face, got {_describe(image)}"
        )
    source = check_points(landmarks, "landmarks").astype(np.float32)
    target = template_points(template, size).astype(np.float32)
    if len(source) != len(target):
        count = len(target)
        raise ArgumentError(
            "landmarks", f"must be the template's {count} landmarks, got {len(source)}"
        )
    matrix = similarity_transform(source, target)
    crop = cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=border_mode,
        borderValue=(float(border_value),) * 4,
    )
    return crop, matrix, invert_affine(matrix)


def _describe(value: object) -> str:
    return f"shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
