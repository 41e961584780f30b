"""Paste restored faces back into the (upscaled) photo.

Each face is warped from its aligned crop into the canvas with its soft mask, only inside the
face's bounding rectangle. Faces that are smaller in the canvas than in the crop are first
shrunk with an antialiasing Lanczos filter (Pillow's, whose support widens with the reduction;
OpenCV's Lanczos does not), so the warp does not alias: no moire or sharpness step against the
surrounding photo. The warp itself is bicubic.

Overlapping faces use normalised accumulation: where masks overlap, the restored faces are
averaged weighted by their masks, and the photo is replaced by as much as the strongest mask
says. Unlike GPEN's "larger mask wins" this never switches abruptly from one face to another.
A pixel that no mask reaches keeps the canvas value bit for bit.
"""

from __future__ import annotations

import numpy as np

# Faces shrunk by less than this are warped directly (area pre-shrinking would only blur).
_SHRINK_BELOW = 0.9


def resize_matrix(scale_x: float, scale_y: float | None = None) -> np.ndarray:
    """(2, 3) map from pixel indices of an image to those of a ``cv2.resize`` by the scales.

    ``cv2.resize`` aligns pixel areas, not centres: x' = scale * (x + 0.5) - 0.5.
    """
    scale_y = scale_x if scale_y is None else scale_y
    return np.array([[scale_x, 0.0, (scale_x - 1.0) / 2.0], [0.0, scale_y, (scale_y - 1.0) / 2.0]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine map ``outer(inner(x))``."""
    full = np.vstack([inner, [0.0, 0.0, 1.0]])
    return outer @ full


class PasteCanvas:
    """Accumulates masked faces over a float32 RGB background (H, W, 3) in [0, 1]."""

    def __init__(self, background: np.ndarray) -> None:
        self.background = background
        height, width = background.shape[:2]
        self._weighted = np.zeros_like(background)
        self._weights = np.zeros((height, width), np.float32)
        self._coverage = np.zeros((height, width), np.float32)
        self._touched = (width, height, 0, 0)  # union of the faces' rectangles: x0, y0, x1, y1

    def add(
        self,
        face: np.ndarray,
        mask: np.ndarray,
        crop_to_canvas: np.ndarray,
        strength: float = 1.0,
        keep_detail: bool = False,
    ) -> None:
        """Add one face (S, S, 3) with its mask (S, S), warped by ``crop_to_canvas`` (2, 3).

        ``strength`` scales this face's share against the photo (0: the photo, 1: the face).
        ``keep_detail``: where the face lands larger than the model's resolution, keep the
        photo's finer detail where it is sharper (:mod:`faceprior.face.detail`).
        """
        import cv2

        from .detail import keep_sharper_detail

        scale = paste_scale(crop_to_canvas)
        face, mask, matrix = _prefilter(face, mask, crop_to_canvas)
        size = face.shape[0]
        low, high = -0.5, size - 0.5  # outer pixel edges in index coordinates
        corners = np.array([[low, low, 1], [high, low, 1], [low, high, 1], [high, high, 1]])
        points = corners @ matrix.T
        height, width = self._coverage.shape
        x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int) + 2, (width, height))
        if x1 <= x0 or y1 <= y0:
            return
        shifted = matrix - np.array([[0.0, 0.0, x0], [0.0, 0.0, y0]])
        roi = (x1 - x0, y1 - y0)
        warped = cv2.warpAffine(
            face, shifted, roi, flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE
        )
        weight = cv2.warpAffine(
            mask, shifted, roi, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        weight = np.clip(weight, 0.0, 1.0)
        if keep_detail:
            # Only where the mask reaches: a selfie's crop is far larger than its face.
            rows, columns = (
                np.nonzero(weight.max(axis=1) > 0)[0],
                np.nonzero(weight.max(axis=0) > 0)[0],
            )
            if len(rows):
                inner = slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)
                photo = self.background[y0:y1, x0:x1][inner]
                warped[inner] = keep_sharper_detail(warped[inner], photo, scale)
        tx0, ty0, tx1, ty1 = self._touched
        self._touched = (min(tx0, x0), min(ty0, y0), max(tx1, x1), max(ty1, y1))
        self._weighted[y0:y1, x0:x1] += warped * weight[..., None]
        self._weights[y0:y1, x0:x1] += weight
        share = weight * np.float32(strength)
        np.maximum(self._coverage[y0:y1, x0:x1], share, out=self._coverage[y0:y1, x0:x1])

    def result(self, strength: float = 1.0) -> np.ndarray:
        """The canvas: background + strength * coverage * (mean face - background), in [0, 1]."""
        out = self.background.copy()
        x0, y0, x1, y1 = self._touched
        if x1 <= x0 or y1 <= y0:
            return out
        region = out[y0:y1, x0:x1]
        weights = self._weights[y0:y1, x0:x1, None]
        faces = self._weighted[y0:y1, x0:x1] / np.maximum(weights, 1e-12)
        alpha = strength * self._coverage[y0:y1, x0:x1, None]
        # Where no mask reaches, alpha is 0 and the sum leaves the background bit for bit.
        region += alpha * (np.clip(faces, 0.0, 1.0) - region)
        return out

    @property
    def coverage(self) -> np.ndarray:
        """Per-pixel weight of the restored faces (the strongest mask), (H, W) in [0, 1]."""
        return self._coverage


def paste_scale(crop_to_canvas: np.ndarray) -> float:
    """Output pixels per crop pixel of a (2, 3) crop-to-canvas map (its linear scale)."""
    return float(np.sqrt(abs(np.linalg.det(crop_to_canvas[:, :2]))))


def _prefilter(
    face: np.ndarray, mask: np.ndarray, crop_to_canvas: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shrink a face that lands smaller in the canvas, adjusting the matrix to match."""
    import cv2
    from PIL import Image

    scale = paste_scale(crop_to_canvas)
    size = face.shape[0]
    if scale >= _SHRINK_BELOW:
        return face, mask, crop_to_canvas
    small = max(2, int(round(size * scale)))
    planes = [Image.fromarray(np.ascontiguousarray(face[..., c])) for c in range(face.shape[2])]
    face = np.dstack([np.asarray(p.resize((small, small), Image.LANCZOS)) for p in planes])
    mask = cv2.resize(mask, (small, small), interpolation=cv2.INTER_AREA)
    return face, mask, compose(crop_to_canvas, resize_matrix(size / small))
