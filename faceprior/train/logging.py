"""Run logs: scalars to ``metrics.jsonl`` (always) and TensorBoard (when installed), image
grids to ``samples/step-*.png`` and TensorBoard.

The JSONL file is the record that survives without TensorBoard and that tests and scripts
can read; TensorBoard is optional so that a minimal install can still train.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch


def image_grid(images: dict[str, torch.Tensor], count: int) -> np.ndarray:
    """Rows = samples, columns = the named images, as an HxWx3 uint8 RGB array.

    Images are (B, 3, H, W) in [-1, 1]; smaller ones (e.g. LQ for SR) are resized (nearest)
    to the largest so that columns line up.
    """
    from torch.nn import functional as F

    size = max(t.shape[-1] for t in images.values())
    columns = []
    for tensor in images.values():
        tensor = tensor[:count].detach().float().cpu()
        if tensor.shape[1] == 1:
            tensor = tensor.repeat(1, 3, 1, 1)
        if tensor.shape[-1] != size:
            tensor = F.interpolate(tensor, size=(size, size), mode="nearest")
        columns.append(torch.cat(list(tensor), dim=1))  # stack samples vertically
    grid = torch.cat(columns, dim=2)
    grid = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return grid.permute(1, 2, 0).numpy()


class RunLogger:
    """Writes on the main process only; other ranks get a logger whose methods do nothing."""

    def __init__(self, output: str | os.PathLike, enabled: bool, tensorboard: bool = True):
        self.enabled = enabled
        self.output = Path(output)
        self.writer = None
        if not enabled:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        self.metrics = open(self.output / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(self.output / "tensorboard"))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.metrics.write(json.dumps({"step": step, **values}, sort_keys=True) + "\n")
        self.metrics.flush()
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"train/{key}", value, step)

    def images(self, step: int, images: dict[str, torch.Tensor], count: int) -> Path | None:
        if not self.enabled:
            return None
        import cv2

        grid = image_grid(images, count)
        path = self.output / "samples" / f"step-{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(".png", grid[:, :, ::-1])
        if not ok:
            raise RuntimeError("could not encode the sample grid as PNG")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(encoded.tobytes())
        os.replace(tmp, path)
        if self.writer is not None:
            self.writer.add_image("samples/" + "|".join(images), grid, step, dataformats="HWC")
        return path

    def close(self) -> None:
        if not self.enabled:
            return
        self.metrics.close()
        if self.writer is not None:
            self.writer.close()
