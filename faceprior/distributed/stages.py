"""The three stages of a Ray run, each a long-lived actor class that loads its models once.

- :class:`PreparePhotos` (CPU actors): reads each file with faceprior's own reader (alpha,
  16 bits, ICC, EXIF and orientation survive, unlike Ray's ``read_images``), detects and
  aligns the faces: :meth:`faceprior.FaceRestorer.prepare`.
- :class:`RestoreFaces` (GPU actors, or CPU actors without a GPU): the network's forward
  passes only, :meth:`faceprior.FaceRestorer.restore_crops`. Videos and aligned crops, which
  need the network frame by frame or have nothing to paste, are restored and written whole
  here, by the local run's function.
- :class:`FinishPhotos` (CPU actors): masks, colours, paste-back, background, writing and the
  report entry, by the very function a local run uses for each file (``faceprior.folders``),
  its restorer answering with :meth:`faceprior.FaceRestorer.finish` of what the first two
  stages made, so that a Ray run and a plain run give the same files and the same report
  entries. That function reads the file a second time (for what it writes besides the pixels
  and for its messages): the price of running the local code unchanged (docs/scale.md).

Rows are ``{"source": bytes, "target": bytes, "kind": str}`` (paths as bytes: a file name
need not be valid UTF-8); the stages add ``prepared`` and ``restored`` (the pickled stage
objects, made and read only by these actors, or ``b""``) and ``done`` (the JSON report entry
and log lines of a file already finished, or ``""``). A file that makes a worker die (a crash
in a decoder, out of memory) is tried ``max_attempts`` times per stage, counted by
:class:`AttemptCounter`, then recorded as failed.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import folders


@dataclass(frozen=True)
class StageSettings:
    """What every actor needs to know; sent once, when the actor starts.

    ``restorer_options``: :class:`faceprior.FaceRestorer`'s keyword arguments (``device`` is
    set per stage). ``files``: :func:`faceprior.restore_folder`'s per-file settings, as a
    local run passes them to :func:`faceprior.folders.restore_job`.
    """

    restorer_options: dict
    files: folders.JobOptions
    max_attempts: int = 3


class AttemptCounter:
    """How many times each file has entered a stage in this run (a Ray actor, no CPU).

    Ray retries the task of a worker that died, forever by default; a file that kills its
    worker each time (a decoder crash, a photo too big for memory) would then hold the run
    up for ever. Counting attempts where no worker death can lose them lets the next attempt
    give up and record the file instead.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, bytes], int] = {}

    def begin(self, stage: str, source: bytes) -> int:
        """Count one more attempt and return how many there have been, this one included."""
        key = (stage, source)
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    def done(self, stage: str, source: bytes) -> None:
        """The file left the stage alive: a retry of its whole batch starts again at 1."""
        self.counts.pop((stage, source), None)


def gave_up_message(source: str, attempts: int) -> str:
    return (
        f"{source}: the worker processing it died {attempts} times (a crash or out of memory); "
        f"not tried again"
    )


class _Attempts:
    """A stage's view of the :class:`AttemptCounter` actor."""

    def __init__(self, counter, stage: str, limit: int) -> None:
        self.counter, self.stage, self.limit = counter, stage, limit

    def begin(self, source: bytes) -> int | None:
        """The attempt number, or None when the file has used up its attempts."""
        import ray

        attempt = ray.get(self.counter.begin.remote(self.stage, source))
        return attempt if attempt <= self.limit else None

    def done(self, source: bytes) -> None:
        self.counter.done.remote(self.stage, source)


