"""Wall time per stage, as each photo's report lists it."""

from __future__ import annotations

import time


class Clock:
    """Adds the wall time of ``with clock(stage):`` blocks to ``timings[stage]``."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self._stage = ""

    def __call__(self, stage: str) -> Clock:
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        elapsed = time.perf_counter() - self._start
        self.timings[self._stage] = self.timings.get(self._stage, 0.0) + elapsed
