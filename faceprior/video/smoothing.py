"""Landmark smoothing over time: the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012).

A low-pass filter whose cut-off rises with the speed of the signal: a still face's landmarks
are averaged over many frames (detector jitter of a pixel or two disappears, so the aligned
crop stops shaking), while a moving face is followed with little lag. Speeds are measured in
face sizes per second, so one setting fits small and large faces alike. Time comes from the
frame timestamps, so variable-frame-rate video is filtered correctly.
"""

from __future__ import annotations

import math

import numpy as np


class OneEuroFilter:
    """Smooths an array (here (5, 2) landmarks) sampled at increasing times in seconds.

    ``min_cutoff`` (Hz): cut-off of a still signal (lower: steadier, more lag when it starts
    to move). ``beta``: how fast the cut-off rises with speed (face sizes per second).
    ``derivative_cutoff`` (Hz): smoothing of the speed estimate itself.
    """

    def __init__(
        self, min_cutoff: float = 1.0, beta: float = 10.0, derivative_cutoff: float = 1.0
    ) -> None:
        if min_cutoff <= 0 or beta < 0 or derivative_cutoff <= 0:
            raise ValueError("One-Euro cut-offs must be > 0 and beta >= 0")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time = 0.0

    def __call__(self, value: np.ndarray, time: float, scale: float = 1.0) -> np.ndarray:
        """The filtered value at ``time``; ``scale`` (pixels per face size) normalises speed."""
        value = np.asarray(value, np.float64)
        if self._value is None:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), time
            return value.copy()
        elapsed = time - self._time
        if elapsed <= 0:  # a repeated timestamp: nothing new to learn
            return self._value.copy()
        speed = (value - self._value) / elapsed / max(scale, 1e-6)
        self._speed += _alpha(self.derivative_cutoff, elapsed) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value += _alpha(cutoff, elapsed) * (value - self._value)
        self._time = time
        return self._value.copy()

    def state_dict(self) -> dict:
        """What the filter remembers (plain arrays and numbers), for a resumed video."""
        return {"value": self._value, "speed": self._speed, "time": self._time}

    def load_state_dict(self, state: dict) -> None:
        self._value, self._speed, self._time = state["value"], state["speed"], state["time"]


def _alpha(cutoff, elapsed: float):
    """Weight of the new sample in an exponential smoother with this cut-off (Hz)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / elapsed)
