"""Yaw from five landmarks (faceprior.face.pose)."""

import numpy as np
import pytest

from faceprior.face.pose import NOSE_DEPTH, estimate_yaw
from faceprior.models.templates import template_points


def _turned(yaw_degrees: float, roll_degrees: float = 0.0) -> np.ndarray:
    """Landmarks of a simple 3-D face (eyes on a plane, nose NOSE_DEPTH eye distances in
    front) turned by ``yaw`` and rolled in the image plane, orthographic projection."""
    eyes_nose_mouth = np.array(
        [
            [-0.5, 0.0, 0.0],
            [0.5, 0.0, 0.0],
            [0.0, 0.6, NOSE_DEPTH],
            [-0.4, 1.1, 0.1],
            [0.4, 1.1, 0.1],
        ]
    )
    yaw = np.radians(yaw_degrees)
    turn = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    flat = (eyes_nose_mouth @ turn.T)[:, :2]
    roll = np.radians(roll_degrees)
    spin = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    return flat @ spin.T * 40 + 100


@pytest.mark.parametrize("yaw", [-60.0, -30.0, -10.0, 0.0, 15.0, 45.0])
@pytest.mark.parametrize("roll", [0.0, 20.0])
def test_yaw_of_a_turned_model_face_is_recovered(yaw, roll):
    assert estimate_yaw(_turned(yaw, roll)) == pytest.approx(yaw, abs=0.5)


def test_the_alignment_template_is_frontal():
    assert abs(estimate_yaw(template_points("ffhq", 512))) < 2.0


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match="5, 2"):
        estimate_yaw(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="coincide"):
        estimate_yaw(np.zeros((5, 2)))
