"""The photo pipeline: detect, align, restore in batches, paste back into the upscaled photo.

:class:`FaceRestorer` keeps the restoration model, detector and mask source loaded across
photos; :func:`restore` is the one-call form. Images are processed as float32 RGB in [0, 1]
whatever their bit depth, so 16-bit photos keep their precision; photos without colour are
restored in luminance only (:mod:`faceprior.face.grey`), the alpha plane is only resampled.
The defaults do no harm whatever the model: a face-shaped mask, the input's colours (wavelet
transfer), and the photo's own detail kept in faces larger than the model's resolution
(:mod:`faceprior.face.detail`). See docs/restore.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ArgumentError, ModelUnavailableError
from .face.background import DEFAULT_TILE_SIZE, load_background
from .face.types import DEFAULT_DETECTOR, FaceDetection
from .io.images import (
    DEFAULT_MAX_PIXELS,
    ImageMetadata,
    LoadedImage,
    PixelLayout,
    join_pixels,
    read_image,
    split_pixels,
)

# "auto": the official GPEN-BFR-512 when its weights are cached or can be downloaded, else the
# small GPEN that faceprior trained and ships (works offline; see the model card).
DEFAULT_MODEL = "auto"
AUTO_MODELS = ("gpen-bfr-512", "gpen-offline-128")
FACE_SELECTIONS = ("all", "largest", "center")
# "face": an ellipse from the five landmarks (no weights needed; never pastes the crop's
# re-synthesised background); "rectangle": GPEN's soft square; "parsing": ParseNet's regions.
MASK_KINDS = ("face", "rectangle", "parsing")
DEFAULT_MASK = "face"
# Wavelet low-frequency transfer keeps the input's colours best (benchmarks/do_no_harm.py).
DEFAULT_COLOR_MATCH = "wavelet"

ImageInput = str | os.PathLike | np.ndarray | LoadedImage
# (face indices, aligned crops, restored faces, photo-to-crop matrices) -> restored faces
FaceRefiner = Callable[[list[int], np.ndarray, np.ndarray, list[np.ndarray]], np.ndarray]


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
    index: int = 0
    strength: float = 1.0
    detail: str = ""
    error: str = ""  # why this face was left as it was (e.g. non-finite model output)

    def to_dict(self) -> dict:
        report = {
            "index": self.index,
            "box": [round(float(v), 2) for v in self.box],
            "score": None if self.score is None else round(self.score, 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "model": self.model,
            "strength": self.strength,
        }
        if self.detail:
            report["detail"] = self.detail
        if self.error:
            report["error"] = self.error
        return report


@dataclass
class Result:
    """The restored image (same layout and dtype as the input pixels) and what was done."""

    image: np.ndarray
    faces: list[FaceResult]
    metadata: ImageMetadata = field(default_factory=ImageMetadata)
    timings: dict[str, float] = field(default_factory=dict)
    input_size: tuple[int, int] = (0, 0)
    upscale: float = 1.0
    colour: str = ""
    background: str = "lanczos"

    def to_dict(self) -> dict:
        report = {
            "input_size": list(self.input_size),
            "output_size": [int(self.image.shape[1]), int(self.image.shape[0])],
            "upscale": self.upscale,
            "background": self.background,
            **({"colour": self.colour} if self.colour else {}),
            "faces": [face.to_dict() for face in self.faces],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
        if not self.faces:
            report["message"] = "no faces found: the image was only upscaled"
        return report


@dataclass
class FaceBatch:
    """Faces aligned for one forward pass: ``indices`` into the photo's detections, their
    ``crops`` (N, S, S, 3) float32 in [0, 1], photo-to-crop ``matrices`` and ``valid`` (N, S, S)
    (where a crop holds photo pixels). ``model``: ``main`` or ``small``, named ``name``."""

    model: str
    name: str
    indices: list[int]
    crops: np.ndarray
    matrices: list[np.ndarray]
    valid: np.ndarray


@dataclass
class PreparedPhoto:
    """A photo ready for the network (:meth:`FaceRestorer.prepare`): its float32 RGB and alpha
    planes, pixel layout and metadata, the faces to restore with their report numbers, the
    colour kind (:mod:`faceprior.face.grey`), the aligned batches and the time spent so far."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    layout: PixelLayout
    metadata: ImageMetadata
    detections: list[FaceDetection]
    numbers: list[int]
    kind: str
    batches: list[FaceBatch]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class RestoredCrops:
    """The network's output for each :class:`FaceBatch` of a photo, (N, S, S, 3) float32."""

    faces: list[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)


