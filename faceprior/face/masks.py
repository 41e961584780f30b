"""Where a restored face replaces the photo: soft masks in aligned-crop coordinates.

A mask source maps restored faces (N, S, S, 3) float RGB in [0, 1] to masks (N, S, S) float32
in [0, 1]; the pipeline warps them into the photo with the faces. Because a mask is drawn on
the crop, its margin and feathering scale with the face's size in the photo.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

# GPEN's paste-back rectangle (official face_enhancement.py) is drawn on a 512-pixel crop: a band
# of 26 px along every side is cleared, then the edge is feathered by two Gaussian blurs of
# sigma 4 (one of sigma 5.7). Here the numbers are fractions of the crop side, so they scale
# with the face. The feather is widened to sigma 12/512, because GPEN's edge stays visible as a
# line where the restored background of the crop meets the original (their issue #126), and the
# band to 40/512 so the mask still falls to 0 (< 0.001) at the crop's edge.
BAND = 40 / 512
FEATHER_SIGMA = 12 / 512


class MaskSource(Protocol):
    """Anything that turns restored faces into paste-back masks."""

    def __call__(self, faces: np.ndarray) -> np.ndarray: ...


def rectangle_mask(size: int, band: float = BAND, sigma: float = FEATHER_SIGMA) -> np.ndarray:
    """A soft rectangle for a ``size`` x ``size`` crop: 1 inside, feathered to 0 at the band.

    ``band`` and ``sigma`` are fractions of ``size``; the blur kernel spans 3 sigma each side.
    """
    import cv2

    mask = np.zeros((size, size), np.float32)
    margin = int(round(band * size))
    mask[margin : size - margin, margin : size - margin] = 1.0
    blur = sigma * size
    if blur > 0.1:
        radius = int(np.ceil(3 * blur))
        mask = cv2.GaussianBlur(mask, (2 * radius + 1, 2 * radius + 1), blur)
    return mask


class RectangleMask:
    """The same soft rectangle for every face (no parsing network needed)."""

    def __init__(self, band: float = BAND, sigma: float = FEATHER_SIGMA) -> None:
        self.band = band
        self.sigma = sigma
        self._cache: dict[int, np.ndarray] = {}

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        size = faces.shape[1]
        if size not in self._cache:
            self._cache[size] = rectangle_mask(size, self.band, self.sigma)
        return np.broadcast_to(self._cache[size], faces.shape[:3]).copy()


# The face-shaped mask: an ellipse through forehead, cheeks and chin, measured from the five
# landmarks in units of the eye-to-mouth distance (vertical) and the eye distance (horizontal),
# so it fits any template, pose roll and face size. It stays inside the face outline: what the
# crop re-synthesises around the face (background, hair, ears) is never pasted.
FOREHEAD = 0.95  # top of the ellipse above the eyes, in eye-to-mouth distances
CHIN = 0.9  # bottom below the mouth, in eye-to-mouth distances
HALF_WIDTH = 0.98  # half-width, in eye distances (cheek to cheek is about two)
FACE_FEATHER = 0.3  # the mask falls from 1 to 0 over this outer fraction of the radius


def face_shape_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """A soft ellipse covering the face for a ``size`` x ``size`` crop, (size, size) float32.

    ``landmarks`` (5, 2) are the face's points in crop pixels (eyes, nose, mouth corners).
    The edge is a smoothstep over the outer :data:`FACE_FEATHER` of the radius, so the
    transition is as wide as the face is large and no seam can show.
    """
    points = np.asarray(landmarks, np.float64)
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    down = mouth - eyes
    eye_to_mouth = max(float(np.hypot(*down)), 1e-6)
    down /= eye_to_mouth
    across = np.array([down[1], -down[0]])
    top = eyes - down * FOREHEAD * eye_to_mouth
    bottom = mouth + down * CHIN * eye_to_mouth
    centre = (top + bottom) / 2
    half_height = float(np.hypot(*(bottom - top))) / 2
    half_width = HALF_WIDTH * max(float(np.hypot(*(points[1] - points[0]))), 1e-6)
    grid = np.arange(size, dtype=np.float64)
    dx, dy = grid[None, :] - centre[0], grid[:, None] - centre[1]
    along = (dx * down[0] + dy * down[1]) / half_height
    side = (dx * across[0] + dy * across[1]) / half_width
    t = np.clip((1.0 - np.sqrt(along**2 + side**2)) / FACE_FEATHER, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


# GPEN's parsing-mask feather (two blurs of sigma 4 on 512 px, i.e. one of 4 * sqrt(2)): the
# mask follows the face outline, so a narrow feather keeps the restored hair edge crisp.
PARSING_SIGMA = 4 * np.sqrt(2.0) / 512


class ParsingMask:
    """Face, hair, neck and accessories found by a face parser (PSFR-GAN's ParseNet).

    As GPEN's ``FaceParse`` mask (official face_enhancement.py): background, hat and cloth are
    left out, a band along the crop's sides is cleared and the edge is feathered, with the
    pixel numbers scaled to the crop. ``parser``: zoo name or path of a ParseNet checkpoint,
    or a loaded one; ``None`` is the official PSFR-GAN parser from the zoo.
    """

    def __init__(self, parser=None, device: str = "cpu") -> None:
        from torch import nn

        from ..models.psfrgan.parsing import load_parser

        self.parser = parser if isinstance(parser, nn.Module) else load_parser(parser, device)
        self.parser.eval()
        self.device = device

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        import cv2
        import torch

        from ..models.psfrgan.parsing import paste_back_mask

        if not len(faces):
            return np.zeros(faces.shape[:3], np.float32)
        batch = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).to(self.device)
        masks = paste_back_mask(batch * 2 - 1, self.parser).float().cpu().numpy()
        size = faces.shape[1]
        margin = int(round(BAND * size))
        cleared = np.zeros((size, size), np.float32)
        cleared[margin : size - margin, margin : size - margin] = 1.0
        sigma = PARSING_SIGMA * size
        radius = int(np.ceil(3 * sigma))
        return np.stack(
            [
                cv2.GaussianBlur(mask * cleared, (2 * radius + 1, 2 * radius + 1), sigma)
                for mask in masks
            ]
        ).astype(np.float32)
