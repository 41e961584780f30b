"""Face alignment: a similarity transform from 5 detected landmarks to a template, and the crop.

Restoration models were trained on faces warped to one fixed 5-point template, so a face must
be warped the same way before restoration and pasted back with the inverse matrix. The fit is
Umeyama's least-squares similarity (rotation, uniform scale, translation; never a reflection),
as in GPEN; only the ``size`` x ``size`` output is computed, so aligning a face costs the same
whatever the size of the photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from .templates import TEMPLATES


def template_points(name: str, size: int) -> np.ndarray:
    """The (5, 2) float64 template ``name`` (see ``TEMPLATES``) for a ``size`` x ``size`` crop."""
    try:
        template = TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise ValueError(f"unknown alignment template {name!r}; known: {known}") from None
    if size <= 0:
        raise ValueError(f"template size must be positive, got {size}")
    return np.asarray(template.points, dtype=np.float64) * (size / template.reference_size)


def similarity_transform(src_points: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
    """2x3 matrix M (float64) minimising sum |dst - M [src; 1]|^2 over similarities (Umeyama 1991).

    When the best orthogonal fit would be a reflection (e.g. mirrored landmark order), the
    sign of the smallest singular direction is flipped so the result stays a proper rotation.
    """
    src = _points(src_points, "src_points")
    dst = _points(dst_points, "dst_points")
    if src.shape != dst.shape:
        raise ValueError(f"src_points {src.shape} and dst_points {dst.shape} differ in shape")
    dim = src.shape[1]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    rank = np.linalg.matrix_rank(covariance)
    src_variance = src_centred.var(axis=0).sum()
    if rank == 0 or src_variance == 0:
        raise ValueError("cannot align: the landmarks are all at one point")
    signs = np.ones(dim)
    if rank == dim - 1:
        # Degenerate (collinear) points: choose the sign that makes R a rotation.
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            signs[-1] = -1
    elif np.linalg.det(covariance) < 0:
        signs[-1] = -1
    rotation = u @ np.diag(signs) @ vt
    scale = (singular @ signs) / src_variance
    matrix = np.empty((dim, dim + 1))
    matrix[:, :dim] = scale * rotation
    matrix[:, dim] = dst_mean - scale * rotation @ src_mean
    return matrix


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
        raise ValueError(f"align_face expects an (H, W[, C]) image array, got {_describe(image)}")
    source = _points(landmarks, "landmarks").astype(np.float32)
    target = template_points(template, size).astype(np.float32)
    if len(source) != len(target):
        raise ValueError(f"expected {len(target)} landmarks, got {len(source)}")
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


def _points(points: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < 2:
        raise ValueError(f"{name} must be an (N, 2) array of (x, y) points, not {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _describe(value: object) -> str:
    return f"shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
