"""How restoration models are run fast: memory reuse, reduced precision, compilation.

Nothing here changes what a model computes beyond the rounding of the precision asked for;
the measured effect of each setting is in benchmarks/README.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform

from .errors import ArgumentError

PRECISIONS = ("fp32", "bf16", "fp16")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_memory_reused = False


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the OS.

    A forward pass of a large model allocates and frees activations of tens of megabytes.
    glibc serves blocks that large with ``mmap`` and unmaps them when freed, so every later
    pass takes a page fault and a freshly zeroed page for each 4 KiB it writes: GPEN-BFR-512
    on 2 CPU cores spent about 30 % of its time there (1.95 -> 1.40 s per face, measured).
    Serving large blocks from the heap and never trimming it lets the next pass reuse the
    same pages, as tcmalloc and jemalloc do. Peak memory stays the same; memory freed after
    the peak is kept by the process rather than returned. Process-wide and idempotent;
    returns whether it is in effect (False off glibc, where it does nothing).
    """
    global _memory_reused
    if _memory_reused:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _memory_reused = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
    return _memory_reused


def check_precision(precision: str, device) -> None:
    """Refuse precisions a device cannot run well, before any model is loaded."""
    if precision not in PRECISIONS:
        raise ArgumentError("precision", f"must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp16" and _device_type(device) == "cpu":
        raise ArgumentError(
            "precision", "fp16 is for GPUs; on a CPU use bf16 (fast on CPUs with AVX512-BF16/AMX)"
        )


def autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """The autocast context that runs a model in ``precision`` (fp32: none).

    Autocast rather than casting the weights: convolutions and matrix products run in the
    reduced type while reductions such as StyleGAN2's demodulation stay in fp32, which is
    what keeps bf16 GPEN-BFR-512 about 50 dB from its fp32 output.
    """
    import torch

    check_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(_device_type(device), dtype=dtype)


def _device_type(device) -> str:
    return str(device).split(":")[0]


class ModelRunner:
    """A restoration model with how it is run: precision, compiled or not, batch size.

    ``compile``: ``torch.compile`` with weight freezing (constant-folded, prepacked
    convolution weights, fused element-wise kernels). The first batch pays the compilation
    (20-90 s for the released models on 2 CPU cores, under 10 s once PyTorch's disk
    cache holds the kernels); every batch is then padded to
    ``batch_size`` so that a photo's last, smaller batch does not compile a second graph.
    """

    def __init__(
        self, model, precision: str = "fp32", compile: bool = False, batch_size: int = 1
    ) -> None:
        device = next(iter(model.parameters()), None)
        device = "cpu" if device is None else device.device
        check_precision(precision, device)
        if (precision != "fp32" or compile) and not _is_torch_model(model):
            raise ArgumentError(
                "precision",
                f"and compile apply to PyTorch models only; {type(model).__name__} runs an "
                f"exported graph (export it in the precision you need)",
            )
        if compile and _device_type(device) == "cpu":
            _require_cpp_compiler()
        self.model = model
        self.conventions = model.conventions
        self.precision = precision
        self.device = device
        self.batch_size = batch_size
        self._forward = _compile(model) if compile else model

    @property
    def compiled(self) -> bool:
        return self._forward is not self.model

    def __call__(self, faces):
        import torch

        count = faces.shape[0]
        if self.compiled and count < self.batch_size:
            padding = faces[-1:].expand(self.batch_size - count, *faces.shape[1:])
            faces = torch.cat([faces, padding])
        with torch.inference_mode(), autocast(self.precision, self.device):
            return self._forward(faces)[:count]


def _is_torch_model(model) -> bool:
    from .models.onnx import OnnxRestorer

    return not isinstance(model, OnnxRestorer)


def _require_cpp_compiler() -> None:
    """torch.compile turns CPU graphs into C++; say so now rather than at the first batch."""
    import os
    import shutil

    candidates = (os.environ.get("CXX"), "g++", "clang++", "c++")
    if not any(name and shutil.which(name) for name in candidates):
        raise ArgumentError(
            "compile",
            "on a CPU needs a C++ compiler (g++ or clang++ on PATH, or $CXX); "
            "install one or run without compile",
        )


def _compile(model):
    import torch

    return torch.compile(model, options={"freezing": True})
