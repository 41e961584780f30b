"""Finding the faces to restore: detect, drop the small ones, choose (:class:`FaceFinder`)."""

from __future__ import annotations

import numpy as np

from ..face.types import FaceDetection
from .options import FindOptions


class FaceFinder:
    """The faces of a photo that :class:`~faceprior.pipeline.FaceRestorer` restores.

    The detector (``options.detector``: a name, loaded on first use, since aligned crops never
    need one; or a loaded detector) lists the faces best score first; those under
    ``min_face_size`` are dropped, and the rest are numbered in that order, the numbers the
    report shows and ``faces=[0, 2]`` takes.
    """

    def __init__(
        self, options: FindOptions | None = None, device: str = "cpu", offline: bool = False
    ) -> None:
        self.options = FindOptions() if options is None else options
        self.device = device
        self.offline = offline
        detector = self.options.detector
        self._detector = None if isinstance(detector, str) else detector

    @property
    def detector(self):
        """The face detector, loaded on first use."""
        if self._detector is None:
            from ..face.detection import load_detector
            from ..hub.download import offline

            options = self.options
            thresholds = {"nms_threshold": options.nms_threshold}
            if options.score_threshold is not None:
                thresholds["score_threshold"] = options.score_threshold
            with offline(self.offline):
                self._detector = load_detector(
                    options.detector,
                    weights=options.detector_weights,
                    device=self.device,
                    **thresholds,
                )
        return self._detector

    def find(self, rgb: np.ndarray) -> tuple[list[FaceDetection], list[int]]:
        """The chosen faces of an RGB photo (uint8, or float in [0, 1]) and their report
        numbers: their positions among all the faces kept after ``min_face_size``."""
        faces = self.options.faces
        if isinstance(faces, str):
            chosen = self._kept(rgb, faces)
            return chosen, list(range(len(chosen)))
        everything = self._kept(rgb, "all")
        numbers = [i for i in faces if i < len(everything)]
        return [everything[i] for i in numbers], numbers

    def _kept(self, rgb: np.ndarray, faces: str) -> list[FaceDetection]:
        """Detected faces over ``min_face_size``, narrowed to ``all``/``largest``/``center``."""
        detections = self.detector.detect(_bgr_uint8(rgb))
        kept = [d for d in detections if d.size >= self.options.min_face_size]
        if not kept or faces == "all":
            return kept
        if faces == "largest":
            return [max(kept, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))]
        center = np.array([rgb.shape[1], rgb.shape[0]], float) / 2
        return [min(kept, key=lambda d: np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - center))]


def _bgr_uint8(rgb: np.ndarray) -> np.ndarray:
    """What the detectors take: contiguous 8-bit BGR."""
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb[..., ::-1])
    return np.ascontiguousarray(np.rint(rgb[..., ::-1] * 255.0).astype(np.uint8))
