"""Argument checks shared by the public API: each failure is an :class:`ArgumentError` that
names the Python parameter, raised before any model is loaded or any file is read.

NaN passes every ``<``/``>`` comparison, so ranges are checked with ``math.isfinite`` first;
booleans are refused where numbers are expected (``True`` is an ``int`` in Python).
"""

from __future__ import annotations

import math
import numbers

from .errors import ArgumentError, InputError


def number(
    parameter: str,
    value: object,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    integer: bool = False,
    above: bool = False,
) -> float | int:
    """``value`` if it is a finite (integer) number within ``[minimum, maximum]``.

    ``above``: the minimum itself is excluded.
    """
    kind = "an integer" if integer else "a finite number"
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise ArgumentError(parameter, f"must be {kind}, got {value!r}")
    if math.isinf(value) or (math.isnan(value) and minimum is None and maximum is None):
        raise ArgumentError(parameter, f"must be {kind}, got {value!r}")
    low_ok = minimum is None or (value > minimum if above else value >= minimum)
    if math.isnan(value) or not low_ok or (maximum is not None and value > maximum):
        low = "" if minimum is None else f"{'>' if above else '>='} {minimum:g}"
        high = "" if maximum is None else f"<= {maximum:g}"
        bounds = " and ".join(part for part in (low, high) if part)
        raise ArgumentError(parameter, f"must be {bounds}, got {value!r}")
    return int(value) if integer else float(value)


def resolve_device(device: object) -> str:
    """A usable torch device name; ``auto`` picks CUDA when available, else the CPU."""
    import torch

    text = str(device)
    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise ArgumentError("device", f"must be auto, cpu, cuda or cuda:N, got {text!r}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            reason = (
                "this PyTorch was built without CUDA"
                if torch.version.cuda is None
                else "no CUDA GPU is visible"
            )
            raise ArgumentError("device", f"is {text!r}, but {reason}; use cpu or auto")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise ArgumentError("device", f"is {text!r}, but only {count} GPU(s) are visible")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ArgumentError("device", f"is {text!r}, but MPS is not available here")
    elif parsed.type != "cpu":
        raise ArgumentError("device", f"must be auto, cpu, cuda or cuda:N, got {text!r}")
    return text


# Smallest photo side the detector and the resampling filters handle.
MIN_SIDE = 8


def photo_pixels(pixels: object, upscale: float, max_pixels: int, source: str = "image") -> None:
    """Refuse arrays that are not a photo, or whose upscaled output exceeds ``max_pixels``."""
    import numpy as np

    if not isinstance(pixels, np.ndarray):
        raise ArgumentError("image", f"must be a path or a numpy array, got {type(pixels)}")
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    if pixels.ndim not in (2, 3) or channels not in (1, 2, 3, 4):
        raise InputError(
            f"{source}: expected (H, W) or (H, W, 1-4) pixels, got shape {pixels.shape}"
        )
    if pixels.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{source}: expected uint8 or uint16 pixels, got {pixels.dtype}")
    height, width = pixels.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InputError(
            f"{source}: {width}x{height} pixels is too small to hold a face (at least "
            f"{MIN_SIDE} pixels a side)"
        )
    output = round(width * upscale) * round(height * upscale)
    if output > max_pixels:
        raise InputError(
            f"{source}: the output would have {output:,} pixels ({width}x{height} upscaled "
            f"{upscale:g}x), more than max_pixels={max_pixels:,}"
        )
