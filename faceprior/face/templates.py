"""5-point alignment templates (image-left eye, image-right eye, nose, mouth corners), as data.

A template is a set of points for a square crop of ``reference_size`` pixels; it is scaled
linearly to other crop sizes (see :func:`faceprior.face.align.template_points`), which is
exactly how both the GPEN and the FFHQ-style pipelines derive their sizes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    """Template points (x, y) for a ``reference_size`` x ``reference_size`` crop."""

    name: str
    reference_size: float
    points: tuple[tuple[float, float], ...]
    description: str


# SphereFace-style 96x112 template that GPEN starts from (gpen.md §4.3).
_GPEN_BASE_96X112 = (
    (30.29459953, 51.69630051),
    (65.53179932, 51.50139999),
    (48.02519989, 71.73660278),
    (33.54930115, 92.3655014),
    (62.72990036, 92.20410156),
)
# GPEN squares the 96x112 crop (+8 px in x) and adds 0.25 inner padding on each side
# (+28 px on both axes), giving a 168x168 crop that is then scaled to the model size.
_GPEN_SHIFT = (8.0 + 28.0, 0.0 + 28.0)

TEMPLATES = {
    "gpen": Template(
        name="gpen",
        reference_size=168.0,
        points=tuple((x + _GPEN_SHIFT[0], y + _GPEN_SHIFT[1]) for x, y in _GPEN_BASE_96X112),
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
