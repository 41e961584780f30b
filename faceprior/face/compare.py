"""Before and after, side by side: the input (upscaled like the output) | the output.

Each restored face is boxed and numbered on both halves with the index the report gives it
(the number ``--faces`` takes), so a user can see what changed and name the faces to keep.
"""

from __future__ import annotations

import numpy as np

# Box colour (RGB) and the gap between the halves, in pixels.
BOX_COLOUR = (255, 200, 0)
GAP = 8


def side_by_side(original: np.ndarray, result) -> np.ndarray:
    """uint8 RGB (H, 2W + gap, 3): ``original`` resized to the output | ``result.image``.

    ``original`` and ``result.image`` may be grey, RGB or RGBA, 8 or 16 bit; alpha is dropped
    (composited on grey), so the picture shows what the eye sees.
    """
    import cv2

    after = _as_rgb8(result.image)
    height, width = after.shape[:2]
    before = _as_rgb8(original)
    if before.shape[:2] != (height, width):
        before = cv2.resize(before, (width, height), interpolation=cv2.INTER_LANCZOS4)
    scale_x = width / max(result.input_size[0], 1)
    scale_y = height / max(result.input_size[1], 1)
    thickness = max(1, round(min(height, width) / 400))
    for half in (before, after):
        for face in result.faces:
            x0, y0, x1, y1 = face.box * [scale_x, scale_y, scale_x, scale_y]
            corner = (int(round(x0)), int(round(y0)))
            cv2.rectangle(half, corner, (int(round(x1)), int(round(y1))), BOX_COLOUR, thickness)
            font = max(0.4, (x1 - x0) / 120)
            label = (corner[0] + 2, max(corner[1] - 4, int(14 * font)))
            cv2.putText(
                half,
                str(face.index),
                label,
                cv2.FONT_HERSHEY_SIMPLEX,
                font,
                BOX_COLOUR,
                max(1, thickness),
                cv2.LINE_AA,
            )
    gap = np.full((height, GAP, 3), 255, np.uint8)
    return np.concatenate([before, gap, after], axis=1)


def _as_rgb8(pixels: np.ndarray) -> np.ndarray:
    """8-bit RGB copy of grey / RGB / RGBA pixels of any integer or float [0, 1] type."""
    values = pixels.astype(np.float32)
    if np.issubdtype(pixels.dtype, np.integer):
        values /= float(np.iinfo(pixels.dtype).max)
    if values.ndim == 2:
        values = values[..., None]
    if values.shape[2] in (2, 4):  # grey+alpha or RGBA: composite on mid grey
        alpha = values[..., -1:]
        values = values[..., :-1] * alpha + 0.5 * (1 - alpha)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    return np.ascontiguousarray(np.clip(np.rint(values * 255), 0, 255).astype(np.uint8))
