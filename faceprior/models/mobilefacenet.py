"""MobileFaceNet face-recognition embedding (Chen et al., 2018) and the crop it expects.

Layout of the public CASIA-WebFace checkpoint (``{'epoch', 'net_state_dict'}``): a 3x3
stride-2 conv, a depthwise 3x3 conv, 15 inverted-residual bottlenecks (expansion t, channels
c, repeats n, first stride s: [2,64,5,2], [4,128,1,2], [2,128,6,1], [4,128,1,2], [2,128,2,1]),
a 1x1 conv to 512, the global depthwise conv ``linear7`` (7x6 kernel, no activation) and the
1x1 ``linear1`` to a 128-d embedding. Convs have no bias; BN follows every conv; PReLU after
all but the linear ones; a bottleneck adds its input when stride is 1 and channels match.

Input: a 112x96 (height x width) RGB face aligned to the SphereFace 5-point template, scaled
as ``(pixel - 127.5) / 128`` (:func:`embed` does this from [0, 1]). Faces already aligned
FFHQ-style are cropped with one fixed similarity warp (:func:`ffhq_crop_matrix`), fitted from
the ``ffhq`` alignment template to the SphereFace one (``faceprior.models.templates``); other
faces go through :func:`landmark_crop_matrix` with detected landmarks.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..hub.checkpoint import CheckpointError, load_state_dict_strict, read_checkpoint
from .templates import SPHEREFACE_96X112, similarity_transform, template_points

CROP_SIZE = (112, 96)  # height, width

# The SphereFace 5-point template of a 96x112 crop (x, y), in faceprior's landmark order.
SPHEREFACE_TEMPLATE = np.array(SPHEREFACE_96X112)

BOTTLENECK_SETTING = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class ConvBlock(nn.Module):
    """Conv (no bias) + BN, followed by PReLU unless ``linear``."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0, groups=1, linear=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = None if linear else nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (stride), 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileFaceNet(nn.Module):
    """Embedding network; ``forward`` takes (N, 3, 112, 96) normalised input, returns (N, 128)."""

    def __init__(self, embedding_size: int = 128):
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, groups=64)
        blocks: list[nn.Module] = []
        channels = 64
        for expansion, out_channels, repeats, stride in BOTTLENECK_SETTING:
            for i in range(repeats):
                blocks.append(
                    Bottleneck(channels, out_channels, stride if i == 0 else 1, expansion)
                )
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(channels, 512, 1)
        self.linear7 = ConvBlock(512, 512, (7, 6), groups=512, linear=True)
        self.linear1 = ConvBlock(512, embedding_size, 1, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.blocks(self.dw_conv1(self.conv1(x))))
        return self.linear1(self.linear7(x)).flatten(1)


def load_mobilefacenet(path: str | os.PathLike) -> MobileFaceNet:
    """Load the ``{'epoch', 'net_state_dict'}`` file (or a plain state dict), strict, eval mode."""
    content = read_checkpoint(path).content
    if isinstance(content, dict) and "net_state_dict" in content:
        content = content["net_state_dict"]
    if not isinstance(content, dict):
        raise CheckpointError(f"{path}: expected a MobileFaceNet state dict")
    state_dict = {k.removeprefix("module."): v for k, v in content.items()}
    embedding = state_dict.get("linear1.conv.weight")
    model = MobileFaceNet(int(embedding.shape[0]) if embedding is not None else 128)
    load_state_dict_strict(model, state_dict, str(path))
    return model.eval().requires_grad_(False)


def embed(model: MobileFaceNet, crops: torch.Tensor) -> torch.Tensor:
    """L2-normalised embeddings of (N, 3, 112, 96) RGB crops in [0, 1]."""
    if crops.shape[-2:] != CROP_SIZE:
        raise ValueError(f"MobileFaceNet needs 112x96 crops, got {tuple(crops.shape[-2:])}")
    return F.normalize(model((crops * 255.0 - 127.5) / 128.0), dim=1)


def landmark_crop_matrix(landmarks: np.ndarray) -> np.ndarray:
    """Image -> 112x96 crop matrix for a face with 5 detected landmarks (template order)."""
    return similarity_transform(np.asarray(landmarks).reshape(5, 2), SPHEREFACE_TEMPLATE)


def ffhq_crop_matrix(size: int) -> np.ndarray:
    """Image -> 112x96 crop matrix for an FFHQ-aligned face of ``size`` x ``size`` pixels."""
    return landmark_crop_matrix(template_points("ffhq", size))


def warp_crops(images: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """Differentiable 112x96 crops of (N, C, H, W) images with one image -> crop matrix.

    Bilinear, pixel centres at integer coordinates and zeros outside (as ``cv2.warpAffine``
    with ``INTER_LINEAR``), so training losses can back-propagate through the crop.
    """
    height, width = images.shape[-2:]
    forward = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2]
    ys, xs = np.mgrid[0 : CROP_SIZE[0], 0 : CROP_SIZE[1]].astype(np.float64)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    grid = np.stack([(2 * src_x + 1) / width - 1, (2 * src_y + 1) / height - 1], axis=-1)
    grid_t = torch.as_tensor(grid, dtype=images.dtype, device=images.device)
    grid_t = grid_t.unsqueeze(0).expand(images.shape[0], -1, -1, -1)
    return F.grid_sample(images, grid_t, mode="bilinear", padding_mode="zeros", align_corners=False)
