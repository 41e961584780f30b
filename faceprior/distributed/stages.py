"""The two stages of a Ray run, each a long-lived actor class that loads its models once.

- :class:`FindFaces` (CPU actors): reads each file's bytes and decodes them with faceprior's
  own reader (alpha, 16 bits, ICC, EXIF and orientation survive, unlike Ray's ``read_images``),
  then runs the face detector. Only the detections travel on: a few numbers per face, not
  megabytes of pixels through Ray's object store.
- :class:`RestorePhotos` (GPU actors, or CPU actors without a GPU): runs the very function a
  local run uses for each file (``faceprior.folders``: read, restore, paste back, write),
  its restorer answering detection with the faces found in the first stage, so that a Ray run
  and a plain run give the same files and the same report entries. The file is decoded a
  second time there: the price of running the local code unchanged (docs/scale.md).

Rows are ``{"source": bytes, "target": bytes, "kind": str}`` (paths as bytes: a file name
need not be valid UTF-8). A file that makes a worker die (a crash in a decoder, out of memory)
is tried ``max_attempts`` times, counted by :class:`AttemptCounter`, then recorded as failed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..face.types import FaceDetection
from ..io.images import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class StageSettings:
    """What every actor needs to know; sent once, when the actor starts.

    ``restorer_options``: :class:`faceprior.FaceRestorer`'s keyword arguments (``device`` is
    set per stage). The others are :func:`faceprior.restore_folder`'s per-file settings.
    """

    restorer_options: dict
    output: Path
    aligned: bool = False
    quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS
    save_faces: bool = False
    inputs: frozenset[Path] = field(default_factory=frozenset)
    max_attempts: int = 3
    compare: bool = False


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


class FindFaces:
    """Stage 1: decode with faceprior's reader and detect faces, on a CPU."""

    def __init__(self, settings: StageSettings, counter) -> None:
        self.settings = settings
        self.attempts = _Attempts(counter, "detect", settings.max_attempts)
        self.detector = build_detector(settings.restorer_options, "cpu")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        found = []
        for source, kind in zip(batch["source"], batch["kind"], strict=True):
            source = bytes(source)
            if kind != "image":  # videos are read frame by frame by the restore stage
                found.append("")
                continue
            if self.attempts.begin(source) is None:
                found.append(json.dumps({"gave_up": self.settings.max_attempts}))
                continue
            found.append(self._detect(Path(os.fsdecode(source))))
            self.attempts.done(source)
        return {**batch, "faces": found}

    def _detect(self, path: Path) -> str:
        """The raw detections as JSON, or "" to leave the file to the restore stage (which
        reads it again and reports any problem exactly as a local run does)."""
        from ..io.images import read_image, split_pixels
        from ..pipeline import _to_bgr_uint8  # the detector must see what restore() shows it

        try:
            rgb = split_pixels(read_image(path, max_pixels=self.settings.max_pixels).pixels)[0]
            bgr = _to_bgr_uint8(rgb)
            detections = self.detector.detect(bgr)
        except Exception:  # reported by the restore stage, in the local run's words
            return ""
        faces = [
            {
                "box": _array_to_json(d.box),
                "score": None if d.score is None else float(d.score),
                "landmarks": _array_to_json(d.landmarks),
            }
            for d in detections
        ]
        return json.dumps({"shape": list(bgr.shape), "faces": faces})


class KnownFaces:
    """A detector that answers with the faces stage 1 found in this very photo.

    Given to :class:`faceprior.FaceRestorer` in place of its detector, so that the restorer
    selects, numbers and restores faces exactly as when it detects them itself. For a photo
    that stage 1 could not read, or one whose size changed since, it runs the real detector.
    """

    def __init__(self, options: dict, device: str) -> None:
        self.options, self.device = options, device
        self._detector = None
        self.faces: list[FaceDetection] | None = None
        self.shape: tuple[int, ...] = ()

    def detect(self, bgr: np.ndarray) -> list[FaceDetection]:
        if self.faces is not None and tuple(bgr.shape) == self.shape:
            return list(self.faces)
        if self._detector is None:
            self._detector = build_detector(self.options, self.device)
        return self._detector.detect(bgr)

    def expect(self, found: str) -> None:
        """Take stage 1's JSON for the next photo ("" when it has none)."""
        if not found:
            self.faces, self.shape = None, ()
            return
        document = json.loads(found)
        self.shape = tuple(document["shape"])
        self.faces = [
            FaceDetection(
                _array_from_json(face["box"]), face["score"], _array_from_json(face["landmarks"])
            )
            for face in document["faces"]
        ]


class RestorePhotos:
    """Stage 2: restore, paste back and write each photo with the local run's own function."""

    def __init__(self, settings: StageSettings, counter, device: str) -> None:
        from ..pipeline import FaceRestorer

        self.settings = settings
        self.attempts = _Attempts(counter, "restore", settings.max_attempts)
        self.known_faces = KnownFaces(settings.restorer_options, device)
        options = {**settings.restorer_options, "device": device, "detector": self.known_faces}
        self.restorer = FaceRestorer(**options)
        self.inputs = set(settings.inputs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        entries, logs = [], []
        for source, target, kind, found in zip(
            batch["source"], batch["target"], batch["kind"], batch["faces"], strict=True
        ):
            fields, lines = self._one(bytes(source), bytes(target), kind, found)
            entries.append(json.dumps(fields))
            logs.append(json.dumps(lines))
        return {"source": list(batch["source"]), "entry": entries, "logs": logs}

    def _one(self, source: bytes, target: bytes, kind: str, found: str) -> tuple[dict, list]:
        from .. import folders

        path = Path(os.fsdecode(source))
        gave_up = json.loads(found).get("gave_up") if found else None
        if gave_up is None and self.attempts.begin(source) is None:
            gave_up = self.settings.max_attempts
        if gave_up is not None:
            message = gave_up_message(str(path), gave_up)
            return {"status": "failed", "error": message, "output": None}, [f"skipped {message}"]
        self.known_faces.expect(found)
        job = folders.Job(path, Path(os.fsdecode(target)), kind)
        lines: list[str] = []
        settings = self.settings
        fields = folders._run_job(
            self.restorer,
            job,
            settings.aligned,
            settings.quality,
            settings.max_pixels,
            settings.save_faces,
            settings.output,
            self.inputs,
            False,
            lines.append,
            compare=settings.compare,
        )
        self.attempts.done(source)
        return fields, lines


def build_detector(options: dict, device: str):
    """The detector that :attr:`faceprior.FaceRestorer.detector` loads for these options."""
    from ..face.detection import DEFAULT_DETECTOR, load_detector
    from ..hub.download import offline

    score = options.get("score_threshold")
    with offline(options.get("offline", False)):
        return load_detector(
            options.get("detector", DEFAULT_DETECTOR),
            weights=options.get("detector_weights"),
            device=device,
            nms_threshold=options.get("nms_threshold", 0.4),
            **({} if score is None else {"score_threshold": score}),
        )


def _array_to_json(values: np.ndarray) -> dict:
    """Exact: JSON floats round-trip float64, and the dtype is kept."""
    values = np.asarray(values)
    return {"dtype": values.dtype.str, "values": values.tolist()}


def _array_from_json(document: dict) -> np.ndarray:
    return np.asarray(document["values"], dtype=np.dtype(document["dtype"]))
