"""Grey in, grey out: photos without colour are restored in luminance only.

GAN priors trained on colour faces tint a black-and-white face (blue eye sockets, pink skin);
colour matching only weakens the tint. So before pasting, a photo is classified:

- ``grey``: R = G = B at every pixel (scans saved as RGB). The output keeps R = G = B exactly:
  each pixel becomes the luminance of the restored result, copied to the three channels.
- ``near-grey``: little colour everywhere (a scanner's slight cast), or one hue only, whose
  strength follows the brightness (sepia and other toned prints).
  The output takes the restored luminance and the input's own chroma (YCrCb), so no pixel gets
  more colour than the (upscaled) input had there.
- ``colour``: everything else, restored as is.

Colourising a grey photo is a separate model's job, never a side effect of restoration.
"""

from __future__ import annotations

import numpy as np

# Near-grey: the per-pixel chroma (max - min of R, G, B) stays under these, as fractions of the
# full range. A sepia print reaches about 0.1 in its highlights; skin in a colour photo is
# 0.15-0.35, so a photo with a visible face in colour is never classified near-grey.
NEAR_GREY_P99 = 0.15
NEAR_GREY_MEAN = 0.06
# Toned: the chroma (Cr, Cb) of every pixel lies on one line through grey. The spread across
# that line is 0.0008 for a synthetic sepia and 0.006-0.04 for the colour photos of
# ../shared/data/faces (a low-saturation selfie: 0.012).
TONED_SPREAD = 0.004
COLOUR_KINDS = ("grey", "near-grey", "colour")


def chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel colourfulness: max - min of the three channels, (H, W)."""
    return rgb.max(axis=2) - rgb.min(axis=2)


def colour_kind(rgb: np.ndarray) -> str:
    """``grey``, ``near-grey`` or ``colour`` for a float RGB photo (H, W, 3) in [0, 1]."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return "grey"
    # A subsample is enough for the statistics and keeps this cheap on 12-Mpixel photos.
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
    sample = rgb[::step, ::step].astype(np.float32)
    spread = chroma(sample)
    if float(spread.mean()) <= NEAR_GREY_MEAN and np.percentile(spread, 99) <= NEAR_GREY_P99:
        return "near-grey"
    return "near-grey" if _off_hue_spread(sample) <= TONED_SPREAD else "colour"


def _off_hue_spread(rgb: np.ndarray) -> float:
    """RMS distance of the pixels' (Cr, Cb) from the best line through grey (0: one hue)."""
    import cv2

    offsets = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].reshape(-1, 2) - 0.5
    second_moment = offsets.T @ offsets / max(len(offsets), 1)
    return float(np.sqrt(max(np.linalg.eigvalsh(second_moment)[0], 0.0)))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (the Y of YCrCb), (H, W) float32."""
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return rgb.astype(np.float32, copy=False) @ weights


def grey_output(restored: np.ndarray) -> np.ndarray:
    """The restored photo's luminance in all three channels: R = G = B exactly."""
    grey = np.clip(luminance(restored), 0.0, 1.0)
    return np.repeat(grey[..., None], 3, axis=2)


def keep_input_chroma(restored: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Luminance of ``restored`` with the chroma (Cr, Cb) of ``original``, same shape.

    In YCrCb, max - min of R, G, B depends on Cr and Cb only, and clipping to [0, 1] can only
    lower it, so no pixel comes out more colourful than ``original`` at that pixel.
    """
    import cv2

    ycrcb = cv2.cvtColor(np.ascontiguousarray(original, np.float32), cv2.COLOR_RGB2YCrCb)
    ycrcb[..., 0] = luminance(restored)
    return np.clip(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB), 0.0, 1.0)


def apply_colour_kind(kind: str, restored: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The restored photo made to have no more colour than ``original`` (per its ``kind``)."""
    if kind == "grey":
        return grey_output(restored)
    if kind == "near-grey":
        return keep_input_chroma(restored, original)
    return restored
