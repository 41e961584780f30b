"""Restore folders of photos: :func:`restore_folder`, the library under ``faceprior restore``.

It plans the jobs (inputs found in files, folders and globs, and the output file of each),
checks every output location before any work, restores one file at a time so that one bad
file never stops the batch, and keeps a JSON report that survives interruptions:

- each finished file is appended to ``<report>.jsonl`` at once; the JSON report is written
  at the end, on Ctrl-C or SIGTERM, and merged with the report an earlier run left in the
  same place (so a resumed run keeps the faces of the images it skips);
- a lock file stops a second run from writing into the same output folder at the same time;
- temporary files that a killed run left behind are removed on start;
- inputs that were found but not processed (hidden files, broken links, FIFOs, link loops,
  earlier outputs) are listed in the report with the reason.

Video files go to :func:`faceprior.video.restore_video` when that module provides it.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import importlib
import json
import os
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArgumentError, InputError, OutputError
from .io.images import (
    DEFAULT_MAX_PIXELS,
    FORMAT_BY_SUFFIX,
    INPUT_SUFFIXES,
    TEMPORARY_SUFFIX,
    atomic_write_bytes,
    remove_stale_temporaries,
)

OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm")
REPORT_NAME = "faceprior-report.json"
LOCK_NAME = ".faceprior.lock"
FACES_FOLDER = "faces"


@dataclass
class Job:
    """One input file, where its result goes, and which restorer handles it."""

    source: Path
    target: Path
    kind: str = "image"  # "image" or "video"


@dataclass
class Plan:
    """The jobs of a run, and the inputs found but left out (``{"input", "reason"}``)."""

    jobs: list[Job]
    ignored: list[dict] = field(default_factory=list)


@dataclass
class FolderReport:
    """What :func:`restore_folder` did: one entry per input, and where the report is."""

    entries: list[dict]
    ignored: list[dict]
    path: Path | None
    interrupted: bool = False

    @property
    def failed(self) -> list[dict]:
        return [e for e in self.entries if e["status"] == "failed"]

    @property
    def face_errors(self) -> int:
        return sum(1 for e in self.entries for f in e.get("faces", []) if f.get("error"))

    def count(self, status: str) -> int:
        return sum(e["status"] == status for e in self.entries)


def video_restorer() -> Callable | None:
    """``faceprior.video.restore_video`` when video support is installed, else None.

    Signature: ``restore_video(restorer, source, target, codec=..., crf=..., progress=...)
    -> VideoReport`` (whose ``to_dict()`` gives the report entry's fields).
    """
    try:
        module = importlib.import_module("faceprior.video")
    except ImportError:
        return None
    return getattr(module, "restore_video", None)


def plan_jobs(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    recursive: bool = False,
    suffix: str = "",
    output_format: str = "same",
    report: str | os.PathLike | None = None,
) -> Plan:
    """Input files and their outputs; :class:`InputError` for missing inputs or clashes.

    An output folder inside (or equal to) an input folder is fine: files that are the
    output of another input are left out, and no output may replace an input.
    """
    if output_format != "same" and output_format not in OUTPUT_FORMATS:
        raise ArgumentError("output_format", f"must be same or one of {list(OUTPUT_FORMATS)}")
    if "/" in suffix or os.sep in suffix or "\0" in suffix:
        raise ArgumentError("suffix", f"must not contain a path separator, got {suffix!r}")
    output = Path(output)
    videos = VIDEO_SUFFIXES if video_restorer() is not None else ()
    found: list[tuple[Path, Path]] = []
    ignored: list[dict] = []
    for pattern in inputs:
        path = Path(pattern)
        if path.is_dir():
            for file, reason in _walk(path, recursive, output):
                if reason:
                    ignored.append(_described(file, reason))
                elif file.suffix.lower() in INPUT_SUFFIXES + videos:
                    found.append((file, file.relative_to(path)))
        elif path.is_file():
            found.append((path, Path(path.name)))
        elif path.is_symlink() or os.path.lexists(path):
            raise InputError(f"{pattern}: not a readable file (broken link or special file)")
        elif glob.has_magic(str(pattern)):
            matches = sorted(Path(m) for m in glob.glob(str(pattern), recursive=recursive))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise InputError(f"no file matches {pattern}")
            found += [(m, Path(m.name)) for m in files]
        else:
            raise InputError(f"no such file or folder: {pattern}")
    report_path = Path(report) if report is not None else output / REPORT_NAME
    written_before = _outputs_in_report(report_path)
    by_target: dict[Path, list[tuple[Path, Path, str]]] = {}
    for source, relative in found:
        kind = "video" if source.suffix.lower() in VIDEO_SUFFIXES else "image"
        ending = source.suffix if kind == "video" else _output_suffix(output_format, source)
        target = output / relative.with_name(relative.stem + suffix + ending)
        by_target.setdefault(target.resolve(), []).append((source, target, kind))
    inputs_resolved = {source.resolve() for source, _ in found}
    # Inputs that an earlier run (per its report) wrote as the output of another input.
    earlier = {
        path
        for path in inputs_resolved & written_before
        if any(source.resolve() != path for source, _, _ in by_target.get(path, []))
    }
    jobs = []
    for resolved, items in by_target.items():
        items = [item for item in items if item[0].resolve() not in earlier]
        if not items:
            continue
        source, target, kind = items[0]
        if len({s.resolve() for s, _, _ in items}) > 1:
            raise InputError(f"{source} and {items[1][0]} would both be written to {target}")
        if resolved in inputs_resolved and resolved not in earlier:
            raise InputError(
                f"{target} would overwrite an input; choose another output folder or a suffix"
            )
        jobs.append(Job(source, target, kind))
    for path in sorted(earlier):
        ignored.append(_described(path, "written by an earlier run as an output"))
    if not jobs:
        raise InputError("no input images found" + (" (see the ignored files)" if ignored else ""))
    _check_report_path(report_path, inputs_resolved, {j.target.resolve() for j in jobs})
    jobs.sort(key=lambda job: str(job.source))
    return Plan(jobs, ignored)


def _outputs_in_report(path: Path) -> set[Path]:
    """Resolved outputs that the report of an earlier run into this folder lists."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return {
            Path(entry["output"]).resolve()
            for entry in document.get("images", []) + document.get("earlier", [])
            if entry.get("output")
        }
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return set()


