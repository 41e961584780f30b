"""Writing an evaluation as Markdown, CSV and JSON tables and a side-by-side image grid.

Every file is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.images import atomic_write_bytes
from .evaluation import Evaluation, load_rgb
from .registry import METRICS

FID_DIMENSIONS = 2048  # Inception pool features


def format_value(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.4f}"


def markdown(evaluation: Evaluation) -> str:
    columns = evaluation.columns
    lines = ["| image | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in evaluation.names:
        row = evaluation.rows[name]
        lines.append(
            f"| {name} | " + " | ".join(format_value(row.get(c, math.nan)) for c in columns) + " |"
        )
    means = evaluation.means()
    lines.append("| **mean** | " + " | ".join(format_value(means[c]) for c in columns) + " |")
    for key, value in evaluation.dataset.items():
        count = evaluation.settings.get("images")
        whole = f"whole set of {count} images" if count else "whole set"
        lines += ["", f"**{key}** ({whole}): {format_value(value)}"]
        if key == "fid" and count and count < FID_DIMENSIONS:
            lines.append(
                f"(fewer images than the {FID_DIMENSIONS} feature dimensions: the covariance "
                f"estimate dominates and biases FID upwards; compare only sets of equal size)"
            )
    if evaluation.missing:
        lines += ["", "Missing metrics:"]
        lines += [f"- `{name}`: {reason}" for name, reason in evaluation.missing.items()]
    described = [m for m, (_, cols, _) in METRICS.items() if set(cols) & set(columns)]
    described += [m for m in evaluation.dataset if m not in described]
    if described:
        lines += ["", "Columns:"]
        lines += [f"- `{m}`: {METRICS[m][2]}" for m in described]
    return "\n".join(lines) + "\n"


def csv_text(evaluation: Evaluation) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", *evaluation.columns])
    for name in evaluation.names:
        row = evaluation.rows[name]
        writer.writerow([name, *(repr(row.get(c, math.nan)) for c in evaluation.columns)])
    means = evaluation.means()
    writer.writerow(["mean", *(repr(means[c]) for c in evaluation.columns)])
    return buffer.getvalue()


def _json_number(value: float):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def json_text(evaluation: Evaluation) -> str:
    payload = {
        "settings": evaluation.settings,
        "columns": evaluation.columns,
        "mean": {k: _json_number(v) for k, v in evaluation.means().items()},
        "dataset": {k: _json_number(v) for k, v in evaluation.dataset.items()},
        "images": {
            name: {k: _json_number(v) for k, v in evaluation.rows[name].items()}
            for name in evaluation.names
        },
        "missing": evaluation.missing,
    }
    return json.dumps(payload, indent=2) + "\n"


def grid(columns: Sequence[tuple[str, Sequence[Path | None]]], tile: int = 256) -> np.ndarray:
    """RGB uint8 grid: one row per image, one titled column per folder (blank where absent)."""
    import cv2

    rows = len(columns[0][1])
    title = 24
    canvas = np.full((title + rows * tile, len(columns) * tile, 3), 255, np.uint8)
    for c, (label, paths) in enumerate(columns):
        cv2.putText(canvas, label, (c * tile + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, 0, 1)
        for r, path in enumerate(paths):
            if path is None:
                continue
            image = load_rgb(path)
            height, width = image.shape[:2]
            scale = tile / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            top = title + r * tile
            canvas[top : top + size[1], c * tile : c * tile + size[0]] = np.clip(
                np.rint(small), 0, 255
            ).astype(np.uint8)
    return canvas


def write_report(
    evaluation: Evaluation,
    out_dir: Path,
    grid_columns: Sequence[tuple[str, Sequence[Path | None]]] | None = None,
) -> list[Path]:
    """Write ``evaluation.{md,csv,json}`` (and ``grid.png``) into ``out_dir``; return the paths."""
    from ..io.images import write_image

    out_dir = Path(out_dir)
    written = []
    for suffix, text in (
        ("md", markdown(evaluation)),
        ("csv", csv_text(evaluation)),
        ("json", json_text(evaluation)),
    ):
        path = out_dir / f"evaluation.{suffix}"
        atomic_write_bytes(path, text.encode())
        written.append(path)
    if grid_columns:
        written.append(write_image(out_dir / "grid.png", grid(grid_columns)))
    return written
