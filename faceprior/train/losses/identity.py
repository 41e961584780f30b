"""Identity loss: ``1 - cos`` between face-recognition embeddings of output and target.

Two backbones, chosen by name; a missing weights file is an error either way, because a random
embedding would train nothing:

* ``arcface-ir-se50``: what GPEN uses (official train_simple.py): ArcFace IR-SE-50 of
  :mod:`faceprior.models.arcface` with the public ``model_ir_se50.pth``, fed GPEN's fixed crop
  of the aligned face (:func:`~faceprior.models.arcface.gpen_crop`) pooled to 112x112, straight
  from the [-1, 1] RGB tensors.
* ``mobilefacenet`` (default): the MobileFaceNet of :mod:`faceprior.models.mobilefacenet`
  (CASIA-WebFace weights, a 4 MB file), on a 112x96 SphereFace-aligned crop of the
  FFHQ-aligned face. Lighter, for when the ArcFace weights are not at hand.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

BACKBONES = ("mobilefacenet", "arcface-ir-se50")


class IdentityLoss(nn.Module):
    """Mean ``1 - cos(e(output), e(target))`` for FFHQ-aligned [-1, 1] RGB faces."""

    def __init__(self, weights: str | os.PathLike, backbone: str = "mobilefacenet"):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown identity backbone {backbone!r}; available: {BACKBONES}")
        if not weights or not Path(weights).is_file():
            raise FileNotFoundError(
                f"identity loss needs the {backbone} weights file; got {str(weights)!r}. "
                "Set the path in the config, or set the identity weight to 0."
            )
        self.backbone = backbone
        if backbone == "arcface-ir-se50":
            from ...models.arcface import load_arcface

            self.net = load_arcface(weights)
        else:
            from ...models.mobilefacenet import load_mobilefacenet

            self.net = load_mobilefacenet(weights)
        self._matrices: dict[int, object] = {}

    def train(self, mode: bool = True) -> IdentityLoss:
        super().train(mode)
        self.net.eval()
        return self

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings of (N, 3, H, W) FFHQ-aligned faces in [-1, 1]."""
        if self.backbone == "arcface-ir-se50":
            from ...models.arcface import gpen_crop

            return self.net(gpen_crop(images.float()))
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