class FaceRestorer:
    """Restores every face of photos with one model (or two, by face size), kept loaded.

    ``model``: zoo name, checkpoint path or a loaded ``RestorationModel``; ``"auto"`` takes
    gpen-bfr-512 when its weights can be had and otherwise the bundled gpen-offline-128 (with
    an :class:`OfflineFallbackWarning`); ``model_name`` says which was used. ``detector``: zoo or
    architecture name (weights from ``detector_weights`` or the zoo) or a loaded detector.
    ``device``: ``auto`` (CUDA when available, else the CPU, as the CLI), ``cpu``, ``cuda:N``.
    ``faces``: restore ``all`` faces, the ``largest``, the one nearest the ``center``, or the
    faces at the given indices (a sequence of ints: positions in the report, which lists the
    detector's faces best score first after ``min_face_size``; stable from run to run).
    ``min_face_size``: skip faces whose box is smaller (shorter side, input pixels).
    ``upscale``: factor for the whole photo; faces are pasted at model resolution.
    ``background``: how the photo is upscaled: ``lanczos`` (default), ``realesrnet`` (GPEN's
    released Real-ESRNet for the factor; Lanczos with a :class:`BackgroundFallbackWarning`
    when its weights cannot be had), a zoo name or checkpoint of an RRDBNet, or a loaded one;
    ``tile_size``: the network runs in blended tiles of this many input pixels (0: whole
    photo at once); see :mod:`faceprior.face.background`. ``background_name`` (and the
    report) says which was used.
    ``strength``: 0 keeps the original, 1 the restored face; with indices in ``faces``, one
    value or one per listed face. ``color_match``: how restored faces get the input's
    colours: ``wavelet`` (default: low frequencies from the input), ``lab`` (Lab mean/std),
    ``adain`` (RGB mean/std), ``none``; ``True``/``False`` mean ``lab``/``none``.
    ``mask``: ``face`` (default: a soft ellipse from the five landmarks, needs no weights),
    ``rectangle`` (GPEN's soft rectangle), ``parsing`` (face, hair and neck found by the
    ParseNet ``mask_parser``, by default the zoo's PSFR-GAN parser) or any callable mapping
    faces (N, S, S, 3) in [0, 1] to masks (N, S, S).
    ``keep_grey``: restore photos without colour in luminance only (R = G = B stays exactly
    equal; near-grey and sepia photos keep their own chroma; :mod:`faceprior.face.grey`).
    ``keep_detail``: where a face is pasted larger than the model's resolution, keep the
    photo's detail wherever it is sharper than the restoration (:mod:`faceprior.face.detail`).
    ``offline``: never download (also ``FACEPRIOR_OFFLINE=1``): cached and bundled weights only.
    ``fidelity`` and ``parsing_model`` go to the
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
        device: str = "auto",
        score_threshold: float | None = None,
        nms_threshold: float = 0.4,
        faces: str | Sequence[int] = "all",
        min_face_size: float = 0.0,
        upscale: float = 1.0,
        background: str | os.PathLike | object = "lanczos",
        tile_size: int = DEFAULT_TILE_SIZE,
        batch_size: int | None = None,
        strength: float | Sequence[float] = 1.0,
        color_match: bool | str = DEFAULT_COLOR_MATCH,
        mask: str | Callable[[np.ndarray], np.ndarray] = DEFAULT_MASK,
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
        keep_grey: bool = True,
        keep_detail: bool = True,
        offline: bool = False,
    ) -> None:
        from .checks import number, resolve_device
        from .hub.download import offline as offline_scope
        from .runtime import ModelRunner, check_precision, reuse_freed_memory

        device = resolve_device(device)
        upscale = number("upscale", upscale, 1.0)
        min_face_size = number("min_face_size", min_face_size, 0.0)
        number("nms_threshold", nms_threshold, 0.0, 1.0, above=True)
        if score_threshold is not None:
            number("score_threshold", score_threshold, 0.0, 1.0)
        max_pixels = number("max_pixels", max_pixels, 1, integer=True)
        faces, strengths = _face_choice(faces, strength)
        if batch_size is None:
            batch_size = default_batch_size(device)
        batch_size = number("batch_size", batch_size, 1, integer=True)
        if small_face_size is not None:
            small_face_size = number("small_face_size", small_face_size, 0.0)
            if small_model is None:
                raise ArgumentError("small_face_size", "needs a small_model")
        check_precision(precision, device)
        if reuse_memory:
            reuse_freed_memory()
        self.device = device
        self.offline = offline
        with offline_scope(offline):
            self.model, self.model_name = _load_model(model, device, fidelity, parsing_model)
        self.small_model = self.small_model_name = None
        self.small_face_size = 0.0
        if small_model is not None:
            with offline_scope(offline):
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
        with offline_scope(offline):
            self.background, self.background_name = load_background(
                background, upscale, tile_size, device, precision
            )
        self.batch_size = batch_size
        self.strength = strengths[0]
        self.strengths = strengths
        self.color_match = _color_match(color_match)
        with offline_scope(offline):
            self.mask_source = _mask_source(mask, mask_parser, device)
        self.keep_grey = keep_grey
        self.keep_detail = keep_detail
        self.keep_faces = keep_faces
        self.max_pixels = max_pixels

    @property
    def detector(self):
        """The face detector, loaded on first use (aligned mode never needs one)."""
        if self._detector is None:
            from .face.detection import load_detector
            from .hub.download import offline

            name, weights, score, nms = self._detector_spec
            options = {} if score is None else {"score_threshold": score}
            with offline(self.offline):
                self._detector = load_detector(
                    name, weights=weights, device=self.device, nms_threshold=nms, **options
                )
        return self._detector

    def restore(
        self,
        image: ImageInput,
        detections: list[FaceDetection] | None = None,
        refine: FaceRefiner | None = None,
    ) -> Result:
        """Restore every selected face of a photo (path, array or :class:`LoadedImage`).

        Exactly ``finish(prepared, restore_crops(prepared), refine)`` with ``prepared =
        prepare(image, detections)``: the three stages, which a distributed run places on
        different machines (:mod:`faceprior.distributed`). ``detections`` (input pixels)
        replace the detector's, e.g. a video's tracked and smoothed faces. ``refine(indices,
        crops, restored, matrices)`` may change the restored faces of each batch before masking
        and paste-back (``indices`` into the detections), e.g. to blend them over time; crops it
        changes in place are what colour matching then reads.
        """
        prepared = self.prepare(image, detections)
        return self.finish(prepared, self.restore_crops(prepared), refine)

    def prepare(
        self, image: ImageInput, detections: list[FaceDetection] | None = None
    ) -> PreparedPhoto:
        """Everything before the network: read, colour or grey, detect and select, align.

        The faces are aligned ``batch_size`` at a time, one :class:`FaceBatch` per forward
        pass of :meth:`restore_crops`. Plain data (arrays and dataclasses), so that another
        process or machine can take the next stage.
        """
        from .face.grey import colour_kind
        from .face.stages import align_faces

        timings: dict[str, float] = {}
        clock = _Clock(timings)
        loaded = self._load(image, clock)
        rgb, alpha, layout = split_pixels(loaded.pixels)
        if detections is None:
            with clock("detect"):
                detections, numbers = self._find_numbered(rgb)
        else:
            numbers = list(range(len(detections)))
        with clock("colour"):
            kind = colour_kind(rgb) if self.keep_grey else "colour"
        batches = []
        for model, name, chosen in self._route(detections):
            conventions = self._runner(model).conventions
            for start in range(0, len(chosen), self.batch_size):
                indices = chosen[start : start + self.batch_size]
                with clock("align"):
                    crops, matrices, valid = align_faces(
                        rgb,
                        [detections[i] for i in indices],
                        conventions.template,
                        conventions.input_size,
                    )
                batches.append(FaceBatch(model, name, indices, crops, matrices, valid))
        return PreparedPhoto(
            rgb, alpha, layout, loaded.metadata, list(detections), numbers, kind, batches, timings
        )

    def restore_crops(self, prepared: PreparedPhoto) -> RestoredCrops:
        """The network's forward passes only: the restored faces of each of the photo's
        :class:`FaceBatch` (the stage that wants a GPU)."""
        from .face.stages import restore_batches

        timings: dict[str, float] = {}
        clock = _Clock(timings)
        faces = []
        for batch in prepared.batches:
            with clock("restore"):
                faces.append(
                    restore_batches(
                        self._runner(batch.model), batch.crops, self.batch_size, self.device
                    )
                )
        return RestoredCrops(faces, timings)

    def finish(
        self,
        prepared: PreparedPhoto,
        restored: RestoredCrops,
        refine: FaceRefiner | None = None,
    ) -> Result:
        """Everything after the network: masks, colours, detail, paste into the upscaled photo
        (background), and the report; ``refine`` as in :meth:`restore`."""
        from .face.grey import apply_colour_kind
        from .face.paste import PasteCanvas
        from .face.stages import paste_faces

        timings = {**prepared.timings}
        for stage, seconds in restored.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        clock = _Clock(timings)
        rgb, detections, numbers = prepared.rgb, prepared.detections, prepared.numbers
        with clock("background"):
            canvas, alpha, scale = _upscale(rgb, prepared.alpha, self.upscale, self.background)
        with clock("paste"):
            paste = PasteCanvas(canvas)
        found: dict[int, FaceResult] = {}
        for batch, faces in zip(prepared.batches, restored.faces, strict=True):
            conventions = self._runner(batch.model).conventions
            indices, crops, matrices = batch.indices, batch.crops, batch.matrices
            # Copies: the stages' inputs may be read-only (Ray) and stay as they were.
            faces, valid = np.array(faces), np.array(batch.valid)
            if refine is not None:
                faces = refine(indices, crops, faces, matrices)
            # A damaged model (NaN weights) must not paste black squares: skip those faces.
            broken = ~np.isfinite(faces).reshape(len(faces), -1).all(axis=1)
            faces[broken], valid[broken] = 0.0, 0.0
            with clock("mask"):
                if self.mask_source is None:
                    masks = _face_masks([detections[i] for i in indices], matrices, conventions)
                else:
                    masks = self.mask_source(faces)
            strengths = [self._strength_of(numbers[i]) for i in indices]
            with clock("paste"):
                masks, paste_scales = paste_faces(
                    paste,
                    scale,
                    crops,
                    faces,
                    masks,
                    valid,
                    matrices,
                    self.color_match,
                    strengths,
                    self.keep_detail,
                )
            for index, (face_index, matrix) in enumerate(zip(indices, matrices, strict=True)):
                detection = detections[face_index]
                face = FaceResult(
                    detection.box,
                    detection.score,
                    detection.landmarks,
                    matrix,
                    model=batch.name,
                    index=numbers[face_index],
                    strength=strengths[index],
                    detail=self._detail_note(paste_scales[index], conventions.output_size),
                )
                if broken[index]:
                    face.error = "the model returned NaN or infinite values; face left as is"
                if self.keep_faces:
                    face.crop, face.restored = crops[index], faces[index]
                    face.mask = masks[index]
                found[face_index] = face
        results = [found[index] for index in range(len(detections))]
        with clock("paste"):
            restored_photo = paste.result()
        with clock("colour"):
            restored_photo = apply_colour_kind(prepared.kind, restored_photo, canvas)
        pixels = join_pixels(restored_photo, alpha, prepared.layout)
        height, width = rgb.shape[:2]
        return Result(
            pixels,
            results,
            prepared.metadata,
            timings,
            (width, height),
            self.upscale,
            _COLOUR_NOTES[prepared.kind],
            self.background_name,
        )

    def find_faces(self, rgb: np.ndarray) -> list[FaceDetection]:
        """The faces of an RGB photo (uint8, or float in [0, 1]) that :meth:`restore` chooses
        from: detected, then filtered by ``min_face_size`` and an ``all``/``largest``/``center``
        ``faces``; face indices in ``faces`` are not applied here (all kept faces return)."""
        if rgb.dtype == np.uint8:
            bgr = np.ascontiguousarray(rgb[..., ::-1])
        else:
            bgr = _to_bgr_uint8(rgb)
        return self._select(self.detector.detect(bgr), rgb.shape)

    def _find_numbered(self, rgb: np.ndarray) -> tuple[list[FaceDetection], list[int]]:
        """The faces to restore and their report numbers (positions among all kept faces)."""
        if isinstance(self.faces, str):
            detections = self.find_faces(rgb)
            return detections, list(range(len(detections)))
        everything = self._select(self.detector.detect(_to_bgr_uint8(rgb)), rgb.shape, "all")
        numbers = [i for i in self.faces if i < len(everything)]
        return [everything[i] for i in numbers], numbers

    def _strength_of(self, number: int) -> float:
        if isinstance(self.faces, str):
            return self.strengths[0]
        return self.strengths[self.faces.index(number)]

    def _detail_note(self, paste_scale: float, model_size: int) -> str:
        """Why a face looks the way it does, for the report."""
        from .face.detail import MIN_SCALE

        if paste_scale <= MIN_SCALE:
            return f"restored: the face fits the model's {model_size} px"
        if not self.keep_detail:
            return f"restored, upsampled {paste_scale:.1f}x (keep_detail off)"
        return (
            f"restored, with the photo's own detail kept where sharper: the face spans "
            f"{paste_scale:.1f}x the model's {model_size} px"
        )

    def restore_aligned(self, image: ImageInput) -> Result:
        """Restore an already aligned face crop; the output has the model's output size.

        The one face reported spans the whole input, with the template's landmarks.
        """
        from .face.grey import apply_colour_kind, colour_kind
        from .face.paste import resize_matrix
        from .face.stages import resize_plane, restore_aligned_crop

        timings: dict[str, float] = {}
        clock = _Clock(timings)
        loaded = self._load(image, clock)
        rgb, alpha, layout = split_pixels(loaded.pixels)
        conventions = self.model.conventions
        with clock("restore"):
            output, crop = restore_aligned_crop(
                self._runner("main"), rgb, self.device, self.strength, self.color_match
            )
        kind = colour_kind(rgb) if self.keep_grey else "colour"
        output = apply_colour_kind(kind, output, resize_plane(rgb, conventions.output_size))
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
        return Result(
            pixels, [face], loaded.metadata, timings, (width, height), 1.0, _COLOUR_NOTES[kind]
        )

    def pasted_size(self, detection: FaceDetection) -> float:
        """Side, in output pixels, of the main model's aligned crop of this face once pasted.

        Paste-back resamples the model's S x S output onto exactly this many pixels, so when it
        is at most the small model's output size the main model's extra resolution is shrunk
        away and cannot be seen. Measured from the landmarks' similarity (as alignment does)
        rather than the detection box, whose margins differ between detectors and poses.
        """
        from .face.align import similarity_transform, template_points
        from .face.paste import paste_scale

        conventions = self.model.conventions
        size = conventions.input_size
        target = template_points(conventions.template, size).astype(np.float32)
        matrix = similarity_transform(detection.landmarks.astype(np.float32), target)
        return size / paste_scale(matrix) * self.upscale

    def _route(self, detections: list[FaceDetection]) -> list[tuple[str, str, list[int]]]:
        """``(model key, name, face indices)`` per model: small faces to the small model."""
        if self.small_model is None:
            return [("main", self.model_name, list(range(len(detections))))]
        small = [self.pasted_size(d) < self.small_face_size for d in detections]
        return [
            ("main", self.model_name, [i for i, s in enumerate(small) if not s]),
            ("small", self.small_model_name, [i for i, s in enumerate(small) if s]),
        ]

    def _runner(self, model: str):
        """The model runner of a :class:`FaceBatch`'s ``model`` key (``main`` or ``small``)."""
        return self._runners[id(self.small_model if model == "small" else self.model)]

    def _load(self, image: ImageInput, clock: _Clock) -> LoadedImage:
        from .checks import photo_pixels

        with clock("read"):
            if isinstance(image, LoadedImage):
                loaded = image
            elif isinstance(image, np.ndarray):
                loaded = LoadedImage(image)
            else:
                loaded = read_image(image, max_pixels=self.max_pixels)
        source = str(loaded.path) if loaded.path is not None else "image"
        photo_pixels(loaded.pixels, self.upscale, self.max_pixels, source)
        return loaded

    def _select(
        self, detections: list[FaceDetection], shape, faces: str | None = None
    ) -> list[FaceDetection]:
        faces = faces or (self.faces if isinstance(self.faces, str) else "all")
        kept = [d for d in detections if d.size >= self.min_face_size]
        if not kept or faces == "all":
            return kept
        if faces == "largest":
            return [max(kept, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))]
        center = np.array([shape[1], shape[0]], float) / 2
        return [min(kept, key=lambda d: np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - center))]


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

    # The method's own options dataclass validates these knobs, once, when the model loads.
    options = RestorerOptions(fidelity=fidelity, parsing_model=parsing_model)
    if isinstance(model, RestorationModel):
        given = options.given()
        if given:
            knob = next(iter(given))
            raise ArgumentError(knob, "applies when loading a model by name or path")
        return model.eval().to(device), type(model.network).__name__
    from .hub.download import DownloadError
    from .models.loading import load_restoration_model

    if str(model) == DEFAULT_MODEL:
        preferred, offline = AUTO_MODELS
        try:
            return load_restoration_model(preferred, device, options), preferred
        except (DownloadError, FileNotFoundError, OSError):
            import warnings

            from .hub.download import is_offline

            reason = "offline" if is_offline() else "not cached, download failed"
            warnings.warn(
                f"{preferred} unavailable ({reason}): using the bundled {offline} (128 px)",
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
    """A callable mapping restored faces to masks; None for ``face`` (made from landmarks)."""
    from .face.masks import RectangleMask

    if callable(mask):
        return mask
    if mask == "face":
        return None
    if mask == "rectangle":
        return RectangleMask()
    if mask == "parsing":
        from .face.masks import ParsingMask

        return ParsingMask(mask_parser, device=device)
    raise ArgumentError("mask", f"must be one of {MASK_KINDS} or a callable, got {mask!r}")


def _face_masks(
    detections: list[FaceDetection], matrices: list[np.ndarray], conventions
) -> np.ndarray:
    """Face-shaped masks (N, S, S) at the model's output size, from each face's landmarks."""
    from .face.masks import face_shape_mask

    size = conventions.output_size
    ratio = size / conventions.input_size
    masks = np.zeros((len(detections), size, size), np.float32)
    for index, (detection, matrix) in enumerate(zip(detections, matrices, strict=True)):
        points = detection.landmarks @ matrix[:, :2].T + matrix[:, 2]
        masks[index] = face_shape_mask((points + 0.5) * ratio - 0.5, size)
    return masks


def _face_choice(
    faces: str | Sequence[int], strength: float | Sequence[float]
) -> tuple[str | list[int], list[float]]:
    """Check ``faces`` and ``strength``; indices as a list, strengths one per listed face."""
    if isinstance(faces, str):
        if faces not in FACE_SELECTIONS:
            raise ArgumentError(
                "faces",
                f"must be one of {FACE_SELECTIONS} or a list of face indices, got {faces!r}",
            )
    else:
        faces = [int(i) for i in faces]
        if not faces or min(faces) < 0 or len(set(faces)) != len(faces):
            raise ArgumentError("faces", f"must list distinct face indices >= 0, got {faces}")
    values = [float(strength)] if np.isscalar(strength) else [float(v) for v in strength]
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ArgumentError(
            "strength", f"must be in [0, 1] (one value or one per face), got {strength}"
        )
    if len(values) > 1:
        if isinstance(faces, str):
            raise ArgumentError(
                "strength", "with one value per face needs the faces listed by index (faces=[0, 2])"
            )
        if len(values) != len(faces):
            raise ArgumentError(
                "strength",
                f"lists {len(values)} values for {len(faces)} faces: give one value "
                f"or one per listed face",
            )
    elif not isinstance(faces, str):
        values = values * len(faces)
    return faces, values


def _color_match(choice: bool | str) -> str:
    from .face.color import COLOR_MATCHES

    if choice is True or choice is False:
        return "lab" if choice else "none"
    if choice not in COLOR_MATCHES:
        raise ArgumentError(
            "color_match", f"must be one of {COLOR_MATCHES} or a bool, got {choice!r}"
        )
    return choice


_COLOUR_NOTES = {
    "grey": "grey (R = G = B): restored in luminance only, output exactly grey",
    "near-grey": "near-grey (little colour): restored in luminance, the input's chroma kept",
    "colour": "colour",
}


def _to_bgr_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rint(rgb[..., ::-1] * 255.0).astype(np.uint8))


def _upscale(rgb: np.ndarray, alpha: np.ndarray | None, factor: float, background=None):
    """Upscaled photo (by ``background``, a BackgroundUpsampler, else Lanczos) and alpha
    (Lanczos), and the (x, y) scale actually applied."""
    if factor == 1 and background is None:
        return rgb, alpha, (1.0, 1.0)
    from .face.background import upscale_photo

    height, width = rgb.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    scale = (size[0] / width, size[1] / height)
    alpha = None if alpha is None else upscale_photo(alpha, size, None)
    return upscale_photo(rgb, size, background), alpha, scale


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
