"""The pipeline's stages on float32 RGB photos: align, restore in batches, paste back.

Kept apart from ``faceprior.pipeline`` (which handles files, options and results) so each stage
can be tested with plain arrays.
"""

from __future__ import annotations

import numpy as np

from .color import transfer_color
from .paste import PasteCanvas, compose, paste_scale, resize_matrix
from .types import FaceDetection


def align_faces(
    rgb: np.ndarray, detections: list[FaceDetection], template: str, size: int
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Aligned crops (N, S, S, 3), photo-to-crop matrices, and where each crop saw the photo.

    The crops are warped bilinearly with a black border as in GPEN; ``valid`` (N, S, S) is 1
    where a crop pixel came from inside the photo, so paste-back and colour matching ignore
    the border.
    """
    from .align import align_face

    crops = np.zeros((len(detections), size, size, 3), np.float32)
    valid = np.zeros((len(detections), size, size), np.float32)
    matrices = []
    for index, detection in enumerate(detections):
        crops[index], matrix, inverse = align_face(rgb, detection.landmarks, template, size)
        valid[index] = _inside_photo(inverse, rgb.shape, size)
        matrices.append(matrix)
    return crops, matrices, valid


def _inside_photo(inverse: np.ndarray, shape: tuple[int, ...], size: int) -> np.ndarray:
    """What a bilinear warp of an all-ones photo with a zero border gives, without the warp."""
    grid = np.arange(size, dtype=np.float32)
    x = inverse[0, 0] * grid[None, :] + inverse[0, 1] * grid[:, None] + inverse[0, 2]
    y = inverse[1, 0] * grid[None, :] + inverse[1, 1] * grid[:, None] + inverse[1, 2]
    height, width = shape[:2]
    weight_x = np.clip(x + 1, 0, 1) * np.clip(width - x, 0, 1)
    weight_y = np.clip(y + 1, 0, 1) * np.clip(height - y, 0, 1)
    return (weight_x * weight_y).astype(np.float32)


def restore_batches(model, crops: np.ndarray, batch_size: int, device) -> np.ndarray:
    """Run the restoration model on (N, S, S, 3) crops in [0, 1], ``batch_size`` at a time."""
    import torch

    from ..models.restorer import from_unit, to_unit

    size = model.conventions.output_size
    out = np.zeros((len(crops), size, size, 3), np.float32)
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            chunk = torch.from_numpy(crops[start : start + batch_size]).to(device)
            faces = model(from_unit(chunk.permute(0, 3, 1, 2)))
            faces = to_unit(faces.float()).permute(0, 2, 3, 1)
            out[start : start + len(chunk)] = faces.cpu().numpy()
    return out


def paste_faces(
    paste: PasteCanvas,
    scale: tuple[float, float],
    crops: np.ndarray,
    restored: np.ndarray,
    masks: np.ndarray,
    valid: np.ndarray,
    matrices: list[np.ndarray],
    color_match: str,
    strengths: list[float] | None = None,
    keep_detail: bool = False,
) -> tuple[np.ndarray, list[float]]:
    """Add restored faces to ``paste``, whose canvas is the photo upscaled by ``scale``.

    ``color_match``: a transfer of :data:`faceprior.face.color.COLOR_MATCHES`; ``strengths``:
    one per face (default 1); ``keep_detail``: keep the photo's sharper detail in faces pasted
    larger than the model's resolution. Returns the masks actually used (cut where the crop
    left the photo) and each face's paste scale (output pixels per model pixel).
    """
    import cv2

    crop_size, out_size = crops.shape[1], restored.shape[1]
    to_canvas = resize_matrix(*scale)
    to_crop = resize_matrix(crop_size / out_size)
    used = np.empty_like(masks)
    scales = []
    for index, matrix in enumerate(matrices):
        crop, face, inside = crops[index], restored[index], valid[index]
        if out_size != crop_size:
            crop = cv2.resize(crop, (out_size, out_size), interpolation=cv2.INTER_CUBIC)
            inside = cv2.resize(inside, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
        inside = np.clip(inside, 0.0, 1.0)
        used[index] = masks[index] * inside
        face = transfer_color(color_match, face, crop, used[index], inside)
        crop_to_canvas = compose(to_canvas, compose(cv2.invertAffineTransform(matrix), to_crop))
        strength = 1.0 if strengths is None else float(strengths[index])
        paste.add(face, used[index], crop_to_canvas, strength, keep_detail)
        scales.append(paste_scale(crop_to_canvas))
    return used, scales


def restore_aligned_crop(
    model,
    rgb: np.ndarray,
    device,
    strength: float,
    color_match: str,
) -> tuple[np.ndarray, np.ndarray]:
    """An aligned face resized to the model's input size and restored at its output size.

    Returns the restored face and the model-size input crop.
    """
    conventions = model.conventions
    crop = resize_plane(rgb, conventions.input_size)
    face = restore_batches(model, crop[None], 1, device)[0]
    original = resize_plane(rgb, conventions.output_size)
    everywhere = np.ones(face.shape[:2], np.float32)
    face = transfer_color(color_match, face, original, everywhere, everywhere)
    return np.clip(original + strength * (face - original), 0.0, 1.0), crop


def resize_plane(image: np.ndarray, size: int) -> np.ndarray:
    """Area averaging to shrink, Lanczos to enlarge (no aliasing, no blur)."""
    import cv2

    height, width = image.shape[:2]
    if (width, height) == (size, size):
        return image
    shrink = size < min(width, height)
    flags = cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4
    return np.clip(cv2.resize(image, (size, size), interpolation=flags), 0.0, 1.0)
