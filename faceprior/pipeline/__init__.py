"""The photo pipeline: find faces, align, restore in batches, paste back into the upscaled photo.

:class:`FaceRestorer` keeps the restoration model, detector and mask source loaded across
photos; :func:`restore` is the one-call form. Images are processed as float32 RGB in [0, 1]
whatever their bit depth, so 16-bit photos keep their precision; photos without colour are
restored in luminance only (:mod:`faceprior.face.grey`), the alpha plane is only resampled.
The defaults do no harm whatever the model: a face-shaped mask, the input's colours (wavelet
transfer), and the photo's own detail kept in faces larger than the model's resolution
(:mod:`faceprior.face.detail`). See docs/restore.md.

The modules, in the order a photo goes through them:

* :mod:`.options` -- one options dataclass per stage and :class:`PipelineOptions` grouping them;
* :mod:`.choose` -- which restoration model a name means (the ``"auto"`` policy);
* :mod:`.finder` -- :class:`FaceFinder`: detect, drop small faces, choose;
* :mod:`.runner` -- :class:`CropRestorer`: plan the forward passes, align, run the model(s);
* :mod:`.paster` -- :class:`FacePaster`: upscale the photo, mask, match colours, paste;
* :mod:`.report` -- what the report says about each face;
* :mod:`.results` -- the data handed between stages and back (:class:`Result`);
* :mod:`.restorer` -- :class:`FaceRestorer`, built from the three parts;
* :mod:`.one_call` -- :func:`restore`.
"""

from __future__ import annotations

from ..errors import ModelUnavailableError
from ..face.types import DEFAULT_DETECTOR
from .choose import AUTO_MODELS, DEFAULT_MODEL, OfflineFallbackWarning, load_restorer
from .finder import FaceFinder
from .one_call import restore
from .options import (
    DEFAULT_COLOR_MATCH,
    DEFAULT_MASK,
    FACE_SELECTIONS,
    MASK_KINDS,
    FindOptions,
    PasteOptions,
    PipelineOptions,
    RunOptions,
    default_batch_size,
)
from .paster import FacePaster
from .restorer import FaceRefiner, FaceRestorer, ImageInput
from .results import FaceBatch, FaceResult, PreparedPhoto, RestoredCrops, Result
from .runner import CropRestorer

# The name tests/test_bad_inputs.py (test 20) patches to prove that arguments are checked
# before any model loads; the loading the parts call is `faceprior.pipeline.runner.load_restorer`,
# which that test should patch instead (then this alias goes).
_load_model = load_restorer

__all__ = [
    "AUTO_MODELS",
    "DEFAULT_COLOR_MATCH",
    "DEFAULT_DETECTOR",
    "DEFAULT_MASK",
    "DEFAULT_MODEL",
    "FACE_SELECTIONS",
    "MASK_KINDS",
    "CropRestorer",
    "FaceBatch",
    "FaceFinder",
    "FacePaster",
    "FaceRefiner",
    "FaceRestorer",
    "FaceResult",
    "FindOptions",
    "ImageInput",
    "ModelUnavailableError",
    "OfflineFallbackWarning",
    "PasteOptions",
    "PipelineOptions",
    "PreparedPhoto",
    "RestoredCrops",
    "Result",
    "RunOptions",
    "default_batch_size",
    "restore",
]
