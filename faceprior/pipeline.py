"""The photo pipeline: detect, align, restore in batches, paste back into the upscaled photo.

:class:`FaceRestorer` keeps the restoration model, detector and mask source loaded across
photos; :func:`restore` is the one-call form. Images are processed as float32 RGB in [0, 1]
whatever their bit depth, so 16-bit photos keep their precision; grey photos are restored
in colour and written back as grey, the alpha plane is only resampled. See docs/restore.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .face.types import FaceDetection
from .io.images import (
    DEFAULT_MAX_PIXELS,
    ImageMetadata,
    LoadedImage,
    join_pixels,
    read_image,
    split_pixels,
)

# "auto": the official GPEN-BFR-512 when its weights are cached or can be downloaded, else the
# small GPEN that faceprior trained and ships (works offline; see the model card).
DEFAULT_MODEL = "auto"
AUTO_MODELS = ("gpen-bfr-512", "gpen-offline-128")
DEFAULT_DETECTOR = "retinaface-mobilenet0.25"
FACE_SELECTIONS = ("all", "largest", "center")
MASK_KINDS = ("rectangle", "parsing")

ImageInput = str | os.PathLike | np.ndarray | LoadedImage


class ModelUnavailableError(RuntimeError):
    """The restoration weights could not be found or downloaded."""


class OfflineFallbackWarning(UserWarning):
    """``model="auto"`` used the bundled offline model: the official weights were unavailable."""


@dataclass
class FaceResult:
    """One restored face. Coordinates are in input-image pixels (before upscaling).

    ``matrix`` maps input pixels to the aligned crop. ``crop`` (aligned input), ``restored`` and
    ``mask`` (both at the model's output size) are float32 in [0, 1], kept on request only.
    ``model`` names the model that restored the face (the main or the small one).
    """

    box: np.ndarray
    score: float | None
    landmarks: np.ndarray
    matrix: np.ndarray
    crop: np.ndarray | None = None
    restored: np.ndarray | None = None
    mask: np.ndarray | None = None
    model: str = ""

    def to_dict(self) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": None if self.score is None else round(self.score, 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "model": self.model,
        }


@dataclass
class Result:
    """The restored image (same layout and dtype as the input pixels) and what was done."""

    image: np.ndarray
    faces: list[FaceResult]
    metadata: ImageMetadata = field(default_factory=ImageMetadata)
    timings: dict[str, float] = field(default_factory=dict)
    input_size: tuple[int, int] = (0, 0)
    upscale: float = 1.0

    def to_dict(self) -> dict:
        report = {
            "input_size": list(self.input_size),
            "output_size": [int(self.image.shape[1]), int(self.image.shape[0])],
            "upscale": self.upscale,
            "faces": [face.to_dict() for face in self.faces],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if not self.faces:
            report["message"] = "no faces found: the image was only upscaled"
        return report


class FaceRestorer:
    """Restores every face of photos with one model (or two, by face size), kept loaded.

    ``model``: zoo name, checkpoint path or a loaded ``RestorationModel``; ``"auto"`` takes
    gpen-bfr-512 when its weights can be had and otherwise the bundled gpen-offline-128 (with
    an :class:`OfflineFallbackWarning`); ``model_name`` says which was used. ``detector``: zoo or
    architecture name (weights from ``detector_weights`` or the zoo) or a loaded detector.
    ``faces``: restore ``all`` faces, the ``largest`` or the one nearest the ``center``;
    ``min_face_size``: skip faces whose box is smaller (shorter side, input pixels).
    ``upscale``: factor for the whole photo (Lanczos); faces are pasted at model resolution.
    ``strength``: 0 keeps the original, 1 the restored face. ``color_match``: match the
    restored faces' Lab mean/std to the original. ``mask``: ``rectangle`` (GPEN's soft
    rectangle), ``parsing`` (face, hair and neck found by the ParseNet ``mask_parser``, by
    default the zoo's PSFR-GAN parser) or any callable mapping faces (N, S, S, 3) in [0, 1] to
    masks (N, S, S). ``fidelity`` and ``parsing_model`` go to the
    restoration method (Panini-Net / PSFR-GAN) and are refused by the others.
    ``small_model`` (same forms as ``model``, loaded without ``fidelity``/``parsing_model``):
    faces whose crop spans fewer than ``small_face_size`` output pixels go through it instead
    (default: its output size, below which the main model's extra pixels are shrunk away when
    pasted; see :meth:`pasted_size`). ``small_face_size=0`` never uses it.
    ``batch_size``: faces per forward pass (default: :func:`default_batch_size`; the result
    does not depend on it). ``precision``: ``fp32``, ``bf16`` (CPUs with AVX512-BF16/AMX and
    GPUs) or ``fp16`` (GPUs). ``compile``: run the models through ``torch.compile`` (a
    one-off compilation on the first batch, then faster batches; see
    :class:`faceprior.runtime.ModelRunner`).
    ``reuse_memory``: keep freed memory in the process for the next forward pass (glibc
    malloc tuning, process-wide; see :func:`faceprior.runtime.reuse_freed_memory`).
    ``keep_faces``: keep crops, restored faces and masks in the result for inspection.
    ``max_pixels``: refuse image files with more pixels (decompression-bomb guard).
    """

    def __init__(
        self,
        model: str | os.PathLike | object = DEFAULT_MODEL,
        detector: str | object = DEFAULT_DETECTOR,
        detector_weights: str | os.PathLike | None = None,
        device: str = "cpu",
        score_threshold: float | None = None,
        nms_threshold: float = 0.4,
        faces: str = "all",
        min_face_size: float = 0.0,
        upscale: float = 1.0,
        batch_size: int | None = None,
        strength: float = 1.0,
        color_match: bool = False,
        mask: str | Callable[[np.ndarray], np.ndarray] = "rectangle",
        mask_parser: str | os.PathLike | None = None,
        fidelity: float | None = None,
        parsing_model: str | None = None,
        small_model: str | os.PathLike | object | None = None,
        small_face_size: float | None = None,
        precision: str = "fp32",
        compile: bool = False,
        reuse_memory: bool = True,
        keep_faces: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        from .runtime import ModelRunner, check_precision, reuse_freed_memory

        if faces not in FACE_SELECTIONS:
            raise ValueError(f"faces must be one of {FACE_SELECTIONS}, got {faces!r}")
        if upscale < 1:
            raise ValueError(f"upscale must be >= 1, got {upscale}")
        if batch_size is None:
            batch_size = default_batch_size(device)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if small_face_size is not None and not 0 <= small_face_size < float("inf"):
            raise ValueError(f"small_face_size must be >= 0 pixels, got {small_face_size}")
        if small_face_size is not None and small_model is None:
            raise ValueError("small_face_size needs a small_model (--small-model)")
        check_precision(precision, device)
        if reuse_memory:
            reuse_freed_memory()
        self.device = device
        self.model, self.model_name = _load_model(model, device, fidelity, parsing_model)
        self.small_model = self.small_model_name = None
        self.small_face_size = 0.0
        if small_model is not None:
            self.small_model, name = _load_model(small_model, device, None, None)
            # Two loaded networks of one class would share a name; the report must tell them apart.
            self.small_model_name = name if name != self.model_name else f"{name} (small)"
            size = self.small_model.conventions.output_size
            self.small_face_size = float(size if small_face_size is None else small_face_size)
        self._runners = {
            id(model): ModelRunner(model, precision, compile, batch_size)
            for model in (self.model, self.small_model)
            if model is not None
        }
        self._detector_spec = (detector, detector_weights, score_threshold, nms_threshold)
        self._detector = None if isinstance(detector, str) else detector
        self.faces = faces
        self.min_face_size = min_face_size
        self.upscale = upscale
        self.batch_size = batch_size
        self.strength = strength
        self.color_match = color_match
        self.mask_source = _mask_source(mask, mask_parser, device)
        self.keep_faces = keep_faces
        self.max_pixels = max_pixels

    @property
    def detector(self):
        """The face detector, loaded on first use (aligned mode never needs one)."""
        if self._detector is None:
            from .face.detection import load_detector

            name, weights, score, nms = self._detector_spec
            options = {} if score is None else {"score_threshold": score}
            self._detector = load_detector(
                name, weights=weights, device=self.device, nms_threshold=nms, **options
            )
        return self._detector

    def restore(self, image: ImageInput) -> Result:
        """Restore every selected face of a photo (path, array or :class:`LoadedImage`).

        Faces go through align, restore, mask and paste ``batch_size`` at a time, so memory
        does not grow with the number of faces.
        """
        from .face.paste import PasteCanvas
        from .face.stages import align_faces, paste_faces, restore_batches

        timings: dict[str, float] = {}
        clock = _Clock(timings)
        loaded = self._load(image, clock)
        rgb, alpha, layout = split_pixels(loaded.pixels)
        detector = self.detector
        with clock("detect"):
            detections = self._select(detector.detect(_to_bgr_uint8(rgb)), rgb.shape)
        with clock("paste"):
            canvas, alpha, scale = _upscale(rgb, alpha, self.upscale)
            paste = PasteCanvas(canvas)
        found: dict[int, FaceResult] = {}
        for runner, name, chosen in self._route(detections):
            conventions = runner.conventions
            for start in range(0, len(chosen), self.batch_size):
                indices = chosen[start : start + self.batch_size]
                batch = [detections[i] for i in indices]
                with clock("align"):
                    crops, matrices, valid = align_faces(
                        rgb, batch, conventions.template, conventions.input_size
                    )
                with clock("restore"):
                    restored = restore_batches(runner, crops, self.batch_size, self.device)
                with clock("mask"):
                    masks = self.mask_source(restored)
                with clock("paste"):
                    masks = paste_faces(
                        paste, scale, crops, restored, masks, valid, matrices, self.color_match
                    )
                for index, (face_index, matrix) in enumerate(zip(indices, matrices, strict=True)):
                    detection = detections[face_index]
                    face = FaceResult(
                        detection.box, detection.score, detection.landmarks, matrix, model=name
                    )
                    if self.keep_faces:
                        face.crop, face.restored = crops[index], restored[index]
                        face.mask = masks[index]
                    found[face_index] = face
        faces = [found[index] for index in range(len(detections))]
        with clock("paste"):
            pixels = join_pixels(paste.result(self.strength), alpha, layout)
        height, width = rgb.shape[:2]
        return Result(pixels, faces, loaded.metadata, timings, (width, height), self.upscale)

    def restore_aligned(self, image: ImageInput) -> Result:
        """Restore an already aligned face crop; the output has the model's output size.

        The one face reported spans the whole input, with the template's landmarks.
        """
        from .face.paste import resize_matrix
        from .face.stages import resize_plane, restore_aligned_crop

        timings: dict[str, float] = {}
        clock = _Clock(timings)
        loaded = self._load(image, clock)
        rgb, alpha, layout = split_pixels(loaded.pixels)
        conventions = self.model.conventions
        with clock("restore"):
            output, crop = restore_aligned_crop(
                self._runners[id(self.model)], rgb, self.device, self.strength, self.color_match
            )
        if alpha is not None:
            alpha = resize_plane(alpha, conventions.output_size)
        pixels = join_pixels(output, alpha, layout)
        height, width = rgb.shape[:2]
        size = conventions.input_size
        matrix = resize_matrix(size / width, size / height)
        face = FaceResult(
            np.array([0.0, 0.0, width, height]),
            None,
            _template_in(matrix, conventions),
            matrix,
            model=self.model_name,
        )
        if self.keep_faces:
            face.crop, face.restored = crop, output
            face.mask = np.ones(output.shape[:2], np.float32)
        return Result(pixels, [face], loaded.metadata, timings, (width, height), 1.0)

    def pasted_size(self, detection: FaceDetection) -> float:
        """Side, in output pixels, of the main model's aligned crop of this face once pasted.

        Paste-back resamples the model's S x S output onto exactly this many pixels, so when it
        is at most the small model's output size the main model's extra resolution is shrunk
        away and cannot be seen. Measured from the landmarks' similarity (as alignment does)
        rather than the detection box, whose margins differ between detectors and poses.
        """
        from .face.align import similarity_transform, template_points

        conventions = self.model.conventions
        size = conventions.input_size
        target = template_points(conventions.template, size).astype(np.float32)
        matrix = similarity_transform(detection.landmarks.astype(np.float32), target)
        return size / float(np.sqrt(abs(np.linalg.det(matrix[:, :2])))) * self.upscale

    def _route(self, detections: list[FaceDetection]) -> list[tuple[object, str, list[int]]]:
        """``(model runner, name, face indices)`` per model: small faces to the small model."""
        main = self._runners[id(self.model)]
        if self.small_model is None:
            return [(main, self.model_name, list(range(len(detections))))]
        small = [self.pasted_size(d) < self.small_face_size for d in detections]
        return [
            (main, self.model_name, [i for i, s in enumerate(small) if not s]),
            (
                self._runners[id(self.small_model)],
                self.small_model_name,
                [i for i, s in enumerate(small) if s],
            ),
        ]

    def _load(self, image: ImageInput, clock: _Clock) -> LoadedImage:
        with clock("read"):
            if isinstance(image, LoadedImage):
                return image
            if isinstance(image, np.ndarray):
                return LoadedImage(image)
            return read_image(image, max_pixels=self.max_pixels)

    def _select(self, detections: list[FaceDetection], shape) -> list[FaceDetection]:
        kept = [d for d in detections if d.size >= self.min_face_size]
        if not kept or self.faces == "all":
            return kept
        if self.faces == "largest":
            return [max(kept, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))]
        center = np.array([shape[1], shape[0]], float) / 2
        return [min(kept, key=lambda d: np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - center))]


def restore(
    image: ImageInput,
    model: str | os.PathLike | object = DEFAULT_MODEL,
    device: str = "cpu",
    upscale: float = 1.0,
    aligned: bool = False,
    precision: str = "fp32",
) -> Result:
    """One photo (path or RGB array) in, :class:`Result` out; see :class:`FaceRestorer`."""
    restorer = FaceRestorer(model, device=device, upscale=upscale, precision=precision)
    return restorer.restore_aligned(image) if aligned else restorer.restore(image)


def default_batch_size(device: str) -> int:
    """Faces per forward pass when not given: 1 on a CPU, 4 on a GPU.

    On a CPU, batching 512-px GAN-prior models costs time per face: GPEN-BFR-512 takes 1.38 s
    per face at batch 1 and 1.72 s at batch 4 (PSFR-GAN 2.80 vs 3.45 s; the whole Solvay photo
    45.4 vs 47.1 s; benchmarks/README.md). GPUs need the batch to fill.
    """
    return 1 if str(device).split(":")[0] == "cpu" else 4


def _load_model(model, device: str, fidelity: float | None, parsing_model: str | None):
    """``(restoration model, its name)``; ``"auto"`` falls back to the bundled offline model."""
    from .models.restorer import RestorationModel, RestorerOptions

    if isinstance(model, RestorationModel):
        if fidelity is not None or parsing_model is not None:
            raise ValueError("fidelity/parsing_model apply when loading a model by name or path")
        return model.eval().to(device), type(model.network).__name__
    from .api import load_restoration_model
    from .hub.download import DownloadError

    options = RestorerOptions(fidelity=fidelity, parsing_model=parsing_model)
    if str(model) == DEFAULT_MODEL:
        preferred, offline = AUTO_MODELS
        try:
            return load_restoration_model(preferred, device, options), preferred
        except (DownloadError, FileNotFoundError, OSError) as error:
            import warnings

            reason = " ".join(line.strip() for line in str(error).splitlines()[:2])
            warnings.warn(
                f"{preferred} is unavailable ({reason}); using the bundled offline model "
                f"{offline} (128 px, trained by faceprior on CelebA, research use only)",
                OfflineFallbackWarning,
                stacklevel=3,
            )
            model = offline
    try:
        return load_restoration_model(model, device=device, options=options), str(model)
    except (DownloadError, FileNotFoundError, OSError) as error:
        raise ModelUnavailableError(
            f"cannot get the weights of restoration model {str(model)!r}: {error}. "
            f"Pass --model PATH (Python: model=PATH) to a local checkpoint (.pth or "
            f".safetensors), or a zoo name whose weights are cached (see `faceprior models`)."
        ) from None


def _template_in(matrix: np.ndarray, conventions) -> np.ndarray:
    """The alignment template's points mapped from the crop back to input pixels."""
    if conventions.template is None:
        return np.zeros((0, 2))
    import cv2

    from .face.align import template_points

    points = np.asarray(template_points(conventions.template, conventions.input_size), float)
    inverse = cv2.invertAffineTransform(matrix)
    return points @ inverse[:, :2].T + inverse[:, 2]


def _mask_source(mask, mask_parser, device: str):
    from .face.masks import RectangleMask

    if callable(mask):
        return mask
    if mask == "rectangle":
        return RectangleMask()
    if mask == "parsing":
        from .face.masks import ParsingMask

        return ParsingMask(mask_parser, device=device)
    raise ValueError(f"mask must be one of {MASK_KINDS} or a callable, got {mask!r}")


def _to_bgr_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rint(rgb[..., ::-1] * 255.0).astype(np.uint8))


def _upscale(rgb: np.ndarray, alpha: np.ndarray | None, factor: float):
    """Lanczos-upscaled photo and alpha, and the (x, y) scale actually applied."""
    if factor == 1:
        return rgb, alpha, (1.0, 1.0)
    import cv2

    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))

    def resize(plane):
        return np.clip(cv2.resize(plane, size, interpolation=cv2.INTER_LANCZOS4), 0.0, 1.0)

    scale = (size[0] / width, size[1] / height)
    return resize(rgb), None if alpha is None else resize(alpha), scale


class _Clock:
    """Adds the wall time of ``with clock(stage):`` blocks to ``timings[stage]``."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self._stage = ""

    def __call__(self, stage: str) -> _Clock:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        elapsed = time.perf_counter() - self._start
        self.timings[self._stage] = self.timings.get(self._stage, 0.0) + elapsed
