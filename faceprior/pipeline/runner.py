"""Aligning faces and running the restoration model(s) on them (:class:`CropRestorer`)."""

from __future__ import annotations

import numpy as np

from ..face.types import FaceDetection
from .choose import load_restorer
from .options import RunOptions, default_batch_size
from .results import FaceBatch


class CropRestorer:
    """The restoration model, loaded once, with how it runs (precision, compilation, batch
    size: a :class:`~faceprior.runtime.ModelRunner`), and the optional small model for faces
    too small in the output for the main model's resolution to show.

    It plans a photo's forward passes (:meth:`plan`: which faces, which model, ``batch_size``
    at a time), aligns each pass's faces to the model's template (:meth:`align`) and restores
    them (:meth:`restore`); a face's result does not depend on the batch it ran in.
    ``model_name`` and ``small_model_name`` are what the report calls the models.
    """

    def __init__(
        self, options: RunOptions | None = None, device: str = "cpu", offline: bool = False
    ) -> None:
        from ..hub.download import offline as offline_scope
        from ..runtime import ModelRunner, check_precision, reuse_freed_memory

        options = RunOptions() if options is None else options
        check_precision(options.precision, device)
        if options.reuse_memory:
            reuse_freed_memory()
        self.options = options
        self.device = device
        self.batch_size = options.batch_size or default_batch_size(device)
        with offline_scope(offline):
            self.model, self.model_name = load_restorer(options.model, device, options.method)
        self.small_model = self.small_model_name = None
        self.small_face_size = 0.0
        if options.small_model is not None:
            with offline_scope(offline):
                self.small_model, name = load_restorer(options.small_model, device)
            # Two loaded networks of one class would share a name; the report must tell them apart.
            self.small_model_name = name if name != self.model_name else f"{name} (small)"
            size = self.small_model.conventions.output_size
            given = options.small_face_size
            self.small_face_size = float(size if given is None else given)
        self._runners = {
            id(model): ModelRunner(model, options.precision, options.compile, self.batch_size)
            for model in (self.model, self.small_model)
            if model is not None
        }

    def model_runner(self, model: str):
        """The :class:`~faceprior.runtime.ModelRunner` of a model key (``main``/``small``)."""
        return self._runners[id(self.small_model if model == "small" else self.model)]

    def conventions(self, model: str):
        """The input/output conventions of a model key (``main``/``small``)."""
        return self.model_runner(model).conventions

    def plan(
        self, detections: list[FaceDetection], upscale: float
    ) -> list[tuple[str, str, list[int]]]:
        """``(model key, model name, face indices)`` per forward pass: small faces (by
        :meth:`pasted_size` at ``upscale``) to the small model, ``batch_size`` at a time."""
        if self.small_model is None:
            routes = [("main", self.model_name, list(range(len(detections))))]
        else:
            small = [self.pasted_size(d, upscale) < self.small_face_size for d in detections]
            routes = [
                ("main", self.model_name, [i for i, s in enumerate(small) if not s]),
                ("small", self.small_model_name, [i for i, s in enumerate(small) if s]),
            ]
        return [
            (model, name, chosen[start : start + self.batch_size])
            for model, name, chosen in routes
            for start in range(0, len(chosen), self.batch_size)
        ]

    def align(
        self,
        rgb: np.ndarray,
        detections: list[FaceDetection],
        model: str,
        name: str,
        indices: list[int],
    ) -> FaceBatch:
        """The faces ``indices`` of ``detections`` aligned to the template of ``model``."""
        from ..face.stages import align_faces

        conventions = self.conventions(model)
        crops, matrices, valid = align_faces(
            rgb, [detections[i] for i in indices], conventions.template, conventions.input_size
        )
        return FaceBatch(model, name, indices, crops, matrices, valid)

    def restore(self, batch: FaceBatch) -> np.ndarray:
        """The restored faces of one batch, (N, S, S, 3) float32 in [0, 1]."""
        from ..face.stages import restore_batches

        return restore_batches(
            self.model_runner(batch.model), batch.crops, self.batch_size, self.device
        )

    def pasted_size(self, detection: FaceDetection, upscale: float) -> float:
        """Side, in output pixels, of the main model's aligned crop of this face once pasted
        into the photo upscaled by ``upscale``.

        Paste-back resamples the model's S x S output onto exactly this many pixels, so when it
        is at most the small model's output size the main model's extra resolution is shrunk
        away and cannot be seen. Measured from the landmarks' similarity (as alignment does)
        rather than the detection box, whose margins differ between detectors and poses.
        """
        from ..face.align import similarity_transform, template_points
        from ..face.paste import paste_scale

        conventions = self.model.conventions
        size = conventions.input_size
        target = template_points(conventions.template, size).astype(np.float32)
        matrix = similarity_transform(detection.landmarks.astype(np.float32), target)
        return size / paste_scale(matrix) * upscale
