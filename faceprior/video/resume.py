"""An interrupted video run continues where it stopped (``resume``, on by default).

The restored video is encoded in segments of ``segment_frames`` frames, each a complete file
in a hidden folder beside the destination (``.<name>.faceprior-partial/``), and after each
segment the restorer's memory (face tracks, their smoothed landmarks and temporal averages,
the last frame for repeats and cuts, the report's counters) is saved next to it as plain
arrays and numbers (``.npz`` read without pickle, and JSON). A run that finds such a folder,
made from the same input file with the same settings (``job.json``), keeps its finished
segments, reloads the memory saved after the last one and restores from the next frame on, so
the result is the one an uninterrupted run would have made. The segments and the input's
audio, subtitle and data packets are then put together into the destination
(:func:`faceprior.video.streams.assemble`), which appears only when complete; the folder is
removed. A folder from another input or other settings is discarded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..io.images import atomic_write_bytes, process_alive

PARTIAL_SUFFIX = ".faceprior-partial"
JOB_NAME = "job.json"


class PartialVideo:
    """The folder of an unfinished run for ``destination``; ``job``: what must match to
    resume (input file and every setting that changes the output)."""

    def __init__(self, destination: Path, job: dict) -> None:
        self.destination = destination
        self.folder = destination.with_name(f".{destination.name}{PARTIAL_SUFFIX}")
        self.suffix = destination.suffix
        self.job = json.loads(json.dumps(job, default=str))  # as it reads back from disk

    def start(self, resume: bool) -> int:
        """Prepare the folder; returns how many finished segments an earlier run left (0
        when there are none, they were made differently, or ``resume`` is off)."""
        finished = self._finished() if resume else 0
        self._remove_dead_outputs()
        if finished == 0:
            self.remove()
        else:  # anything else there is an interrupted segment or state
            keep = {JOB_NAME} | {
                self._name(kind, index) for index in range(finished) for kind in _KINDS
            }
            for path in self.folder.iterdir():
                if path.name not in keep:
                    path.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / JOB_NAME, json.dumps(self.job, indent=1).encode())
        return finished

    def segment(self, index: int) -> Path:
        return self.folder / self._name("segment", index)

    def segments(self) -> list[Path]:
        """The finished segments, in order."""
        return sorted(self.folder.glob(f"segment-*{self.suffix}"))

    def save_state(self, index: int, state: dict) -> None:
        """Save the memory after segment ``index`` (this marks the segment finished)."""
        arrays: dict[str, np.ndarray] = {}
        tree = _pack(state, arrays, "s")
        temporary = self.folder / f".state-{index:05d}.{os.getpid()}.npz"
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.folder / self._name("arrays", index))
        atomic_write_bytes(self.folder / self._name("state", index), json.dumps(tree).encode())

    def load_state(self, index: int) -> dict:
        tree = json.loads((self.folder / self._name("state", index)).read_text())
        with np.load(self.folder / self._name("arrays", index), allow_pickle=False) as arrays:
            return _unpack(tree, arrays)

    def remove(self) -> None:
        if self.folder.is_dir():
            shutil.rmtree(self.folder, ignore_errors=True)

    def _remove_dead_outputs(self) -> None:
        """Half-written outputs (``.<stem>.<pid>.<hex>.tmp<suffix>``) of killed runs."""
        stem, suffix = self.destination.stem, self.destination.suffix
        for path in self.destination.parent.glob(f".{stem}.*.tmp{suffix}"):
            pid = path.name[len(stem) + 2 :].split(".")[0]
            if pid.isdigit() and not process_alive(int(pid)):
                with contextlib.suppress(OSError):
                    path.unlink()

    def _finished(self) -> int:
        """Segments 0..n-1 whose file and saved memory are both there, for the same job."""
        try:
            if json.loads((self.folder / JOB_NAME).read_text()) != self.job:
                return 0
        except (OSError, ValueError):
            return 0
        count = 0
        while all((self.folder / self._name(kind, count)).is_file() for kind in _KINDS):
            count += 1
        return count

    def _name(self, kind: str, index: int) -> str:
        ending = {"segment": self.suffix, "state": ".json", "arrays": ".npz"}[kind]
        return f"{kind}-{index:05d}{ending}"


_KINDS = ("segment", "state", "arrays")


def _pack(value, arrays: dict, path: str):
    """JSON for ``value`` with every array moved into ``arrays`` (named by its path)."""
    if isinstance(value, np.ndarray):
        arrays[path] = value
        return {"array": path}
    if isinstance(value, dict):
        return {"dict": {key: _pack(item, arrays, f"{path}.{key}") for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {"list": [_pack(item, arrays, f"{path}.{i}") for i, item in enumerate(value)]}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot save {type(value).__name__} in a video's resume state")


def _unpack(tree, arrays):
    if isinstance(tree, dict):
        if "array" in tree:
            return arrays[tree["array"]]
        if "dict" in tree:
            return {key: _unpack(item, arrays) for key, item in tree["dict"].items()}
        return [_unpack(item, arrays) for item in tree["list"]]
    return tree
