"""5-point alignment templates and the similarity fit onto them: the networks' input geometry.

A template is a set of points (image-left eye, image-right eye, nose, image-left and
image-right mouth corners) for a square crop of ``reference_size`` pixels; it is scaled
linearly to other crop sizes (:func:`template_points`), which is exactly how both the GPEN and
the FFHQ-style pipelines derive their sizes. A network names its template in its
:class:`~faceprior.models.conventions.Conventions`; the photo layer (``faceprior.face.align``)
warps faces onto it. The templates live beside the networks because they are part of what a
network was trained on, not of how photos are handled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Template:
    """Template points (x, y) for a ``reference_size`` x ``reference_size`` crop."""

    name: str
    reference_size: float
    points: tuple[tuple[float, float], ...]
    description: str


# The SphereFace 96x112 face-recognition crop (Liu et al., CVPR 2017), the starting point of
# GPEN's template and the crop MobileFaceNet embeds.
SPHEREFACE_96X112 = (
    (30.29459953, 51.69630051),
    (65.53179932, 51.50139999),
    (48.02519989, 71.73660278),
    (33.54930115, 92.3655014),
    (62.72990036, 92.20410156),
)
# GPEN squares the 96x112 crop (+8 px in x) and adds 0.25 inner padding on each side
# (+28 px on both axes), giving a 168x168 crop that is then scaled to the model size
# (see docs/conventions.md).
_GPEN_SHIFT = (8.0 + 28.0, 0.0 + 28.0)

TEMPLATES = {
    "gpen": Template(
        name="gpen",
        reference_size=168.0,
        points=tuple((x + _GPEN_SHIFT[0], y + _GPEN_SHIFT[1]) for x, y in SPHEREFACE_96X112),
        description="GPEN's template: the 96x112 SphereFace points, squared and padded by 0.25",
    ),
    "celeba": Template(
        name="celeba",
        reference_size=155.0,
        # Median YuNet landmarks of the CelebA subset in shared/data/train (MANIFEST.md) minus
        # the corner (11, 39) of its FFHQ-like 155 px crop: the geometry faceprior's offline
        # model was trained on.
        points=((58.4, 73.8), (97.1, 73.9), (76.6, 96.4), (60.7, 113.4), (94.2, 113.3)),
        description="FFHQ-like crop of CelebA 'align&cropped' faces (faceprior's own models)",
    ),
    "ffhq": Template(
        name="ffhq",
        reference_size=512.0,
        points=(
            (192.98138, 239.94708),
            (318.90277, 240.1936),
            (256.63416, 314.01935),
            (201.26117, 371.41043),
            (313.08905, 371.15118),
        ),
        description="FFHQ-style 512 px template used by GFPGAN/CodeFormer-style models",
    ),
}


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

    Rotation, uniform scale and translation, never a reflection: when the best orthogonal fit
    would be a reflection (e.g. mirrored landmark order), the sign of the smallest singular
    direction is flipped so the result stays a proper rotation. The one similarity fit of
    faceprior: face alignment and the identity metric's crop both use it.
    """
    src = check_points(src_points, "src_points")
    dst = check_points(dst_points, "dst_points")
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


def check_points(points: np.ndarray, name: str) -> np.ndarray:
    """``points`` as a finite (N, 2) float64 array of (x, y), N >= 2, else ``ValueError``."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) < 2:
        raise ValueError(f"{name} must be an (N, 2) array of (x, y) points, not {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array
