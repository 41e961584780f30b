"""Learning-rate schedules of the training loop (``train.lr_schedule``).

A schedule is a pure function of the step, applied to every optimiser before each step, so a
resumed run lands on exactly the rate an uninterrupted one would use: nothing about it needs to
be saved. ``cosine`` anneals from each optimiser's own rate to ``train.lr_final`` times it at
the last step; annealing is what lets a fidelity fine-tune settle into the minimum that a
constant rate keeps jumping around (the last part of the PSNR gain, BasicSR's CosineAnnealing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, steps: int, final: float) -> float:
    """The multiplier of the initial rate for step ``step`` (0-based) of a ``steps``-step run."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(max(step / max(steps - 1, 1), 0.0), 1.0)
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr schedule {schedule!r}; one of {LR_SCHEDULES}")


def apply_lr_factor(optimizers: Iterable[torch.optim.Optimizer], factor: float) -> None:
    """Set every parameter group's rate to ``factor`` times the rate it was built with."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