def _walk(folder: Path, recursive: bool, output: Path) -> Iterator[tuple[Path, str | None]]:
    """``(file, None)`` for candidate files, ``(path, reason)`` for what is left out.

    Symbolic links to files are followed; links to folders are not descended (no loops).
    """
    output_resolved = output.resolve()
    skip_output = output_resolved != folder.resolve()
    faces_folder = output_resolved / FACES_FOLDER
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        yield folder, f"cannot list the folder: {error.strerror or error}"
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                resolved = path.resolve()
                skipped = resolved == faces_folder or (skip_output and resolved == output_resolved)
                if recursive and not skipped:
                    yield from _walk(path, recursive, output)
                continue
            if entry.name.startswith("."):
                if not entry.name.endswith(TEMPORARY_SUFFIX) and entry.name != LOCK_NAME:
                    yield path, "hidden file"
                continue
            mode = os.stat(path).st_mode  # follows links: raises for broken ones and loops
        except OSError as error:
            reason = "broken symbolic link" if entry.is_symlink() else "cannot be read"
            yield path, f"{reason} ({error.strerror or error})"
            continue
        if stat.S_ISDIR(mode):
            yield path, "link to a folder (not followed)"
        elif not stat.S_ISREG(mode):
            yield path, "not a regular file (FIFO, socket or device)"
        else:
            yield path, None


def _output_suffix(output_format: str, source: Path) -> str:
    if output_format != "same":
        return OUTPUT_FORMATS[output_format]
    suffix = source.suffix.lower()
    return suffix if suffix in FORMAT_BY_SUFFIX else ".png"


def _check_report_path(path: Path, inputs: set[Path], targets: set[Path]) -> None:
    if path.suffix.lower() != ".json":
        raise ArgumentError("report", f"must be a .json file, got {path}")
    resolved = path.resolve()
    if resolved in inputs:
        raise OutputError(f"report {path} would overwrite an input")
    if resolved in targets:
        raise OutputError(f"report {path} would overwrite an output of this run")
    if path.is_dir():
        raise OutputError(f"report {path} is a folder")


