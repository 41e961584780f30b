"""Spectral-normalised convolution with the exact eval-time behaviour of PSFR-GAN checkpoints.

The official networks wrap every ``nn.Conv2d`` in PyTorch's (old, hook-based) spectral norm, so
checkpoints hold ``weight_orig`` plus the power-iteration vectors ``weight_u``/``weight_v`` and
no ``weight``. In eval the effective weight is ``weight_orig / sigma`` with
``sigma = u . (W v)`` computed from the *stored* vectors (no iteration); the released vectors
are not fully converged, so using the exact largest singular value, or iterating in eval,
changes the output. Owning these three tensors directly (instead of torch's hooks) keeps that
behaviour explicit and the state-dict keys identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

INITIAL_ITERATIONS = 20


class SpectralConv2d(nn.Module):
    """``nn.Conv2d`` whose weight is divided by a power-iteration estimate of its spectral norm.

    Training mode runs ``power_iterations`` steps that update ``weight_u``/``weight_v`` in place
    before ``sigma`` is computed (as torch's ``spectral_norm``); eval mode uses them as stored.
    Parameters are registered as ``bias`` then ``weight_orig`` (the official key order).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        power_iterations: int = 1,
        eps: float = 1e-12,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.padding = padding
        self.power_iterations = power_iterations
        self.eps = eps
        reference = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
        self.bias = reference.bias
        self.weight_orig = nn.Parameter(reference.weight.detach().clone())
        fan = in_channels * kernel_size * kernel_size
        self.register_buffer("weight_u", F.normalize(torch.randn(out_channels), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(torch.randn(fan), dim=0, eps=eps))
        # Fresh random vectors give sigma near 0 (even negative): start from a usable estimate
        # (skipped for shape-only builds on the meta device).
        if not self.weight_orig.is_meta:
            self.power_iteration(INITIAL_ITERATIONS)

    def _matrix(self) -> torch.Tensor:
        return self.weight_orig.reshape(self.out_channels, -1)

    @torch.no_grad()
    def power_iteration(self, steps: int) -> None:
        """Refine the stored singular-vector estimates in place (``v = W^T u``, ``u = W v``)."""
        matrix = self._matrix()
        for _ in range(steps):
            self.weight_v.copy_(F.normalize(matrix.t() @ self.weight_u, dim=0, eps=self.eps))
            self.weight_u.copy_(F.normalize(matrix @ self.weight_v, dim=0, eps=self.eps))

    def sigma(self) -> torch.Tensor:
        """The spectral-norm estimate ``u . (W v)`` from the current vectors."""
        u, v = self.weight_u, self.weight_v
        if self.training:
            # The buffers are updated in place by the next iteration; autograd needs copies.
            u, v = u.clone(), v.clone()
        return torch.dot(u, self._matrix() @ v)

    def effective_weight(self) -> torch.Tensor:
        # In float32 even under autocast: sigma scales every weight of the layer, and bf16
        # products would not match the float32 singular vectors they are dotted with.
        with torch.autocast(self.weight_orig.device.type, enabled=False):
            if self.training and self.power_iterations > 0:
                self.power_iteration(self.power_iterations)
            return self.weight_orig / self.sigma()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        kernel = tuple(self.weight_orig.shape[2:])
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={kernel}"
            f", stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )
