"""Never blur a face: keep the photo's own detail where the restored face has less.

A model restores at its own resolution (128 px for the bundled model). A face that spans more
output pixels than that is pasted upsampled, so its finest frequencies are simply missing: a
sharp selfie would come back as a soft face inside sharp hair. For such faces the pasted face
is rebuilt band by band: the coarse band (colour and lighting, already the input's own after
the default wavelet colour transfer) comes from the restoration, and each finer band, per pixel,
from the photo wherever the photo's band still has at least a quarter of the restoration's energy
there, else from the restoration. A blurred input has little fine energy and gets the restored
detail; a sharp input keeps its own (the GAN's exaggerated contrast, such as darkened eyes and
lips, does not count as "sharper"). This is the focus-stacking rule with a bias towards the
input, and soft weights so sources never switch abruptly.
"""

from __future__ import annotations

import numpy as np

# Band edges, as Gaussian sigmas in multiples of the paste scale (output pixels per model
# pixel): below about half a model pixel the upsampled restoration has no content at all, the
# model's own output is soft up to about two of its pixels, and above four (the wavelet colour
# transfer's split, 1/32 of a 128 px crop) the band holds colour and lighting only.
BAND_SIGMAS = (0.5, 2.0, 4.0)
# The photo's band is kept where its energy exceeds this fraction of the restoration's.
INPUT_BIAS = 0.25
# Band energies are compared after smoothing over this many band sigmas (a local window).
ENERGY_WINDOW = 2.0
# Scales at or below this paste the model's full resolution: nothing is missing.
MIN_SCALE = 1.0


def keep_sharper_detail(restored: np.ndarray, original: np.ndarray, scale: float) -> np.ndarray:
    """``restored`` (H, W, 3) with its fine bands taken from ``original`` where that is sharper.

    ``scale`` is how many output pixels one model pixel covers; at or below
    :data:`MIN_SCALE` the restoration is returned unchanged.
    """
    if scale <= MIN_SCALE:
        return restored
    import cv2

    def blur(image: np.ndarray, sigma: float) -> np.ndarray:
        # Wide blurs run on a shrunk copy: a 2000 px selfie face would otherwise take seconds.
        shrink = max(1, int(sigma // 3))
        if shrink == 1:
            return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        height, width = image.shape[:2]
        small = cv2.resize(
            image,
            (max(1, width // shrink), max(1, height // shrink)),
            interpolation=cv2.INTER_AREA,
        )
        small = cv2.GaussianBlur(small, (0, 0), sigma / shrink, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)

    restored = restored.astype(np.float32, copy=False)
    original = original.astype(np.float32, copy=False)
    out_low_r, out_low_o = restored, original
    result = np.zeros_like(restored)
    for factor in BAND_SIGMAS:
        sigma = max(0.5, factor * scale)
        low_r, low_o = blur(out_low_r, sigma), blur(out_low_o, sigma)
        band_r, band_o = out_low_r - low_r, out_low_o - low_o
        energy_r = blur((band_r**2).sum(axis=2), ENERGY_WINDOW * sigma)
        energy_o = blur((band_o**2).sum(axis=2), ENERGY_WINDOW * sigma)
        energy_r = energy_r * INPUT_BIAS
        weight_o = (energy_o**2 / np.maximum(energy_o**2 + energy_r**2, 1e-20))[..., None]
        result += band_r + weight_o * (band_o - band_r)
        out_low_r, out_low_o = low_r, low_o
    return np.clip(result + out_low_r, 0.0, 1.0)


def laplacian_variance(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the luminance (under ``mask`` > 0.5): a sharpness score."""
    import cv2

    from .grey import luminance

    grey = image if image.ndim == 2 else luminance(image)
    laplacian = cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)
    values = laplacian if mask is None else laplacian[mask > 0.5]
    return float(values.var()) if values.size else 0.0
