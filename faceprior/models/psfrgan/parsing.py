"""Face parsing on its own: label maps, colour-coded visualisations and paste-back masks.

The parser is PSFR-GAN's :class:`~faceprior.models.psfrgan.parsenet.ParseNet` (the official
``parse_multi_iter_90000.pth`` or any file of that layout). Pipelines use
:func:`paste_back_mask` to blend restored faces only where there is face, hair or neck, as
GPEN's ``FaceParse`` does (official face_enhancement.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..loading import load_model
from .parsenet import CLASS_NAMES, ParseNet

DEFAULT_PARSER = "psfrgan-parsenet"

# Official MASK_COLORMAP (RGB), one colour per CelebAMask-HQ class.
MASK_COLORMAP = (
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204),
    (0, 255, 255), (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0),
    (0, 0, 153), (0, 0, 204), (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51),
    (0, 204, 0),
)  # fmt: skip

# Classes left out of the paste-back mask: background, hat, cloth (GPEN's FaceParse).
EXCLUDED_FROM_FACE = (0, 14, 18)

LEGEND_WIDTH = 160


@dataclass(frozen=True)
class FaceParsing:
    """Per-face parsing result.

    ``labels``: (N, H, W) int64 class indices (CelebAMask-HQ order, see ``CLASS_NAMES``).
    ``visualisation``: (N, H, W', 3) uint8 RGB colour-coded maps (official colours), with a
    legend strip on the right when requested (W' = W + ``LEGEND_WIDTH``).
    """

    labels: torch.Tensor
    visualisation: np.ndarray


def load_parser(
    name_or_path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> ParseNet:
    """Load a ParseNet from a zoo name or a file (default: the official PSFR-GAN parser)."""
    network = load_model(name_or_path or DEFAULT_PARSER, device=device)
    if not isinstance(network, ParseNet):
        raise ValueError(
            f"{name_or_path}: expected a face-parsing network (ParseNet), "
            f"found {network.conventions.architecture}"
        )
    return network


def parse_labels(parser: ParseNet, faces: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """(N, H, W) class indices for aligned faces (N, 3, H, W), RGB in [-1, 1].

    Faces are bilinearly resized to ``size`` (default: the parser's official input size) for
    the network and the labels are resized back with nearest neighbour.
    """
    if faces.ndim != 4 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (N, 3, H, W), got {tuple(faces.shape)}")
    size = size or parser.conventions.input_size
    height, width = faces.shape[2:]
    with torch.no_grad():
        resized = faces
        if (height, width) != (size, size):
            resized = F.interpolate(faces, (size, size), mode="bilinear", align_corners=False)
        labels = parser(resized)[0].argmax(dim=1)
        if labels.shape[1:] != (height, width):
            labels = F.interpolate(labels[:, None].float(), (height, width), mode="nearest")
            labels = labels[:, 0].long()
    return labels


def colorize(labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N, H, W) labels -> (N, H, W, 3) uint8 RGB with the official class colours."""
    palette = np.asarray(MASK_COLORMAP, dtype=np.uint8)
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return palette[labels]


def legend(height: int) -> np.ndarray:
    """A (height, LEGEND_WIDTH, 3) uint8 RGB strip naming each class next to its colour."""
    import cv2

    strip = np.full((height, LEGEND_WIDTH, 3), 255, dtype=np.uint8)
    row = max(1, height // len(CLASS_NAMES))
    scale = min(0.5, row / 30)
    for index, (name, colour) in enumerate(zip(CLASS_NAMES, MASK_COLORMAP, strict=True)):
        top = index * row
        cv2.rectangle(strip, (2, top + 1), (2 + row - 2, top + row - 2), colour, thickness=-1)
        cv2.putText(
            strip, f"{index} {name}", (row + 4, top + int(row * 0.75)),
            cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA,
        )  # fmt: skip
    return strip


def parse_faces(
    faces: torch.Tensor,
    parser: ParseNet | None = None,
    size: int | None = None,
    with_legend: bool = True,
) -> FaceParsing:
    """Parse aligned faces (N, 3, H, W), RGB in [-1, 1]; see :class:`FaceParsing`.

    ``parser`` defaults to the zoo's official PSFR-GAN ParseNet (downloaded on first use).
    """
    parser = parser if parser is not None else load_parser(device=faces.device)
    labels = parse_labels(parser, faces, size)
    visualisation = colorize(labels)
    if with_legend:
        strip = legend(visualisation.shape[1])
        visualisation = np.concatenate(
            [visualisation, np.broadcast_to(strip, (len(visualisation), *strip.shape))], axis=2
        )
    return FaceParsing(labels=labels, visualisation=visualisation)


def face_region_mask(labels: torch.Tensor) -> torch.Tensor:
    """1.0 where the label is face, hair, neck or accessories; 0.0 on background, hat, cloth."""
    excluded = torch.tensor(EXCLUDED_FROM_FACE, device=labels.device)
    return (~torch.isin(labels, excluded)).float()


def paste_back_mask(faces: torch.Tensor, parser: ParseNet, size: int | None = None) -> torch.Tensor:
    """(N, H, W) binary mask of the face region of aligned faces, for blending restored faces.

    Only the hard mask: feathering (GPEN blurs it and clears a border band) is left to the
    pipeline, which knows the output scale.
    """
    return face_region_mask(parse_labels(parser, faces, size))
