"""What the pipeline hands between its stages and back to the caller: plain dataclasses of
arrays, so that a stage can run in another process or on another machine (pickled)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..face.types import FaceDetection
from ..io.images import ImageMetadata, PixelLayout


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
    colour kind (:mod:`faceprior.face.grey`), the aligned batches, the time spent so far and
    each face's paste-back strength."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    layout: PixelLayout
    metadata: ImageMetadata
    detections: list[FaceDetection]
    numbers: list[int]
    kind: str
    batches: list[FaceBatch]
    timings: dict[str, float] = field(default_factory=dict)
    strengths: list[float] = field(default_factory=list)


@dataclass
class RestoredCrops:
    """The network's output for each :class:`FaceBatch` of a photo, (N, S, S, 3) float32."""

    faces: list[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)
