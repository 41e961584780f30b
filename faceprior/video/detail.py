"""A steady detail source: each track's face region of the input averaged over time.

``keep_detail`` puts the photo's own fine detail back into faces pasted larger than the
model's resolution. In a noisy video that detail is mostly noise, fresh in every frame, so
even a temporally blended face would flicker through it. Before paste-back, the face region
of the frame (the detail source) is therefore replaced by a recursive average over the track,
in aligned space at the frame's own resolution (no detail is lost to resampling), with the
same motion-aware per-pixel weight as :func:`faceprior.video.temporal.blend_face`: where the
input changed beyond noise (the mouth opens, the camera moves faster than the landmarks
follow) the past gets no weight and the frame's own pixels stay, bit for bit. Only the
correction (average minus frame) is warped back, under the face-shaped mask, so pixels
outside the face and everywhere the past was refused are untouched.
"""

from __future__ import annotations

import numpy as np

from ..face.paste import compose, resize_matrix
from .temporal import BlendSettings, covered, motion_weight, warp_crop

# The averaging grid is the face's size in the frame when a track starts; if the face has
# since zoomed by more than this fraction, the grid is remade at the new size (past dropped).
RESIZE_TOLERANCE = 0.25


def steady_detail_source(
    state: dict,
    rgb: np.ndarray,
    landmarks: np.ndarray,
    matrix: np.ndarray,
    model_size: int,
    settings: BlendSettings,
) -> None:
    """Average this track's face region of ``rgb`` (H, W, 3 float32, changed in place).

    ``matrix`` maps the photo to the model's ``model_size`` crop (so its scale says how
    large the face is); ``landmarks`` (5, 2) are the track's, in photo pixels; ``state`` is
    the track's memory.
    """
    import cv2

    from ..face.masks import face_shape_mask

    if settings.strength <= 0:
        return
    scale = 1.0 / float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # photo px per crop px
    if scale <= 1.0:
        return  # the model's crop already holds every photo pixel: keep_detail adds nothing
    size = int(np.ceil(model_size * scale))
    previous = state.get("detail")
    if previous is not None and abs(size / state["detail_size"] - 1) <= RESIZE_TOLERANCE:
        size = state["detail_size"]  # the same grid as the past (zoom within the tolerance)
    else:
        previous = None  # first frame, or the face zoomed: the past's grid no longer fits
    native = compose(resize_matrix(size / model_size), matrix)
    crop = cv2.warpAffine(rgb, native, (size, size), flags=cv2.INTER_CUBIC)
    averaged = crop
    if previous is not None:
        relative = compose(native, cv2.invertAffineTransform(state["detail_matrix"]))
        past = warp_crop(previous, relative, size)
        weight = motion_weight(crop, warp_crop(state["detail_crop"], relative, size), settings)
        weight *= covered(relative, size)
        averaged = past * weight[..., None] + crop * (1.0 - weight[..., None])
    state.update(detail_size=size, detail=averaged, detail_crop=crop, detail_matrix=native)
    if previous is None:
        return
    points = landmarks @ native[:, :2].T + native[:, 2]
    correction = (averaged - crop) * face_shape_mask(points, size)[..., None]
    _add_to_photo(rgb, correction, native)


def _add_to_photo(rgb: np.ndarray, correction: np.ndarray, native: np.ndarray) -> None:
    """Warp the crop-space ``correction`` into the photo and add it, over the crop's box."""
    import cv2

    size = correction.shape[0]
    to_photo = cv2.invertAffineTransform(native)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64)
    points = corners @ to_photo.T
    height, width = rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int) + 1, (width, height))
    if x1 <= x0 or y1 <= y0:
        return
    shifted = to_photo - np.array([[0.0, 0.0, x0], [0.0, 0.0, y0]])
    warped = cv2.warpAffine(correction, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)
    region = rgb[y0:y1, x0:x1]
    np.clip(region + warped, 0.0, 1.0, out=region)
