"""Colour matching of a restored face to the original photo.

GAN priors pull faces toward the colour statistics of their training set (FFHQ); after a
restoration a face can look warmer or paler than the rest of the photo. Matching the mean and
standard deviation of each CIELAB channel, measured inside the paste-back mask, to those of
the original aligned crop keeps the restored detail while restoring the photo's colour cast
and exposure. The spread ratio is limited so a flat crop cannot blow the contrast up.
"""

from __future__ import annotations

import numpy as np

# Largest factor by which matching may stretch or shrink a channel's spread.
MAX_SPREAD_RATIO = 2.0


def match_color(face: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Give ``face`` (S, S, 3) float RGB [0, 1] the Lab mean/std of ``reference`` under ``weights``.

    ``weights`` (S, S) in [0, 1] selects where the statistics are measured (the mask, zero where
    the reference crop fell outside the photo). Returns ``face`` unchanged if it is all zero.
    """
    import cv2

    total = float(weights.sum())
    if total <= 1e-6:
        return face
    w = (weights / total)[..., None]
    lab_face = cv2.cvtColor(np.ascontiguousarray(face, np.float32), cv2.COLOR_RGB2Lab)
    lab_ref = cv2.cvtColor(np.ascontiguousarray(reference, np.float32), cv2.COLOR_RGB2Lab)
    mean_face = (lab_face * w).sum(axis=(0, 1))
    mean_ref = (lab_ref * w).sum(axis=(0, 1))
    std_face = np.sqrt(((lab_face - mean_face) ** 2 * w).sum(axis=(0, 1)))
    std_ref = np.sqrt(((lab_ref - mean_ref) ** 2 * w).sum(axis=(0, 1)))
    ratio = np.clip(std_ref / np.maximum(std_face, 1e-6), 1 / MAX_SPREAD_RATIO, MAX_SPREAD_RATIO)
    matched = ((lab_face - mean_face) * ratio + mean_ref).astype(np.float32)
    return np.clip(cv2.cvtColor(matched, cv2.COLOR_Lab2RGB), 0.0, 1.0)
