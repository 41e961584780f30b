"""What each stage of the pipeline is asked to do: one frozen dataclass per part, checked
when built (so a wrong value fails before any model is loaded), and :class:`PipelineOptions`
grouping them with the settings every part shares (device, offline).

:class:`FindOptions` goes to :class:`~faceprior.pipeline.finder.FaceFinder`,
:class:`RunOptions` to :class:`~faceprior.pipeline.runner.CropRestorer`, :class:`PasteOptions`
to :class:`~faceprior.pipeline.paster.FacePaster`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..checks import number, resolve_device
from ..errors import ArgumentError
from ..face.background import DEFAULT_TILE_SIZE
from ..face.color import COLOR_MATCHES
from ..face.types import DEFAULT_DETECTOR
from ..io.images import DEFAULT_MAX_PIXELS
from ..runtime import check_precision
from .choose import DEFAULT_MODEL

if TYPE_CHECKING:  # the models import torch, which `faceprior --help` must not load
    from ..models.restorer import RestorerOptions

FACE_SELECTIONS = ("all", "largest", "center")
# "face": an ellipse from the five landmarks (no weights needed; never pastes the crop's
# re-synthesised background); "rectangle": GPEN's soft square; "parsing": ParseNet's regions.
MASK_KINDS = ("face", "rectangle", "parsing")
DEFAULT_MASK = "face"
# Wavelet low-frequency transfer keeps the input's colours best (benchmarks/do_no_harm.py).
DEFAULT_COLOR_MATCH = "wavelet"


@dataclass(frozen=True)
class FindOptions:
    """Which faces of a photo are restored.

    ``detector``: zoo or architecture name (weights from ``detector_weights`` or the zoo) or a
    loaded detector; ``score_threshold`` (default: the detector's) and ``nms_threshold`` go
    to it. ``faces``: ``all``, the ``largest``, the one nearest the ``center``, or the faces
    at the given indices (positions among the detector's faces, best score first, after
    ``min_face_size``: the shorter box side in input pixels below which a face is skipped).
    Indices are stored as a tuple.
    """

    detector: str | object = DEFAULT_DETECTOR
    detector_weights: str | os.PathLike | None = None
    score_threshold: float | None = None
    nms_threshold: float = 0.4
    faces: str | Sequence[int] = "all"
    min_face_size: float = 0.0

    def __post_init__(self) -> None:
        _set(self, "min_face_size", number("min_face_size", self.min_face_size, 0.0))
        number("nms_threshold", self.nms_threshold, 0.0, 1.0, above=True)
        if self.score_threshold is not None:
            number("score_threshold", self.score_threshold, 0.0, 1.0)
        _set(self, "faces", _faces(self.faces))


@dataclass(frozen=True)
class RunOptions:
    """How faces are restored: the model(s) and how they run.

    ``model``: zoo name, checkpoint path or a loaded ``RestorationModel``; ``"auto"`` takes
    gpen-bfr-512 when its weights can be had, else a cached gpen-bfr-256, else the bundled
    gpen-offline-128-v5.
    ``method``: the method's load-time knobs by name (``RestorerOptions(fidelity=0.7)``;
    ``None``: none given), checked by the method when the model loads (docs/contributing.md).
    ``small_model`` (same forms, loaded without ``method``) restores the faces whose crop
    spans fewer than ``small_face_size`` output pixels (default: its output size; 0: never).
    ``batch_size``: faces per forward pass (``None``: :func:`default_batch_size`).
    ``precision``: ``fp32``, ``bf16`` or ``fp16`` (GPUs); ``compile``: ``torch.compile``.
    ``reuse_memory``: keep freed memory in the process for the next forward pass (glibc
    malloc tuning, process-wide; :func:`faceprior.runtime.reuse_freed_memory`).
    """

    model: str | os.PathLike | object = DEFAULT_MODEL
    method: RestorerOptions | None = None
    small_model: str | os.PathLike | object | None = None
    small_face_size: float | None = None
    batch_size: int | None = None
    precision: str = "fp32"
    compile: bool = False
    reuse_memory: bool = True

    def __post_init__(self) -> None:
        if self.batch_size is not None:
            _set(self, "batch_size", number("batch_size", self.batch_size, 1, integer=True))
        if self.small_face_size is not None:
            _set(self, "small_face_size", number("small_face_size", self.small_face_size, 0.0))
            if self.small_model is None:
                raise ArgumentError("small_face_size", "needs a small_model")
        check_precision(self.precision, None)


@dataclass(frozen=True)
class PasteOptions:
    """How restored faces go back into the photo.

    ``upscale``: factor for the whole photo, made by ``background`` (``lanczos``,
    ``realesrnet``, an RRDBNet zoo name, checkpoint or loaded network, run in tiles of
    ``tile_size`` input pixels). ``strength``: 0 keeps the original, 1 the restored face (one
    value, or one per face listed by index in :attr:`FindOptions.faces`). ``color_match``:
    ``wavelet``, ``lab``, ``adain`` or ``none`` (``True``/``False``: ``lab``/``none``).
    ``mask``: ``face``, ``rectangle``, ``parsing`` (by ``mask_parser``) or a callable from
    faces (N, S, S, 3) to masks (N, S, S). ``keep_grey``: photos without colour are restored
    in luminance only. ``keep_detail``: faces pasted larger than the model's resolution keep
    the photo's own detail where it is sharper. Stored normalised: ``strength`` as a tuple,
    ``color_match`` as a name.
    """

    upscale: float = 1.0
    background: str | os.PathLike | object = "lanczos"
    tile_size: int = DEFAULT_TILE_SIZE
    strength: float | Sequence[float] = 1.0
    color_match: bool | str = DEFAULT_COLOR_MATCH
    mask: str | Callable[[np.ndarray], np.ndarray] = DEFAULT_MASK
    mask_parser: str | os.PathLike | None = None
    keep_grey: bool = True
    keep_detail: bool = True

    def __post_init__(self) -> None:
        _set(self, "upscale", number("upscale", self.upscale, 1.0))
        _set(self, "strength", _strengths(self.strength))
        _set(self, "color_match", _color_match(self.color_match))
        if not callable(self.mask) and self.mask not in MASK_KINDS:
            raise ArgumentError(
                "mask", f"must be one of {MASK_KINDS} or a callable, got {self.mask!r}"
            )


@dataclass(frozen=True)
class PipelineOptions:
    """Every option of :class:`~faceprior.pipeline.FaceRestorer` (its ``options``), grouped by
    stage.

    ``device``: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda:N``; stored
    resolved. ``offline``: never download (cached and bundled weights only).
    ``keep_faces``: keep crops, restored faces and masks in the result. ``max_pixels``:
    refuse image files with more pixels (decompression-bomb guard).
    """

    find: FindOptions = field(default_factory=FindOptions)
    run: RunOptions = field(default_factory=RunOptions)
    paste: PasteOptions = field(default_factory=PasteOptions)
    device: str = "auto"
    offline: bool = False
    keep_faces: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        _set(self, "device", resolve_device(self.device))
        _set(self, "max_pixels", number("max_pixels", self.max_pixels, 1, integer=True))
        check_precision(self.run.precision, self.device)
        _check_strengths(self.find.faces, self.paste.strength)

    def strength_of(self, number: int) -> float:
        """The strength of the face a report numbers ``number`` (found by the detector)."""
        faces, strengths = self.find.faces, self.paste.strength
        if isinstance(faces, str) or len(strengths) == 1:
            return strengths[0]
        return strengths[faces.index(number)]


def default_batch_size(device: str) -> int:
    """Faces per forward pass when not given: 1 on a CPU, 4 on a GPU.

    On a CPU, batching 512-px GAN-prior models costs time per face: GPEN-BFR-512 takes 1.38 s
    per face at batch 1 and 1.72 s at batch 4 (PSFR-GAN 2.80 vs 3.45 s; the whole Solvay photo
    45.4 vs 47.1 s; benchmarks/README.md). GPUs need the batch to fill.
    """
    return 1 if str(device).split(":")[0] == "cpu" else 4


def _set(options: object, name: str, value: object) -> None:
    """Store a checked, normalised value in a frozen dataclass while it is being built."""
    object.__setattr__(options, name, value)


def _faces(faces: str | Sequence[int]) -> str | tuple[int, ...]:
    if isinstance(faces, str):
        if faces not in FACE_SELECTIONS:
            raise ArgumentError(
                "faces",
                f"must be one of {FACE_SELECTIONS} or a list of face indices, got {faces!r}",
            )
        return faces
    indices = tuple(int(i) for i in faces)
    if not indices or min(indices) < 0 or len(set(indices)) != len(indices):
        raise ArgumentError("faces", f"must list distinct face indices >= 0, got {list(indices)}")
    return indices


def _strengths(strength: float | Sequence[float]) -> tuple[float, ...]:
    values = (float(strength),) if np.isscalar(strength) else tuple(float(v) for v in strength)
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ArgumentError(
            "strength", f"must be in [0, 1] (one value or one per face), got {strength}"
        )
    return values


def _check_strengths(faces: str | tuple[int, ...], strengths: tuple[float, ...]) -> None:
    """One strength for all faces, or one per face listed by index."""
    if len(strengths) == 1:
        return
    if isinstance(faces, str):
        raise ArgumentError(
            "strength", "with one value per face needs the faces listed by index (faces=[0, 2])"
        )
    if len(strengths) != len(faces):
        raise ArgumentError(
            "strength",
            f"lists {len(strengths)} values for {len(faces)} faces: give one value "
            f"or one per listed face",
        )


def _color_match(choice: bool | str) -> str:
    if choice is True or choice is False:
        return "lab" if choice else "none"
    if choice not in COLOR_MATCHES:
        raise ArgumentError(
            "color_match", f"must be one of {COLOR_MATCHES} or a bool, got {choice!r}"
        )
    return choice
