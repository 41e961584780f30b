"""``load_detector``: a face detector by zoo or architecture name, with optional weights.

The detectors themselves implement :class:`~faceprior.face.detector.FaceDetector`
(RetinaFace in ``faceprior.face.retinaface``, YuNet in ``faceprior.face.yunet``).
"""

from __future__ import annotations

import os

from ..errors import UnknownNameError
from ..hub import download
from ..hub.zoo import entries, get_entry
from ..models.retinaface import CONFIGS
from .detector import FaceDetector
from .retinaface import RetinaFaceDetector
from .types import DEFAULT_DETECTOR
from .yunet import YuNetDetector

RETINAFACE_ARCHITECTURES = tuple(CONFIGS)
YUNET_ARCHITECTURE = "yunet"


def load_detector(
    name: str = DEFAULT_DETECTOR,
    weights: str | os.PathLike | None = None,
    device: str = "cpu",
    score_threshold: float = 0.9,
    nms_threshold: float = 0.4,
    max_size: int | None = 1500,
    resize_to: int = 1000,
) -> FaceDetector:
    """Build a detector by zoo name or architecture name.

    ``name``: a zoo entry (``retinaface-mobilenet0.25``, ``retinaface-resnet50``,
    ``retinaface-resnet50-gpen``, ``yunet``) or an architecture name; without ``weights``
    the zoo file is downloaded (and cached) first. ``weights``: a local checkpoint
    (official ``.pth``, faceprior ``.safetensors``, or YuNet ``.onnx``). ``device`` is used by
    RetinaFace only (YuNet runs in OpenCV on the CPU).
    """
    architecture = _architecture_of(name)
    if weights is None:
        weights = download.fetch(get_entry(name))
    options = dict(
        score_threshold=score_threshold,
        nms_threshold=nms_threshold,
        max_size=max_size,
        resize_to=resize_to,
    )
    if architecture == YUNET_ARCHITECTURE:
        return YuNetDetector(weights, **options)
    return RetinaFaceDetector.from_checkpoint(weights, architecture, device=device, **options)


def _architecture_of(name: str) -> str:
    if name in RETINAFACE_ARCHITECTURES or name == YUNET_ARCHITECTURE:
        return name
    entry = entries().get(name)
    if entry is None or entry.architecture not in (*RETINAFACE_ARCHITECTURES, YUNET_ARCHITECTURE):
        known = sorted(
            {*RETINAFACE_ARCHITECTURES, YUNET_ARCHITECTURE}
            | {
                e.name
                for e in entries().values()
                if e.architecture in (*RETINAFACE_ARCHITECTURES, YUNET_ARCHITECTURE)
            }
        )
        raise UnknownNameError(f"unknown face detector {name!r}; known: {', '.join(known)}")
    return entry.architecture
