"""Dependency-free bar chart of benchmark means: a panel per metric, a bar per model."""

from __future__ import annotations

import math

import numpy as np

PALETTE = ((66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88), (171, 71, 188))


def bar_chart(
    means: dict[str, dict[str, float]], columns: list[str], panel: tuple[int, int] = (260, 220)
) -> np.ndarray:
    """RGB uint8 image; ``means[label][column]``; NaN/inf values are drawn as an empty slot."""
    import cv2

    labels = list(means)
    width, height = panel
    per_row = max(1, min(4, len(columns)))
    rows = max(1, math.ceil(len(columns) / per_row))
    legend = 22 * len(labels) + 10
    canvas = np.full((rows * height + legend, per_row * width, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i, label in enumerate(labels):
        colour = PALETTE[i % len(PALETTE)]
        y = rows * height + 18 + 22 * i
        cv2.rectangle(canvas, (10, y - 12), (24, y + 2), colour, -1)
        cv2.putText(canvas, label, (32, y), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, column in enumerate(columns):
        x0, y0 = (k % per_row) * width, (k // per_row) * height
        cv2.putText(canvas, column, (x0 + 10, y0 + 20), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        values = [means[label].get(column, math.nan) for label in labels]
        finite = [abs(v) for v in values if math.isfinite(v)]
        top = max(finite) if finite and max(finite) > 0 else 1.0
        base, span = y0 + height - 30, height - 70
        slot = (width - 20) / max(1, len(labels))
        cv2.line(canvas, (x0 + 10, base), (x0 + width - 10, base), (0, 0, 0), 1)
        for i, value in enumerate(values):
            left = int(x0 + 10 + i * slot + slot * 0.15)
            right = int(x0 + 10 + (i + 1) * slot - slot * 0.15)
            if not math.isfinite(value):
                cv2.putText(canvas, "n/a", (left, base - 5), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
                continue
            bar = int(span * max(value, 0.0) / top)
            cv2.rectangle(canvas, (left, base - bar), (right, base), PALETTE[i % len(PALETTE)], -1)
            text = f"{value:.3g}"
            cv2.putText(canvas, text, (left, base - bar - 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas
