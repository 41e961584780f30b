"""RetinaFace (Deng et al., CVPR 2020) as a face detector: anchors, decoding and NMS.

The network and its weights layout are in ``faceprior.models.retinaface``; this module holds
the anchor (prior box) grid, the decoding of the raw regressions and the official
post-processing (score threshold, top-k, NMS) behind the :class:`FaceDetector` interface.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from ..errors import ArgumentError
from ..hub.checkpoint import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    state_dict_candidates,
)
from ..models.onnx import OnnxRetinaFace
from ..models.retinaface import (
    CONFIGS,
    PIXEL_MEAN_BGR,
    RetinaFace,
    RetinaFaceConfig,
    detect_backbone,
)
from .detector import FaceDetector
from .nms import nms
from .types import DEFAULT_DETECTOR


def preprocess(image_bgr: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (H, W, 3) BGR -> (1, 3, H, W) float32 minus the BGR means (no /255)."""
    x = torch.from_numpy(np.ascontiguousarray(image_bgr)).to(device=device, dtype=torch.float32)
    x = x - torch.tensor(PIXEL_MEAN_BGR, device=x.device)
    return x.permute(2, 0, 1).unsqueeze(0)


def prior_boxes(config: RetinaFaceConfig, height: int, width: int) -> np.ndarray:
    """Anchors (N, 4) float32 as (cx, cy, w, h) relative to the image size.

    Order: level by level, rows then columns, ``min_sizes`` of the level innermost; the
    grid of a level with step ``s`` is ceil(H/s) x ceil(W/s), matching the network output.
    """
    levels = []
    for step, sizes in zip(config.steps, config.min_sizes, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = np.meshgrid(
            (np.arange(rows) + 0.5) * step / height,
            (np.arange(cols) + 0.5) * step / width,
            indexing="ij",
        )
        level = np.empty((rows, cols, len(sizes), 4), dtype=np.float64)
        level[..., 0] = cx[..., None]
        level[..., 1] = cy[..., None]
        level[..., 2] = np.asarray(sizes, dtype=np.float64) / width
        level[..., 3] = np.asarray(sizes, dtype=np.float64) / height
        levels.append(level.reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """SSD box decoding: (N, 4) regressions -> (N, 4) corners (x0, y0, x1, y1), relative."""
    centre = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * variances[1])
    corner0 = centre - size / 2
    return np.concatenate([corner0, corner0 + size], axis=1)


def decode_landmarks(
    landmarks: np.ndarray, priors: np.ndarray, variances: tuple[float, float]
) -> np.ndarray:
    """(N, 10) landmark regressions -> (N, 5, 2) points relative to the image size."""
    offsets = landmarks.reshape(-1, 5, 2)
    return priors[:, None, :2] + offsets * variances[0] * priors[:, None, 2:]


def decode_detections(
    loc: np.ndarray,
    conf: np.ndarray,
    landmarks: np.ndarray,
    config: RetinaFaceConfig,
    height: int,
    width: int,
) -> np.ndarray:
    """Every anchor as a pixel row ``[x0, y0, x1, y1, score, l1x, l1y, ..., l5x, l5y]``.

    ``loc``/``conf``/``landmarks`` are one image's network outputs (N, 4/2/10); the row
    layout is the official ``dets`` layout, so candidates compare directly with its output.
    """
    priors = prior_boxes(config, height, width)
    if len(priors) != len(loc):
        raise ValueError(f"{len(loc)} predictions for {len(priors)} anchors of {height}x{width}")
    scale = np.array([width, height], dtype=np.float32)
    boxes = decode_boxes(loc, priors, config.variances) * np.tile(scale, 2)
    points = decode_landmarks(landmarks, priors, config.variances) * scale
    return np.concatenate([boxes, conf[:, 1:2], points.reshape(-1, 10)], axis=1).astype(np.float32)


def select_detections(
    rows: np.ndarray,
    score_threshold: float,
    nms_threshold: float,
    top_k: int = 5000,
    keep_top_k: int = 750,
) -> np.ndarray:
    """Official post-processing of decoded rows: score > threshold, best ``top_k``, NMS,
    then at most ``keep_top_k`` rows, best first."""
    rows = rows[rows[:, 4] > score_threshold]
    rows = rows[np.argsort(rows[:, 4])[::-1][:top_k]]
    keep = nms(rows[:, :4], rows[:, 4], nms_threshold)
    return rows[keep][:keep_top_k]


class RetinaFaceDetector(FaceDetector):
    """RetinaFace network + anchors + NMS behind the :class:`FaceDetector` interface.

    ``top_k``/``keep_top_k`` bound the candidates before and the faces after NMS (official
    5000/750); the other options are described on :class:`FaceDetector`.
    """

    def __init__(
        self,
        model: RetinaFace,
        device: torch.device | str = "cpu",
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        max_size: int | None = 1500,
        resize_to: int = 1000,
        top_k: int = 5000,
        keep_top_k: int = 750,
    ) -> None:
        super().__init__(score_threshold, nms_threshold, max_size, resize_to)
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.top_k = top_k
        self.keep_top_k = keep_top_k

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        architecture: str = DEFAULT_DETECTOR,
        device: torch.device | str = "cpu",
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        max_size: int | None = 1500,
        resize_to: int = 1000,
    ) -> RetinaFaceDetector:
        """Load official (raw, ``state_dict``-wrapped or ``module.``-prefixed) or faceprior
        safetensors weights; the file must hold the backbone ``architecture`` names."""
        model = load_retinaface(path, architecture)
        return cls(model, device, score_threshold, nms_threshold, max_size, resize_to)

    def raw_outputs(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network outputs ``loc``, ``conf``, ``landmarks`` for one BGR uint8 image, as numpy."""
        with torch.inference_mode():
            loc, conf, landmarks = self.model(preprocess(image_bgr, self.device))
        return tuple(t[0].float().cpu().numpy() for t in (loc, conf, landmarks))

    def detect_arrays(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        height, width = image_bgr.shape[:2]
        rows = decode_detections(*self.raw_outputs(image_bgr), self.model.config, height, width)
        rows = select_detections(
            rows, self.score_threshold, self.nms_threshold, self.top_k, self.keep_top_k
        )
        return rows[:, :4], rows[:, 4], rows[:, 5:].reshape(-1, 5, 2)


def load_retinaface(path: str | os.PathLike, architecture: str) -> RetinaFace:
    """A RetinaFace network with weights from ``path`` (strict: every key must fit).

    An ``.onnx`` file exported by ``faceprior export --detector`` runs in ONNX Runtime.
    """
    if architecture not in CONFIGS:
        known = ", ".join(CONFIGS)
        raise ArgumentError(
            "architecture", f"{architecture!r} is not a RetinaFace architecture; known: {known}"
        )
    if str(path).endswith(".onnx"):
        return OnnxRetinaFace(path, architecture)
    expected = CONFIGS[architecture].backbone
    checkpoint = read_checkpoint(path)
    found = []
    for where, state_dict in state_dict_candidates(checkpoint.content):
        backbone = detect_backbone(state_dict)
        if backbone == expected:
            model = RetinaFace(expected)
            load_state_dict_strict(model, state_dict, f"{path} ({where})")
            return model
        if backbone is not None:
            found.append(backbone)
    if found:
        other = next(name for name, c in CONFIGS.items() if c.backbone == found[0])
        raise CheckpointError(f"{path} holds {other} weights, not {architecture}; use {other!r}")
    raise CheckpointError(f"{path} holds no RetinaFace state dict")
