"""Greedy non-maximum suppression with the '+1 pixel' box area of the RetinaFace release.

The +1 convention (a box from x0 to x1 covers x1 - x0 + 1 pixels) slightly changes which
overlapping boxes survive, so it is kept to reproduce the official detections exactly.
"""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept, best score first.

    A box is suppressed when its IoU with an already kept, higher-scoring box exceeds
    ``iou_threshold``. Ties in score keep the order of a reversed stable ascending sort (the
    official ``argsort()[::-1]``), so equal-score boxes resolve the same way.
    """
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(scores):
        raise ValueError(
            f"nms expects boxes (N, 4) and scores (N,), got {boxes.shape} and {np.shape(scores)}"
        )
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter_w = np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]) + 1
        inter_h = np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]) + 1
        inter = np.maximum(0.0, inter_w) * np.maximum(0.0, inter_h)
        iou = inter / (areas[best] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
