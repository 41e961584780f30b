"""Identity loss: ``1 - cos`` between face-recognition embeddings of output and target.

GPEN uses ArcFace IR-SE-50 (``model_ir_se50.pth``) on a fixed crop of the aligned face
(gpen.md §5.1). That network is not part of faceprior yet and its weights are not available
here, so the pluggable backbone is the MobileFaceNet of :mod:`faceprior.models.mobilefacenet`
(CASIA-WebFace weights), which takes a 112x96 SphereFace-aligned crop of the FFHQ-aligned face.
As with VGG, a missing weights file is an error: a random embedding would train nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

BACKBONES = ("mobilefacenet",)


class IdentityLoss(nn.Module):
    """Mean ``1 - cos(e(output), e(target))`` for FFHQ-aligned [-1, 1] RGB faces."""

    def __init__(self, weights: str | os.PathLike, backbone: str = "mobilefacenet"):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(
                f"unknown identity backbone {backbone!r}; available: {BACKBONES} "
                "(ArcFace IR-SE-50 as used by GPEN is not implemented yet)"
            )
        if not weights or not Path(weights).is_file():
            raise FileNotFoundError(
                f"identity loss needs the {backbone} weights file; got {str(weights)!r}. "
                "Set the path in the config, or set the identity weight to 0."
            )
        from ...models.mobilefacenet import load_mobilefacenet

        self.net = load_mobilefacenet(weights)
        self._matrices: dict[int, object] = {}

    def train(self, mode: bool = True) -> IdentityLoss:
        super().train(mode)
        self.net.eval()
        return self

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        from ...models.mobilefacenet import embed, ffhq_crop_matrix, warp_crops

        size = images.shape[-1]
        if size not in self._matrices:
            self._matrices[size] = ffhq_crop_matrix(size)
        crops = warp_crops((images.float() + 1) / 2, self._matrices[size])
        return embed(self.net, crops)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target_embedding = self.embed(target)
        cosine = F.cosine_similarity(self.embed(output), target_embedding, dim=1)
        return (1.0 - cosine).mean()
