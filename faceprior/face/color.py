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

    if float(weights.sum()) <= 1e-6:
        return face
    lab_face = cv2.cvtColor(np.ascontiguousarray(face, np.float32), cv2.COLOR_RGB2Lab)
    lab_ref = cv2.cvtColor(np.ascontiguousarray(reference, np.float32), cv2.COLOR_RGB2Lab)
    matched = _match_moments(lab_face, lab_ref, weights).astype(np.float32)
    return np.clip(cv2.cvtColor(matched, cv2.COLOR_Lab2RGB), 0.0, 1.0)


def _match_moments(face: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``face`` with each channel's mean/std under ``weights`` (not all zero) moved to
    ``reference``'s; the spread changes by at most :data:`MAX_SPREAD_RATIO`."""
    w = (weights / float(weights.sum()))[..., None]
    mean_face = (face * w).sum(axis=(0, 1))
    mean_ref = (reference * w).sum(axis=(0, 1))
    std_face = np.sqrt(((face - mean_face) ** 2 * w).sum(axis=(0, 1)))
    std_ref = np.sqrt(((reference - mean_ref) ** 2 * w).sum(axis=(0, 1)))
    ratio = np.clip(std_ref / np.maximum(std_face, 1e-6), 1 / MAX_SPREAD_RATIO, MAX_SPREAD_RATIO)
    return (face - mean_face) * ratio + mean_ref


# Colour transfers the pipeline offers; ``wavelet`` is the default (measured in
# benchmarks/do_no_harm.py: closest to the ground truth's colours, no halo).
COLOR_MATCHES = ("none", "lab", "adain", "wavelet")
# Standard deviation of the low-pass that ``wavelet`` takes from the input, as a fraction of
# the crop side: coarse enough to carry only colour and lighting, not the restored detail.
WAVELET_SIGMA = 1 / 32


def match_adain(face: np.ndarray, reference: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AdaIN in RGB: each channel of ``face`` gets ``reference``'s mean/std under ``weights``."""
    if float(weights.sum()) <= 1e-6:
        return face
    return np.clip(_match_moments(face, reference, weights), 0.0, 1.0).astype(np.float32)


def match_wavelet(
    face: np.ndarray, reference: np.ndarray, inside: np.ndarray, sigma: float = WAVELET_SIGMA
) -> np.ndarray:
    """Low frequencies of ``reference``, high frequencies of ``face`` (as StableSR's colour fix).

    The split is a Gaussian of ``sigma`` times the side. Colour and lighting live in the low
    band, which blur, down-scaling and JPEG leave intact in the input, so the input supplies
    them; the restored detail is kept. The reference's low pass is a normalised convolution
    over ``inside`` (where the crop saw the photo) so the crop's black border does not darken
    it; ``face`` is returned unchanged where no photo pixel is near.
    """
    import cv2

    blur = max(0.5, sigma * face.shape[0])

    def low(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), blur, borderType=cv2.BORDER_REFLECT)

    inside = (inside > 1e-3).astype(np.float32)
    support = low(inside)
    reference_low = low(reference * inside[..., None]) / np.maximum(support, 1e-6)[..., None]
    face_low = low(face * inside[..., None]) / np.maximum(support, 1e-6)[..., None]
    shift = (reference_low - face_low) * (support > 1e-3)[..., None]
    return np.clip(face + shift, 0.0, 1.0).astype(np.float32)


def transfer_color(
    kind: str, face: np.ndarray, reference: np.ndarray, weights: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    """Apply the colour transfer ``kind`` (one of :data:`COLOR_MATCHES`) to one face.

    ``weights`` (the paste mask) selects where ``lab``/``adain`` measure their statistics;
    ``inside`` says where the reference crop saw the photo.
    """
    if kind == "lab":
        return match_color(face, reference, weights)
    if kind == "adain":
        return match_adain(face, reference, weights)
    if kind == "wavelet":
        return match_wavelet(face, reference, inside)
    return face
