"""Identity preservation: cosine similarity and angle between face-recognition embeddings.

Restored and ground-truth faces are both FFHQ-aligned squares, so each is cropped to the
112x96 SphereFace layout with the same fixed warp (``ffhq_crop_matrix``) and embedded by
MobileFaceNet. The cosine (``ids``, 1 = same embedding) and the angle in degrees
(``id_angle``, the arccos, as papers that report "identity degree" do) are per image pair.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InputError
from ..models.mobilefacenet import MobileFaceNet, embed, ffhq_crop_matrix, warp_crops


class IdentityScorer:
    """Embeds FFHQ-aligned RGB images (H, W, 3) in [0, 255] and compares them."""

    columns = ("ids", "id_angle")

    def __init__(self, model: MobileFaceNet, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.device = device

    @torch.no_grad()
    def embedding(self, image: np.ndarray) -> torch.Tensor:
        height, width = image.shape[:2]
        if height != width:
            raise InputError(
                f"identity metric expects square FFHQ-aligned faces, got {width}x{height}"
            )
        tensor = torch.as_tensor(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)[None]
        crop = warp_crops(tensor.to(self.device), ffhq_crop_matrix(height))
        return embed(self.model, crop)[0].cpu()

    def score(self, restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        cosine = float((self.embedding(restored) * self.embedding(gt)).sum())
        cosine = max(-1.0, min(1.0, cosine))
        return {"ids": cosine, "id_angle": math.degrees(math.acos(cosine))}
