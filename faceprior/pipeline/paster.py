"""Putting restored faces back: the upscaled photo, masks, colours, detail, blending
(:class:`FacePaster`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face.types import FaceDetection
from .options import PasteOptions
from .results import FaceBatch


@dataclass
class Canvas:
    """A photo being restored: the ``upscaled`` RGB (the background), its ``alpha``, the
    (x, y) ``scale`` from input pixels, and ``paste`` accumulating the faces (a
    :class:`~faceprior.face.paste.PasteCanvas`)."""

    upscaled: np.ndarray
    alpha: np.ndarray | None
    scale: tuple[float, float]
    paste: object


class FacePaster:
    """Pastes restored faces into the photo, upscaled by ``options.upscale``.

    Loads what it needs once: the background network (``options.background``, in
    ``precision``) and the mask source (``face``: made from the landmarks, no weights;
    ``rectangle``; ``parsing``; or a callable). Faces are independent: each one's colours
    are matched to its own crop, and the canvas only sums them, so faces can be pasted as
    soon as they are restored. ``background_name`` is what the report calls the background.
    """

    def __init__(
        self,
        options: PasteOptions | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        offline: bool = False,
    ) -> None:
        from ..face.background import load_background
        from ..hub.download import offline as offline_scope

        self.options = PasteOptions() if options is None else options
        options = self.options
        with offline_scope(offline):
            self.background, self.background_name = load_background(
                options.background, options.upscale, options.tile_size, device, precision
            )
            self.mask_source = _mask_source(options.mask, options.mask_parser, device)

    def colour_kind(self, rgb: np.ndarray) -> str:
        """``grey``, ``near-grey`` or ``colour`` (:mod:`faceprior.face.grey`); always
        ``colour`` with ``keep_grey`` off."""
        from ..face.grey import colour_kind

        return colour_kind(rgb) if self.options.keep_grey else "colour"

    def canvas(self, rgb: np.ndarray, alpha: np.ndarray | None) -> Canvas:
        """The photo upscaled (by the background network, else Lanczos), ready for faces."""
        from ..face.paste import PasteCanvas

        upscaled, alpha, scale = _upscale(rgb, alpha, self.options.upscale, self.background)
        return Canvas(upscaled, alpha, scale, PasteCanvas(upscaled))

    def masks(
        self, detections: list[FaceDetection], batch: FaceBatch, faces: np.ndarray, conventions
    ) -> np.ndarray:
        """Where each restored face of ``batch`` is pasted, (N, S, S) in [0, 1]."""
        if self.mask_source is None:
            return _face_masks([detections[i] for i in batch.indices], batch.matrices, conventions)
        return self.mask_source(faces)

    def paste(
        self,
        canvas: Canvas,
        batch: FaceBatch,
        faces: np.ndarray,
        masks: np.ndarray,
        valid: np.ndarray,
        strengths: list[float],
    ) -> tuple[np.ndarray, list[float]]:
        """Add a batch's restored faces to ``canvas`` (colours matched, detail kept, each at its
        strength); returns the masks used and each face's paste scale."""
        from ..face.stages import paste_faces

        options = self.options
        return paste_faces(
            canvas.paste,
            canvas.scale,
            batch.crops,
            faces,
            masks,
            valid,
            batch.matrices,
            options.color_match,
            strengths,
            options.keep_detail,
        )

    def result(self, canvas: Canvas, kind: str) -> np.ndarray:
        """The restored RGB photo; photos without colour keep the input's chroma."""
        from ..face.grey import apply_colour_kind

        return apply_colour_kind(kind, canvas.paste.result(), canvas.upscaled)

    def detail_note(self, paste_scale: float, model_size: int) -> str:
        """Why a face looks the way it does, for the report."""
        from ..face.detail import MIN_SCALE

        if paste_scale <= MIN_SCALE:
            return f"restored: the face fits the model's {model_size} px"
        if not self.options.keep_detail:
            return f"restored, upsampled {paste_scale:.1f}x (keep_detail off)"
        return (
            f"restored, with the photo's own detail kept where sharper: the face spans "
            f"{paste_scale:.1f}x the model's {model_size} px"
        )


def drop_broken(faces: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Faces with NaN or infinite values (a damaged model) are zeroed and marked outside the
    photo, in place, so they paste nothing; returns which were."""
    broken = ~np.isfinite(faces).reshape(len(faces), -1).all(axis=1)
    faces[broken], valid[broken] = 0.0, 0.0
    return broken


def _mask_source(mask, mask_parser, device: str):
    """A callable mapping restored faces to masks; None for ``face`` (made from landmarks)."""
    from ..face.masks import ParsingMask, RectangleMask

    if callable(mask):
        return mask
    if mask == "face":
        return None
    if mask == "rectangle":
        return RectangleMask()
    return ParsingMask(mask_parser, device=device)


def _face_masks(
    detections: list[FaceDetection], matrices: list[np.ndarray], conventions
) -> np.ndarray:
    """Face-shaped masks (N, S, S) at the model's output size, from each face's landmarks."""
    from ..face.masks import face_shape_mask

    size = conventions.output_size
    ratio = size / conventions.input_size
    masks = np.zeros((len(detections), size, size), np.float32)
    for index, (detection, matrix) in enumerate(zip(detections, matrices, strict=True)):
        points = detection.landmarks @ matrix[:, :2].T + matrix[:, 2]
        masks[index] = face_shape_mask((points + 0.5) * ratio - 0.5, size)
    return masks


def _upscale(rgb: np.ndarray, alpha: np.ndarray | None, factor: float, background=None):
    """Upscaled photo (by ``background``, a BackgroundUpsampler, else Lanczos) and alpha
    (Lanczos), and the (x, y) scale actually applied."""
    if factor == 1 and background is None:
        return rgb, alpha, (1.0, 1.0)
    from ..face.background import upscale_photo

    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    scale = (size[0] / width, size[1] / height)
    alpha = None if alpha is None else upscale_photo(alpha, size, None)
    return upscale_photo(rgb, size, background), alpha, scale
