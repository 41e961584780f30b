"""Head yaw from the five landmarks, for evaluating restoration by pose (issue 16, MMRB-GAN).

With the eyes a distance ``e`` apart on a plane and the nose tip ``d`` in front of it, turning
the head by ``yaw`` moves the nose sideways by ``d sin(yaw)`` while the eyes' projected
distance shrinks to ``e cos(yaw)``: the nose offset from the eyes' midpoint, in projected
eye distances, is ``(d / e) tan(yaw)``. ``NOSE_DEPTH`` (``d / e`` = 0.5, adult anthropometric
average: nose tip about 3 cm in front of the eyes, eyes about 6 cm apart) turns it into
degrees. It is a coarse estimate (roll is removed first; pitch and expression are ignored),
meant for bucketing faces into frontal / turned / profile, not for measuring pose.
"""

from __future__ import annotations

import numpy as np

NOSE_DEPTH = 0.5


def estimate_yaw(landmarks: np.ndarray) -> float:
    """Yaw in degrees (positive: the nose points to image-right) from (5, 2) landmarks in
    RetinaFace order (image-left eye, image-right eye, nose, mouth corners)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"landmarks must be (5, 2), got {points.shape}")
    left, right, nose = points[0], points[1], points[2]
    axis = right - left
    distance = float(np.hypot(*axis))
    if distance == 0:
        raise ValueError("the two eye landmarks coincide")
    # offset of the nose along the eye axis (removes roll), in eye distances
    offset = float(np.dot(nose - (left + right) / 2, axis / distance)) / distance
    return float(np.degrees(np.arctan(offset / NOSE_DEPTH)))
