"""Temporal blending of a track's restored faces, in aligned (crop) space.

A GAN-prior restorer hallucinates detail (pores, hair strands, eyelashes) afresh for every
frame, so even a still face shimmers. Each frame's restored face is therefore averaged with
the track's previous (already blended) face, after warping it into this frame's crop with the
known change of alignment, as a recursive filter. The weight of the past is motion-aware, per
pixel: where the *input* crop changed (the mouth opens, an eye blinks, light changes) beyond
what noise explains, the past gets no weight and the new face shows at once; where the input
stayed the same, the past gets up to ``strength``. Nothing is blended across a scene cut or
between tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face.paste import compose, resize_matrix


@dataclass
class BlendSettings:
    """``strength``: largest weight of the previous face (0 turns blending off);
    ``motion_scale``: change of the input crop (blurred, 0..1 per pixel) at which the weight
    has fallen to ``strength / e`` -- above the noise of a degraded video, below real motion.
    """

    strength: float = 0.7
    motion_scale: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError(f"temporal strength must be in [0, 1), got {self.strength}")
        if self.motion_scale <= 0:
            raise ValueError(f"motion_scale must be > 0, got {self.motion_scale}")


def blend_face(
    state: dict,
    crop: np.ndarray,
    restored: np.ndarray,
    matrix: np.ndarray,
    settings: BlendSettings,
) -> np.ndarray:
    """This frame's face blended with the track's past; ``state`` is the track's memory.

    ``crop`` (S, S, 3) is the aligned input, ``restored`` (R, R, 3) the model's output and
    ``matrix`` the photo-to-crop map.
    """
    import cv2

    previous = state.get("crop")
    blended = restored
    if previous is not None and settings.strength > 0:
        size, out_size = crop.shape[0], restored.shape[0]
        # previous crop pixels -> this crop's pixels, through the photo
        relative = compose(matrix, cv2.invertAffineTransform(state["matrix"]))
        inputs = cv2.warpAffine(previous, relative, (size, size), flags=cv2.INTER_LINEAR)
        weight = motion_weight(crop, inputs, settings)
        weight *= covered(relative, size)
        if out_size != size:
            weight = cv2.resize(weight, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
            scale = out_size / size
            relative = compose(resize_matrix(scale), compose(relative, resize_matrix(1 / scale)))
        past = warp_crop(state["restored"], relative, out_size)
        blended = past * weight[..., None] + restored * (1.0 - weight[..., None])
        state["weight"] = float(weight.mean())
    state.update(crop=crop, restored=blended, matrix=matrix)
    return blended.astype(np.float32)


def blend_crop(state: dict, crop: np.ndarray, matrix: np.ndarray, settings: BlendSettings):
    """The aligned input averaged over time like the restored face (same motion test).

    Colour matching takes the input crop's colours (or low frequencies); from a noisy frame
    they flicker, from this average they do not. Call before :func:`blend_face`, which
    needs the frame's own crop.
    """
    import cv2

    previous = state.get("smooth_crop")
    smoothed = crop
    if previous is not None and settings.strength > 0:
        size = crop.shape[0]
        relative = compose(matrix, cv2.invertAffineTransform(state["matrix"]))
        past = warp_crop(previous, relative, size)
        weight = motion_weight(crop, warp_crop(state["crop"], relative, size), settings)
        smoothed = past * weight[..., None] + crop * (1.0 - weight[..., None])
    state["smooth_crop"] = smoothed.astype(np.float32)
    return state["smooth_crop"]


def motion_weight(crop: np.ndarray, previous: np.ndarray, settings: BlendSettings) -> np.ndarray:
    """Per-pixel weight of the past (S, S): ``strength`` where the input crop stayed the same
    as ``previous`` (already warped into this crop), falling to 0 where it changed beyond noise.
    """
    import cv2

    size = crop.shape[0]
    change = np.abs(crop - previous).mean(axis=2)
    change = cv2.GaussianBlur(change, (0, 0), sigmaX=max(1.0, size / 64))
    return settings.strength * np.exp(-((change / settings.motion_scale) ** 2))


def covered(relative: np.ndarray, size: int) -> np.ndarray:
    """Where the past, warped by ``relative``, covers this (S, S) crop fully (bool): elsewhere
    it would be border, which must get no weight."""
    import cv2

    inside = cv2.warpAffine(
        np.ones((size, size), np.float32), relative, (size, size), flags=cv2.INTER_LINEAR
    )
    return inside >= 0.999


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp unless the move is below a hundredth of a pixel (no resampling blur then)."""
    import cv2

    if np.abs(matrix - np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).max() < 0.01:
        return image
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
