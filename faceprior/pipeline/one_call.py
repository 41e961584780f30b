"""``faceprior.restore``: one photo in, one :class:`~faceprior.pipeline.results.Result` out."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from ..face.background import DEFAULT_TILE_SIZE
from ..face.types import DEFAULT_DETECTOR
from ..io.images import DEFAULT_MAX_PIXELS
from .choose import DEFAULT_MODEL
from .options import DEFAULT_COLOR_MATCH, DEFAULT_MASK
from .restorer import FaceRestorer, ImageInput
from .results import Result


def restore(
    image: ImageInput,
    model: str | os.PathLike | object = DEFAULT_MODEL,
    device: str = "auto",
    upscale: float = 1.0,
    aligned: bool = False,
    precision: str = "fp32",
    *,
    detector: str | object = DEFAULT_DETECTOR,
    detector_weights: str | os.PathLike | None = None,
    score_threshold: float | None = None,
    nms_threshold: float = 0.4,
    faces: str | Sequence[int] = "all",
    min_face_size: float = 0.0,
    batch_size: int | None = None,
    strength: float | Sequence[float] = 1.0,
    color_match: bool | str = DEFAULT_COLOR_MATCH,
    mask: str | Callable[[np.ndarray], np.ndarray] = DEFAULT_MASK,
    mask_parser: str | os.PathLike | None = None,
    fidelity: float | None = None,
    parsing_model: str | None = None,
    small_model: str | os.PathLike | object | None = None,
    small_face_size: float | None = None,
    compile: bool = False,
    reuse_memory: bool = True,
    keep_faces: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_grey: bool = True,
    keep_detail: bool = True,
    offline: bool = False,
    background: str | os.PathLike | object = "lanczos",
    tile_size: int = DEFAULT_TILE_SIZE,
) -> Result:
    """One photo (path or RGB array) in, :class:`Result` out; every option as :class:`FaceRestorer`.

    ``aligned``: the photo is an aligned face crop (:meth:`FaceRestorer.restore_aligned`).
    """
    restorer = FaceRestorer(
        model,
        detector=detector,
        detector_weights=detector_weights,
        device=device,
        score_threshold=score_threshold,
        nms_threshold=nms_threshold,
        faces=faces,
        min_face_size=min_face_size,
        upscale=upscale,
        batch_size=batch_size,
        strength=strength,
        color_match=color_match,
        mask=mask,
        mask_parser=mask_parser,
        fidelity=fidelity,
        parsing_model=parsing_model,
        small_model=small_model,
        small_face_size=small_face_size,
        precision=precision,
        compile=compile,
        reuse_memory=reuse_memory,
        keep_faces=keep_faces,
        max_pixels=max_pixels,
        keep_grey=keep_grey,
        keep_detail=keep_detail,
        offline=offline,
        background=background,
        tile_size=tile_size,
    )
    return restorer.restore_aligned(image) if aligned else restorer.restore(image)