def check_options(quality: int, max_pixels: int) -> None:
    """The numeric options of :func:`restore_folder`, checked before any model is loaded."""
    from .checks import number

    number("quality", quality, 1, 100, integer=True)
    number("max_pixels", max_pixels, 1, integer=True)


def preflight(output: Path, report: Path) -> None:
    """Refuse output locations that cannot work, without creating anything (so a run that
    stops later, e.g. on a model that cannot be loaded, leaves no empty folder behind)."""
    for folder in (output, report.parent):
        _check_not_a_file(folder)
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise OutputError(f"{folder}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputError(f"{folder}: cannot write there: Permission denied")


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove that a file can be written in it, or raise
    :class:`OutputError` before any work is done."""
    _check_not_a_file(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputError(f"{folder}: cannot write there: {error.strerror or error}") from None


def _check_not_a_file(folder: Path) -> None:
    """Refuse a would-be output folder that is a broken link or something other than a folder."""
    if folder.is_symlink() and not folder.exists():
        raise OutputError(f"{folder}: a broken symbolic link, not a folder")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")


def describe_path(path: str | os.PathLike) -> dict:
    """``{"path": text}`` for JSON, plus ``path_base64`` (the exact bytes) when the name is
    not valid UTF-8: lone surrogates would not survive jq or JavaScript."""
    raw = os.fsencode(path)
    try:
        return {"path": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {
            "path": raw.decode("utf-8", "backslashreplace"),
            "path_base64": base64.b64encode(raw).decode("ascii"),
        }


def _described(path: Path, reason: str) -> dict:
    described = describe_path(path)
    entry = {"input": described.pop("path"), "reason": reason}
    if "path_base64" in described:
        entry["input_base64"] = described["path_base64"]
    return entry


def restore_folder(
    inputs: Sequence[str | os.PathLike] | str | os.PathLike,
    output: str | os.PathLike,
    restorer: object | None = None,
    *,
    aligned: bool = False,
    output_format: str = "same",
    suffix: str = "",
    quality: int = 95,
    recursive: bool = False,
    skip_existing: bool = False,
    save_faces: bool = False,
    report: str | os.PathLike | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    settings: dict | None = None,
    compare: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    shard: object | None = None,
    video_codec: str | None = None,
    video_crf: int | None = None,
) -> FolderReport:
    """Restore every image of ``inputs`` (files, folders, globs) into the folder ``output``.

    ``restorer``: a :class:`faceprior.FaceRestorer` (default: one with its defaults).
    Each output is ``output/<relative path><suffix>.<ext>``, ``ext`` the input's or that of
    ``output_format`` (png, jpg, webp, tiff), written atomically; an input is never
    overwritten. ``skip_existing`` resumes an interrupted run. ``save_faces`` writes each
    aligned crop, restored face and mask under ``output/faces/``. ``compare`` writes
    ``<output stem>_compare.png`` beside each output: input | output, faces boxed and
    numbered as in the report (:mod:`faceprior.face.compare`). ``report``: the JSON report
    (default ``output/faceprior-report.json``); ``settings`` are recorded in it. ``log``
    receives one line per problem (default: stderr). Raises :class:`InputError`,
    :class:`OutputError` or :class:`ArgumentError` before any work when the run cannot
    start; problems with single files are recorded in the report instead. ``shard``: a
    :class:`faceprior.distributed.Shard`, this process's share of the inputs when several
    processes (torchrun) restore them together; its report and lock are named after it.
    ``video_codec``/``video_crf``: encoder and constant quality of restored videos
    (:func:`faceprior.video.restore_video`; default libx264 at CRF 18).
    """
    from tqdm import tqdm

    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    check_options(quality, max_pixels)
    output = Path(output)
    plan = plan_jobs(inputs, output, recursive, suffix, output_format, report)
    report_path = Path(report) if report is not None else output / REPORT_NAME
    lock_name = LOCK_NAME
    if shard is not None:
        plan.jobs = shard.select(plan.jobs)
        report_path, lock_name = shard.named(report_path), shard.named(Path(LOCK_NAME)).name
    preflight(output, report_path)
    check_writable(output)
    check_writable(report_path.parent)
    if save_faces:
        check_writable(output / FACES_FOLDER)
    if restorer is None:
        from .pipeline import FaceRestorer

        restorer = FaceRestorer()
    write = log or (lambda line: tqdm.write(line, file=sys.stderr))
    inputs_resolved = {job.source.resolve() for job in plan.jobs}
    with _output_lock(output, lock_name), _sigterm_as_interrupt():
        for folder in {output, report_path.parent, *(job.target.parent for job in plan.jobs)}:
            remove_stale_temporaries(folder)
        journal = _Journal(report_path)
        earlier = journal.recover()
        entries: list[dict] = []
        folder_report = FolderReport(entries, plan.ignored, report_path)
        try:
            for job in tqdm(plan.jobs, desc="restoring", unit="file", disable=not progress):
                entry = _io_entry(job)
                previous = earlier.get(entry["output"])
                if skip_existing and job.target.exists():
                    entry.update(status="skipped", reason="output exists")
                    if previous and previous.get("status") == "restored":
                        entry["previous"] = previous
                else:
                    entry.update(
                        _run_job(
                            restorer, job, aligned, quality, max_pixels, save_faces,
                            output, inputs_resolved, progress, write, compare,
                            {"codec": video_codec, "crf": video_crf},
                        )
                    )  # fmt: skip
                entries.append(entry)
                journal.append(entry)
        except KeyboardInterrupt:
            folder_report.interrupted = True
            raise
        finally:
            journal.finish(
                _report_document(folder_report, earlier, restorer, settings or {}),
            )
    return folder_report


def _io_entry(job: Job) -> dict:
    source, target = describe_path(job.source), describe_path(job.target)
    entry = {"input": source["path"], "output": target["path"]}
    if "path_base64" in source:
        entry["input_base64"] = source["path_base64"]
    if "path_base64" in target:
        entry["output_base64"] = target["path_base64"]
    return entry


def _run_job(
    restorer,
    job: Job,
    aligned: bool,
    quality: int,
    max_pixels: int,
    save_faces: bool,
    output: Path,
    inputs: set[Path],
    progress: bool,
    write: Callable[[str], None],
    compare: bool = False,
    video: dict | None = None,
) -> dict:
    """One file's report fields; a problem with the file becomes ``status: failed``."""
    try:
        if job.kind == "video":
            video = video or {}
            report = video_restorer()(
                restorer,
                job.source,
                job.target,
                codec=video.get("codec"),
                crf=video.get("crf"),
                progress=progress,
            )
            fields = report.to_dict()
            del fields["source"], fields["destination"]  # the entry's input and output
        else:
            fields = _restore_image(
                restorer, job, aligned, quality, max_pixels, save_faces, output, inputs, compare
            )
    except (Exception, MemoryError) as error:  # one bad file must not stop the batch
        display = describe_path(job.source)["path"]
        message = (str(error) or type(error).__name__).replace(str(job.source), display)
        if not message.startswith(display):
            message = f"{display}: {message}"
        write(f"skipped {message}")
        return {"status": "failed", "error": message, "output": None}
    for note in fields.get("notes", []):
        write(f"note: {job.source}: {note}")
    for index, face in enumerate(fields.get("faces", [])):
        if face.get("error"):
            write(f"{job.source}: face {index} not restored: {face['error']}")
    return {**fields, "status": "restored"}


def _restore_image(
    restorer,
    job: Job,
    aligned: bool,
    quality: int,
    max_pixels: int,
    save_faces: bool,
    output: Path,
    inputs: set[Path],
    compare: bool = False,
) -> dict:
    from .io.images import read_image, write_image

    start = time.perf_counter()
    image = read_image(job.source, max_pixels=max_pixels)
    read_time = time.perf_counter() - start
    result = restorer.restore_aligned(image) if aligned else restorer.restore(image)
    write_start = time.perf_counter()
    write_image(job.target, result.image, result.metadata, quality=quality)
    if save_faces:
        _save_faces(result, job, output, inputs)
    if compare:
        from .face.compare import side_by_side

        side = job.target.with_name(f"{job.target.stem}_compare.png")
        if side.resolve() not in inputs:
            write_image(side, side_by_side(image.pixels, result))
    result.timings["read"] = read_time
    result.timings["write"] = time.perf_counter() - write_start
    result.timings["total"] = time.perf_counter() - start
    fields = result.to_dict()
    if image.notes:
        fields["notes"] = list(image.notes)
    return fields


def _save_faces(result, job: Job, output: Path, inputs: set[Path]) -> None:
    """Crops, restored faces and masks under ``output/faces/``, mirroring the sub-folders of
    the outputs so that two photos of one name never share face files."""
    import numpy as np

    from .io.images import write_image

    def as_uint8(values):
        return np.clip(np.rint(values * 255), 0, 255).astype(np.uint8)

    relative = job.target.relative_to(output)
    folder = output / FACES_FOLDER / relative.parent
    for index, face in enumerate(result.faces):
        for kind in ("crop", "restored", "mask"):
            values = getattr(face, kind)
            if values is None:
                continue
            path = folder / f"{relative.stem}_face{index:02d}_{kind}.png"
            if path.resolve() in inputs:
                raise OutputError(f"{path} would overwrite an input; not written")
            write_image(path, as_uint8(values))


@contextlib.contextmanager
def _output_lock(folder: Path, name: str = LOCK_NAME) -> Iterator[None]:
    """Refuse a second run into the same folder while this one is running."""
    import fcntl

    path = folder / name
    try:
        handle = open(path, "a+")  # noqa: SIM115 - held for the whole run
    except OSError as error:
        raise OutputError(f"{path}: cannot create the lock file: {error.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()  # the file belongs to the other run: leave it in place
        raise OutputError(
            f"{folder}: another faceprior run is writing into this folder; wait for it "
            f"to finish or choose another output folder"
        ) from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        handle.close()


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the report is written, then the run stops."""

    signal = signal.SIGTERM


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Journal:
    """The report of a run in progress: JSON lines appended per file, one JSON at the end."""

    def __init__(self, report: Path) -> None:
        self.report = report
        self.lines = report.with_suffix(".jsonl")

    def recover(self) -> dict[str, dict]:
        """Entries of earlier runs by output path: the last report, then a killed run's lines."""
        earlier: dict[str, dict] = {}
        if self.report.is_file():
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                document = json.loads(self.report.read_text(encoding="utf-8"))
                if isinstance(document, dict) and "faceprior" in document:
                    for entry in document.get("images", []):
                        earlier[entry["output"] or entry["input"]] = entry
        if self.lines.is_file():
            with contextlib.suppress(OSError):
                for line in self.lines.read_text(encoding="utf-8").splitlines():
                    with contextlib.suppress(ValueError, TypeError, KeyError):
                        entry = json.loads(line)
                        earlier[entry["output"] or entry["input"]] = entry
        self._handle = open(self.lines, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish
        return earlier

    def append(self, entry: dict) -> None:
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()

    def finish(self, document: dict) -> None:
        self._handle.close()
        atomic_write_bytes(self.report, (json.dumps(document, indent=2) + "\n").encode())
        with contextlib.suppress(OSError):
            self.lines.unlink()


def _report_document(report: FolderReport, earlier: dict[str, dict], restorer, settings) -> dict:
    from . import __version__

    entries = report.entries
    done = {entry["output"] or entry["input"] for entry in entries}
    done |= {entry["input"] for entry in entries}
    kept = [e for key, e in earlier.items() if key not in done and e.get("input") not in done]
    small = {}
    if getattr(restorer, "small_model", None) is not None:
        small = {
            "small_model": restorer.small_model_name,
            "small_face_size": restorer.small_face_size,
        }
    return {
        "faceprior": __version__,
        "settings": settings,
        "model": getattr(restorer, "model_name", None),
        **small,
        "summary": {
            "images": len(entries),
            "restored": report.count("restored"),
            "skipped": report.count("skipped"),
            "failed": report.count("failed"),
            "faces": sum(len(e.get("faces", [])) for e in entries),
            "face_errors": report.face_errors,
            "ignored": len(report.ignored),
            "interrupted": report.interrupted,
            "earlier_runs": len(kept),
        },
        "images": entries,
        "ignored": report.ignored,
        "earlier": kept,
    }
