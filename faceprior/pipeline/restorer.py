""":class:`FaceRestorer`: a photo's faces found, restored and pasted back by three parts.

``FaceFinder`` (:mod:`.finder`) finds the faces, ``CropRestorer`` (:mod:`.runner`) aligns them
and runs the model(s), ``FacePaster`` (:mod:`.paster`) pastes them into the upscaled photo;
each takes its own options dataclass (:mod:`.options`) and can be built and tested alone.
``FaceRestorer`` reads the photo, hands it from part to part and writes the report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ..face.background import DEFAULT_TILE_SIZE
from ..face.types import DEFAULT_DETECTOR, FaceDetection
from ..io.images import DEFAULT_MAX_PIXELS, LoadedImage, join_pixels, read_image, split_pixels
from .choose import DEFAULT_MODEL
from .finder import FaceFinder
from .options import (
    DEFAULT_COLOR_MATCH,
    DEFAULT_MASK,
    FindOptions,
    PasteOptions,
    PipelineOptions,
    RunOptions,
)
from .paster import Canvas, FacePaster, drop_broken
from .report import COLOUR_NOTES, face_report, template_in
from .results import FaceBatch, FaceResult, PreparedPhoto, RestoredCrops, Result
from .runner import CropRestorer
from .timing import Clock

ImageInput = str | os.PathLike | np.ndarray | LoadedImage
# (face indices, aligned crops, restored faces, photo-to-crop matrices) -> restored faces
FaceRefiner = Callable[[list[int], np.ndarray, np.ndarray, list[np.ndarray]], np.ndarray]


class FaceRestorer:
    """Restores every face of photos with one model (or two, by face size), kept loaded.

    Three ways to build one: from keywords (below, the common case), from grouped options
    (:meth:`from_options` with a :class:`~faceprior.pipeline.options.PipelineOptions`), or from
    parts built beforehand (:meth:`from_parts`: a :class:`FaceFinder`, a
    :class:`CropRestorer` and a :class:`FacePaster`, e.g. to share loaded models).

    The keywords, each the field of one stage's options of the same name (see
    :mod:`faceprior.pipeline.options` for the details):

    * finding faces (:class:`FindOptions`): ``detector``, ``detector_weights``,
      ``score_threshold``, ``nms_threshold``, ``faces`` (``all``, ``largest``, ``center``, or
      indices as the report numbers them: best detection score first after
      ``min_face_size``; stable from run to run), ``min_face_size``;
    * restoring them (:class:`RunOptions`): ``model`` (zoo name, checkpoint path or a loaded
      ``RestorationModel``; ``"auto"``: gpen-bfr-512 when its weights can be had, else a
      cached gpen-bfr-256, else the bundled gpen-offline-128-v5, with an
      :class:`OfflineFallbackWarning`; ``model_name`` says which), ``small_model`` and
      ``small_face_size`` (faces whose crop spans fewer output pixels go through the small
      model; default: its output size, below which the main model's extra pixels are shrunk
      away, see :meth:`pasted_size`), ``batch_size`` (default: :func:`default_batch_size`;
      the result does not depend on it),
      ``precision`` (``fp32``, ``bf16``, ``fp16`` on GPUs), ``compile`` (``torch.compile``:
      a one-off compilation, then faster batches), ``reuse_memory``; and the restoration
      method's load-time knobs ``fidelity`` (Panini-Net) and ``parsing_model`` (PSFR-GAN),
      which go to :attr:`RunOptions.method` (a ``RestorerOptions``) and are checked by the
      method itself: the others refuse them;
    * pasting back (:class:`PasteOptions`): ``upscale`` and ``background`` (``lanczos``,
      ``realesrnet``, an RRDBNet zoo name, checkpoint or loaded network; run in tiles of
      ``tile_size`` input pixels), ``strength`` (one value, or one per face listed in
      ``faces``), ``color_match``, ``mask`` and ``mask_parser``, ``keep_grey``, ``keep_detail``;
    * shared (:class:`PipelineOptions`): ``device`` (``auto``: CUDA when available, else the
      CPU), ``offline`` (never download), ``keep_faces`` (crops, restored faces and masks in
      the result), ``max_pixels`` (refuse image files with more pixels).

    Every value is checked before any model is loaded.
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
        from ..models.restorer import RestorerOptions

        options = PipelineOptions(
            find=FindOptions(
                detector=detector,
                detector_weights=detector_weights,
                score_threshold=score_threshold,
                nms_threshold=nms_threshold,
                faces=faces,
                min_face_size=min_face_size,
            ),
            run=RunOptions(
                model=model,
                method=RestorerOptions(fidelity=fidelity, parsing_model=parsing_model),
                small_model=small_model,
                small_face_size=small_face_size,
                batch_size=batch_size,
                precision=precision,
                compile=compile,
                reuse_memory=reuse_memory,
            ),
            paste=PasteOptions(
                upscale=upscale,
                background=background,
                tile_size=tile_size,
                strength=strength,
                color_match=color_match,
                mask=mask,
                mask_parser=mask_parser,
                keep_grey=keep_grey,
                keep_detail=keep_detail,
            ),
            device=device,
            offline=offline,
            keep_faces=keep_faces,
            max_pixels=max_pixels,
        )
        self._compose(*_build_parts(options), options)

    @classmethod
    def from_options(cls, options: PipelineOptions) -> FaceRestorer:
        """A restorer whose parts are built (and models loaded) from grouped options."""
        restorer = cls.__new__(cls)
        restorer._compose(*_build_parts(options), options)
        return restorer

    @classmethod
    def from_parts(
        cls,
        finder: FaceFinder,
        runner: CropRestorer,
        paster: FacePaster,
        *,
        keep_faces: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> FaceRestorer:
        """A restorer from parts built beforehand (which may be shared between restorers)."""
        options = PipelineOptions(
            finder.options,
            runner.options,
            paster.options,
            device=runner.device,
            offline=finder.offline,
            keep_faces=keep_faces,
            max_pixels=max_pixels,
        )
        restorer = cls.__new__(cls)
        restorer._compose(finder, runner, paster, options)
        return restorer

    def _compose(
        self,
        finder: FaceFinder,
        runner: CropRestorer,
        paster: FacePaster,
        options: PipelineOptions,
    ) -> None:
        self.finder, self.runner, self.paster, self.options = finder, runner, paster, options

    # The parts' loaded models and names, as attributes of the restorer.
    device = property(lambda self: self.options.device)
    detector = property(lambda self: self.finder.detector, doc="Loaded on first use.")
    model = property(lambda self: self.runner.model)
    small_model = property(lambda self: self.runner.small_model)
    small_face_size = property(lambda self: self.runner.small_face_size)
    batch_size = property(lambda self: self.runner.batch_size)
    background = property(lambda self: self.paster.background)
    mask_source = property(lambda self: self.paster.mask_source)
    keep_detail = property(lambda self: self.options.paste.keep_detail)

    @property
    def model_name(self) -> str:
        return self.runner.model_name

    @model_name.setter
    def model_name(self, name: str) -> None:
        self.runner.model_name = name

    @property
    def small_model_name(self) -> str | None:
        return self.runner.small_model_name

    @small_model_name.setter
    def small_model_name(self, name: str | None) -> None:
        self.runner.small_model_name = name

    @property
    def background_name(self) -> str:
        return self.paster.background_name

    @background_name.setter
    def background_name(self, name: str) -> None:
        self.paster.background_name = name

    @property
    def upscale(self) -> float:
        return self.options.paste.upscale

    @upscale.setter
    def upscale(self, factor: float) -> None:
        """A new factor for the next photos; a background network stays the one loaded."""
        self._set_paste(upscale=factor)

    @property
    def color_match(self) -> str:
        return self.options.paste.color_match

    @color_match.setter
    def color_match(self, choice: bool | str) -> None:
        self._set_paste(color_match=choice)

    def _set_paste(self, **changes: object) -> None:
        paste = replace(self.options.paste, **changes)  # checked again
        self.options = replace(self.options, paste=paste)
        self.paster.options = paste

    def restore(
        self,
        image: ImageInput,
        detections: list[FaceDetection] | None = None,
        refine: FaceRefiner | None = None,
    ) -> Result:
        """Restore every selected face of a photo (path, array or :class:`LoadedImage`).

        The result is bit for bit ``finish(prepared, restore_crops(prepared), refine)`` with
        ``prepared = prepare(image, detections)``, the three stages that a distributed run
        places on different machines (:mod:`faceprior.distributed`); here each batch of faces
        is pasted as soon as it is restored, so restored faces and masks are held one batch at
        a time. ``detections`` (input pixels) replace the detector's, e.g. a video's tracked
        and smoothed faces. ``refine(indices, crops, restored, matrices)`` may change the
        restored faces of each batch before masking and paste-back (``indices`` into the
        detections), e.g. to blend them over time; crops it changes in place are what colour
        matching then reads.
        """
        prepared = self.prepare(image, detections)
        clock = Clock(dict(prepared.timings))
        canvas = self._canvas(prepared, clock)
        found: dict[int, FaceResult] = {}
        pending = prepared.batches
        while pending:
            batch = pending.pop(0)  # dropped once pasted
            with clock("restore"):
                faces = self.runner.restore(batch)
            self._paste(prepared, canvas, batch, faces, refine, clock, found)
        return self._result(prepared, canvas, found, clock)

    def prepare(
        self, image: ImageInput, detections: list[FaceDetection] | None = None
    ) -> PreparedPhoto:
        """Everything before the network: read, colour or grey, detect and select, align.

        The faces are aligned ``batch_size`` at a time, one :class:`FaceBatch` per forward
        pass of :meth:`restore_crops`. Plain data (arrays and dataclasses), so that another
        process or machine can take the next stage.
        """
        timings: dict[str, float] = {}
        clock = Clock(timings)
        loaded = self._load(image, clock)
        rgb, alpha, layout = split_pixels(loaded.pixels)
        if detections is None:
            with clock("detect"):
                detections, numbers = self.finder.find(rgb)
            strengths = [self.options.strength_of(number) for number in numbers]
        else:
            detections, numbers = list(detections), list(range(len(detections)))
            strengths = [self._given_strength()] * len(detections)
        with clock("colour"):
            kind = self.paster.colour_kind(rgb)
        batches = []
        for model, name, indices in self.runner.plan(detections, self.upscale):
            with clock("align"):
                batches.append(self.runner.align(rgb, detections, model, name, indices))
        return PreparedPhoto(
            rgb,
            alpha,
            layout,
            loaded.metadata,
            detections,
            numbers,
            kind,
            batches,
            timings,
            strengths,
        )

    def restore_crops(self, prepared: PreparedPhoto) -> RestoredCrops:
        """The network's forward passes only: the restored faces of each of the photo's
        :class:`FaceBatch` (the stage that wants a GPU)."""
        timings: dict[str, float] = {}
        clock = Clock(timings)
        faces = []
        for batch in prepared.batches:
            with clock("restore"):
                faces.append(self.runner.restore(batch))
        return RestoredCrops(faces, timings)

    def finish(
        self,
        prepared: PreparedPhoto,
        restored: RestoredCrops,
        refine: FaceRefiner | None = None,
    ) -> Result:
        """Everything after the network: masks, colours, detail, paste into the upscaled photo
        (background), and the report; ``refine`` as in :meth:`restore`."""
        timings = {**prepared.timings}
        for stage, seconds in restored.timings.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
        clock = Clock(timings)
        canvas = self._canvas(prepared, clock)
        found: dict[int, FaceResult] = {}
        for batch, faces in zip(prepared.batches, restored.faces, strict=True):
            self._paste(prepared, canvas, batch, faces, refine, clock, found)
        return self._result(prepared, canvas, found, clock)

    def find_faces(self, rgb: np.ndarray) -> list[FaceDetection]:
        """The faces of an RGB photo (uint8, or float in [0, 1]) that :meth:`restore` restores:
        detected, filtered by ``min_face_size``, then chosen by ``faces`` (``all``,
        ``largest``, ``center`` or indices), in the order :meth:`restore` reports them."""
        return self.finder.find(rgb)[0]

    def pasted_size(self, detection: FaceDetection) -> float:
        """Side, in output pixels, of the main model's aligned crop of this face once pasted
        (:meth:`CropRestorer.pasted_size` at this restorer's ``upscale``)."""
        return self.runner.pasted_size(detection, self.upscale)

    def restore_aligned(self, image: ImageInput) -> Result:
        """Restore an already aligned face crop; the output has the model's output size.

        The one face reported spans the whole input, with the template's landmarks.
        """
        from ..face.grey import apply_colour_kind
        from ..face.paste import resize_matrix
        from ..face.stages import resize_plane, restore_aligned_crop

        timings: dict[str, float] = {}
        clock = Clock(timings)
        loaded = self._load(image, clock)
        rgb, alpha, layout = split_pixels(loaded.pixels)
        conventions = self.model.conventions
        strength = self.options.paste.strength[0]
        with clock("restore"):
            output, crop = restore_aligned_crop(
                self.runner.model_runner("main"), rgb, self.device, strength, self.color_match
            )
        kind = self.paster.colour_kind(rgb)
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
            template_in(matrix, conventions),
            matrix,
            model=self.model_name,
        )
        if self.options.keep_faces:
            face.crop, face.restored = crop, output
            face.mask = np.ones(output.shape[:2], np.float32)
        return Result(
            pixels, [face], loaded.metadata, timings, (width, height), 1.0, COLOUR_NOTES[kind]
        )

    def _load(self, image: ImageInput, clock: Clock) -> LoadedImage:
        from ..checks import photo_pixels

        max_pixels = self.options.max_pixels
        with clock("read"):
            if isinstance(image, LoadedImage):
                loaded = image
            elif isinstance(image, np.ndarray):
                loaded = LoadedImage(image)
            else:
                loaded = read_image(image, max_pixels=max_pixels)
        source = str(loaded.path) if loaded.path is not None else "image"
        photo_pixels(loaded.pixels, self.upscale, max_pixels, source)
        return loaded

    def _given_strength(self) -> float:
        """The strength of faces given by the caller (not numbered by the detector)."""
        from ..errors import ArgumentError

        strengths = set(self.options.paste.strength)
        if len(strengths) > 1:
            raise ArgumentError(
                "strength",
                "has one value per face numbered by the detector; faces given as detections "
                "(e.g. a video's tracked faces) take one value",
            )
        return strengths.pop()

    def _canvas(self, prepared: PreparedPhoto, clock: Clock) -> Canvas:
        with clock("background"):
            return self.paster.canvas(prepared.rgb, prepared.alpha)

    def _paste(
        self,
        prepared: PreparedPhoto,
        canvas: Canvas,
        batch: FaceBatch,
        faces: np.ndarray,
        refine: FaceRefiner | None,
        clock: Clock,
        found: dict[int, FaceResult],
    ) -> None:
        """Mask and paste one batch's restored faces into ``canvas``; report them in ``found``."""
        conventions = self.runner.conventions(batch.model)
        # Copies: the stages' inputs may be read-only (Ray) and stay as they were.
        faces, valid = np.array(faces), np.array(batch.valid)
        if refine is not None:
            faces = refine(batch.indices, batch.crops, faces, batch.matrices)
        # A damaged model (NaN weights) must not paste black squares: skip those faces.
        broken = drop_broken(faces, valid)
        with clock("mask"):
            masks = self.paster.masks(prepared.detections, batch, faces, conventions)
        strengths = [prepared.strengths[index] for index in batch.indices]
        with clock("paste"):
            masks, scales = self.paster.paste(canvas, batch, faces, masks, valid, strengths)
        for row, index in enumerate(batch.indices):
            face = face_report(
                prepared.detections[index],
                batch.matrices[row],
                batch.name,
                prepared.numbers[index],
                strengths[row],
                self.paster.detail_note(scales[row], conventions.output_size),
                bool(broken[row]),
            )
            if self.options.keep_faces:
                face.crop, face.restored, face.mask = batch.crops[row], faces[row], masks[row]
            found[index] = face

    def _result(
        self, prepared: PreparedPhoto, canvas: Canvas, found: dict[int, FaceResult], clock: Clock
    ) -> Result:
        with clock("paste"):
            restored = self.paster.result(canvas, prepared.kind)
        pixels = join_pixels(restored, canvas.alpha, prepared.layout)
        height, width = prepared.rgb.shape[:2]
        return Result(
            pixels,
            [found[index] for index in range(len(prepared.detections))],
            prepared.metadata,
            clock.timings,
            (width, height),
            self.upscale,
            COLOUR_NOTES[prepared.kind],
            self.background_name,
        )


def _build_parts(options: PipelineOptions) -> tuple[FaceFinder, CropRestorer, FacePaster]:
    """The three parts, in the order they load: models first, then background and masks."""
    device, offline = options.device, options.offline
    return (
        FaceFinder(options.find, device, offline),
        CropRestorer(options.run, device, offline),
        FacePaster(options.paste, device, options.run.precision, offline),
    )
