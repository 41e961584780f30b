"""UDRL: unsupervised degradation representation learning of the DRE with MoCo.

Panini-Net (Wang et al., AAAI 2022) trains its degradation representation encoder this way.
A positive pair is two *different* faces degraded with the *same* drawn degradation
parameters (``faceprior.data.pairs``); the negatives are the keys of earlier batches kept in
a queue. Since content differs inside a pair and the degradation differs across pairs, the
encoder can only solve the task by describing the degradation. Defaults are those the released
encoder was trained with (the command-line flags of the official script are parsed but
ignored): 256-d, queue 8192, momentum 0.999, temperature 0.07, the encoder's own 2-layer MLP
head.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from .degradation_encoder import REPRESENTATION_DIM, DegradationEncoder


class MoCo(nn.Module):
    """Query encoder, momentum key encoder and key queue, in the official state-dict layout
    (``queue``, ``queue_ptr``, ``encoder_q.*``, ``encoder_k.*``), so that
    ``faceprior.load_model`` takes the trained query encoder out of our files as out of theirs.
    """

    def __init__(
        self,
        queue_size: int = 8192,
        momentum: float = 0.999,
        temperature: float = 0.07,
        dim: int = REPRESENTATION_DIM,
    ):
        super().__init__()
        if not 0.0 <= momentum <= 1.0 or temperature <= 0 or queue_size < 1:
            raise ValueError("need 0 <= momentum <= 1, temperature > 0 and queue_size >= 1")
        self.momentum = momentum
        self.temperature = temperature
        self.register_buffer("queue", F.normalize(torch.randn(dim, queue_size), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self.encoder_q = DegradationEncoder()
        self.encoder_k = copy.deepcopy(self.encoder_q)
        for param in self.encoder_k.parameters():
            param.requires_grad_(False)

    def embed(self, encoder: DegradationEncoder, images: torch.Tensor) -> torch.Tensor:
        """Unit-length contrastive embedding: normalize(mlp(E(x)))."""
        return F.normalize(encoder.project(encoder(images)), dim=1)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """key <- m * key + (1 - m) * query, parameters only (BN statistics are the key's own)."""
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.mul_(self.momentum).add_(param_q.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest queue entries with ``keys`` (gathered from all processes)."""
        keys = _gather(keys)
        size = self.queue.shape[1]
        if size % keys.shape[0] != 0:
            raise ValueError(
                f"queue size {size} must be a multiple of the global batch {keys.shape[0]}"
            )
        start = int(self.queue_ptr)
        self.queue[:, start : start + keys.shape[0]] = keys.T
        self.queue_ptr[0] = (start + keys.shape[0]) % size

    def forward(self, query: torch.Tensor, key: torch.Tensor, update: bool = True) -> torch.Tensor:
        """Logits (B, 1 + K): column 0 is the positive pair, the rest the queued negatives.

        ``update`` runs MoCo's bookkeeping: the momentum step before the keys are encoded
        and the enqueue after the logits are taken (the official order).
        """
        q = self.embed(self.encoder_q, query)
        with torch.no_grad():
            if update:
                self.momentum_update()
            k = self.embed(self.encoder_k, key)
        positive = (q * k).sum(1, keepdim=True)
        negative = q @ self.queue.clone().detach()
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        if update:
            self.enqueue(k)
        return logits


def info_nce_loss(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the positive in column 0 (InfoNCE), as the official MoCo loss."""
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def positive_accuracy(logits: torch.Tensor) -> float:
    """Share of queries whose positive key beats every negative (the official 'acc@1')."""
    return float((logits.argmax(1) == 0).float().mean())


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)