class _Stage:
    """What the three stages share: settings, attempts, and a restorer on ``device``."""

    stage = ""

    def __init__(self, settings: StageSettings, counter, device: str | None) -> None:
        """``device`` None: a CPU-stage actor, whose restorer never runs the restoration
        network (the driver's CPU options: no fp16, no compilation)."""
        from ..pipeline import FaceRestorer

        self.settings = settings
        self.attempts = _Attempts(counter, self.stage, settings.max_attempts)
        options = settings.restorer_options
        if device is None:
            options = driver_options(options)
        else:
            options = {**options, "device": device}
        self.restorer = FaceRestorer(**options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        columns: dict[str, list] = {name: list(values) for name, values in batch.items()}
        for row in range(len(columns["source"])):
            if columns["done"][row]:
                continue  # finished earlier (given up): passed on as it is
            source = bytes(columns["source"][row])
            if self.attempts.begin(source) is None:
                message = gave_up_message(os.fsdecode(source), self.settings.max_attempts)
                columns["done"][row] = _done(
                    {"status": "failed", "error": message, "output": None}, [f"skipped {message}"]
                )
                continue
            self.process(columns, row, source)
            self.attempts.done(source)
        return columns

    def process(self, columns: dict[str, list], row: int, source: bytes) -> None:
        raise NotImplementedError

    def run_job(self, source: bytes, target: bytes, kind: str, restorer) -> str:
        """The local run's per-file function, with ``restorer``: the ``done`` column."""
        job = folders.Job(Path(os.fsdecode(source)), Path(os.fsdecode(target)), kind)
        lines: list[str] = []
        files = self.settings.files

        def restore(job: folders.Job) -> dict:
            return folders.restore_job(restorer, job, files)

        return _done(folders.run_job(job, restore, lines.append), lines)


class PreparePhotos(_Stage):
    """Stage 1, on a CPU: read, detect, align (:meth:`faceprior.FaceRestorer.prepare`)."""

    stage = "prepare"

    def __init__(self, settings: StageSettings, counter) -> None:
        super().__init__(settings, counter, None)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        count = len(batch["source"])
        return super().__call__({**batch, "prepared": [b""] * count, "done": [""] * count})

    def process(self, columns: dict[str, list], row: int, source: bytes) -> None:
        if columns["kind"][row] != "image" or self.settings.files.aligned:
            return  # restored whole by the next stage
        from ..io.images import read_image

        try:
            image = read_image(Path(os.fsdecode(source)), max_pixels=self.settings.files.max_pixels)
            prepared = self.restorer.prepare(image)
        except Exception:  # reported by the last stage, in the local run's words
            return
        columns["prepared"][row] = pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL)


class RestoreFaces(_Stage):
    """Stage 2, on a GPU (or a CPU): the network only
    (:meth:`faceprior.FaceRestorer.restore_crops`); videos and aligned crops whole."""

    stage = "restore"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        return super().__call__({**batch, "restored": [b""] * len(batch["source"])})

    def process(self, columns: dict[str, list], row: int, source: bytes) -> None:
        prepared = bytes(columns["prepared"][row])
        if prepared:
            # Pickles made by this job's first stage, never read from a file.
            restored = self.restorer.restore_crops(pickle.loads(prepared))
            columns["restored"][row] = pickle.dumps(restored, protocol=pickle.HIGHEST_PROTOCOL)
        elif columns["kind"][row] != "image" or self.settings.files.aligned:
            target = bytes(columns["target"][row])
            columns["done"][row] = self.run_job(source, target, columns["kind"][row], self.restorer)


class FinishPhotos(_Stage):
    """Stage 3, on a CPU: paste back, write and report, with the local run's function."""

    stage = "finish"

    def __init__(self, settings: StageSettings, counter) -> None:
        super().__init__(settings, counter, None)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        columns = super().__call__(dict(batch))
        entries, logs = [], []
        for done in columns["done"]:
            document = json.loads(done)
            entries.append(json.dumps(document["fields"]))
            logs.append(json.dumps(document["lines"]))
        return {"source": columns["source"], "entry": entries, "logs": logs}

    def process(self, columns: dict[str, list], row: int, source: bytes) -> None:
        prepared, restored = bytes(columns["prepared"][row]), bytes(columns["restored"][row])
        finisher = _Finisher(self.restorer)
        if prepared and restored:
            finisher.prepared, finisher.restored = pickle.loads(prepared), pickle.loads(restored)
        target = bytes(columns["target"][row])
        columns["done"][row] = self.run_job(source, target, columns["kind"][row], finisher)


class _Finisher:
    """Stands in for the restorer in the local run's per-file code: its ``restore`` finishes
    what the first two stages made of this very photo. A photo the first stage could not
    read (the local code then reports why) or that changed since is restored here whole."""

    def __init__(self, restorer) -> None:
        self.restorer = restorer
        self.prepared = self.restored = None

    def restore(self, image):
        prepared = self.prepared
        if prepared is None or image.pixels.shape[:2] != prepared.rgb.shape[:2]:
            return self.restorer.restore(image)
        return self.restorer.finish(prepared, self.restored)


def driver_options(options: dict) -> dict:
    """The options for a restorer on a CPU that never runs the restoration network (the
    driver, which only checks them, and the CPU stages): GPU-only settings (fp16,
    compilation) are left to the restore actors."""
    precision = options.get("precision", "fp32")
    return {
        **options,
        "device": "cpu",
        "precision": "fp32" if precision == "fp16" else precision,
        "compile": False,
    }


def _done(fields: dict, lines: list[str]) -> str:
    return json.dumps({"fields": fields, "lines": lines})
