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
  earlier outputs) are listed in the report with the reason; faceprior's own files (locks,
  temporaries: :func:`is_own_file`) are not inputs and are not listed.

Video files go to :func:`faceprior.video.restore_video` when that module provides it.

The machinery is public for runs that process a folder in another way: :func:`run_jobs` runs
any per-file function over the planned jobs with the same guarantees (the GPEN task commands
pass :func:`process_image` with their own transform), and :class:`FolderRun` gives them to a
run with its own loop (Ray runs, :mod:`faceprior.distributed`), whose workers call
:func:`restore_job` as a local run does.
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
LOCK_STEM = ".faceprior"
LOCK_NAME = LOCK_STEM + ".lock"  # a torchrun shard's: .faceprior.rank0-of-4.lock
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
    *,
    videos: bool = True,
) -> Plan:
    """Input files and their outputs; :class:`InputError` for missing inputs or clashes.

    An output folder inside (or equal to) an input folder is fine: files that are the
    output of another input are left out, and no output may replace an input. ``videos``:
    whether folders contribute their video files (when video support is installed).
    """
    if output_format != "same" and output_format not in OUTPUT_FORMATS:
        raise ArgumentError("output_format", f"must be same or one of {list(OUTPUT_FORMATS)}")
    if "/" in suffix or os.sep in suffix or "\0" in suffix:
        raise ArgumentError("suffix", f"must not contain a path separator, got {suffix!r}")
    output = Path(output)
    video_suffixes = VIDEO_SUFFIXES if videos and video_restorer() is not None else ()
    found: list[tuple[Path, Path]] = []
    ignored: list[dict] = []
    for pattern in inputs:
        path = Path(pattern)
        if path.is_dir():
            for file, reason in _walk(path, recursive, output):
                if reason:
                    ignored.append(_described(file, reason))
                elif file.suffix.lower() in INPUT_SUFFIXES + video_suffixes:
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
        kind = "video" if source.suffix.lower() in video_suffixes else "image"
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
                if not is_own_file(entry.name):
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
    check_output_folders(output, report_path, *([output / FACES_FOLDER] if save_faces else []))
    if restorer is None:
        from .pipeline import FaceRestorer

        restorer = FaceRestorer()
    options = JobOptions(
        output=output,
        protected=protected_inputs(plan),
        aligned=aligned,
        quality=quality,
        max_pixels=max_pixels,
        save_faces=save_faces,
        compare=compare,
        video_codec=video_codec,
        video_crf=video_crf,
        progress=progress,
    )
    return run_jobs(
        plan,
        output,
        lambda job: restore_job(restorer, job, options),
        report=report_path,
        header=report_header(restorer, settings),
        skip_existing=skip_existing,
        progress=progress,
        log=log,
        lock_name=lock_name,
    )


# The machinery under restore_folder, public for the runs that process a folder otherwise:
# the GPEN task commands (their own per-image work) and Ray runs (their own loop).


@dataclass(frozen=True)
class JobOptions:
    """How each file of a folder run is processed and written (the per-file arguments of
    :func:`restore_folder`; see there). ``output``: the run's output folder (face crops go
    under ``output/faces/``); ``protected``: resolved paths no extra file (face crop,
    comparison) may replace, the run's inputs; ``progress``: a bar per video."""

    output: Path
    protected: frozenset[Path] = frozenset()
    aligned: bool = False
    quality: int = 95
    max_pixels: int = DEFAULT_MAX_PIXELS
    save_faces: bool = False
    compare: bool = False
    video_codec: str | None = None
    video_crf: int | None = None
    progress: bool = False


def protected_inputs(plan: Plan) -> frozenset[Path]:
    """The resolved inputs of ``plan``: what :attr:`JobOptions.protected` usually holds."""
    return frozenset(job.source.resolve() for job in plan.jobs)


def check_output_folders(output: Path, report: Path, *others: Path) -> None:
    """Refuse output locations that cannot work (:func:`preflight`), then create ``output``,
    the report's folder and ``others`` and prove each writable (:func:`check_writable`)."""
    preflight(output, report)
    for folder in (output, report.parent, *others):
        check_writable(folder)


def report_header(restorer: object, settings: dict | None = None) -> dict:
    """The first fields of a restoration run's report: its settings and the models used."""
    small = {}
    if getattr(restorer, "small_model", None) is not None:
        small = {
            "small_model": restorer.small_model_name,
            "small_face_size": restorer.small_face_size,
        }
    return {"settings": settings or {}, "model": getattr(restorer, "model_name", None), **small}


def job_entry(job: Job) -> dict:
    """A report entry's ``input`` and ``output`` (and their exact bytes when not UTF-8)."""
    source, target = describe_path(job.source), describe_path(job.target)
    entry = {"input": source["path"], "output": target["path"]}
    if "path_base64" in source:
        entry["input_base64"] = source["path_base64"]
    if "path_base64" in target:
        entry["output_base64"] = target["path_base64"]
    return entry


class FolderRun:
    """What every run into an output folder guarantees, around the caller's loop over jobs.

    Entering checks the output folders (:func:`check_output_folders`), takes the output
    folder's lock (a second run into it is refused), turns SIGTERM into
    :class:`KeyboardInterrupt`, removes the temporaries of killed runs and reads the reports
    of earlier runs (:attr:`earlier`, entries by output path). :meth:`record` journals
    each finished file at once (``<report>.jsonl``); leaving, however the loop ends (Ctrl-C
    and SIGTERM set ``report.interrupted``), writes the JSON report atomically, merged with
    the earlier ones, then releases the lock. ``header``: the report's first fields;
    ``done_status``: the status of a processed file (``restored``, ``done``).
    """

    def __init__(
        self,
        plan: Plan,
        output: Path,
        report: Path,
        header: dict,
        *,
        lock_name: str = LOCK_NAME,
        done_status: str = "restored",
    ) -> None:
        self.plan, self.output, self.header = plan, Path(output), header
        self.lock_name, self.done_status = lock_name, done_status
        self.report = FolderReport([], plan.ignored, Path(report))
        self.earlier: dict[str, dict] = {}
        self._journal = _Journal(Path(report))
        self._held = contextlib.ExitStack()

    def __enter__(self) -> FolderRun:
        check_output_folders(self.output, self.report.path)  # done already by most callers
        with contextlib.ExitStack() as stack:
            stack.enter_context(_output_lock(self.output, self.lock_name))
            stack.enter_context(_sigterm_as_interrupt())
            folders = {self.output, self.report.path.parent}
            for folder in folders | {job.target.parent for job in self.plan.jobs}:
                remove_stale_temporaries(folder)
            self.earlier = self._journal.recover()
            self._held = stack.pop_all()
        return self

    def record(self, entry: dict) -> None:
        """Add a finished file's entry to the report and to the journal on disk."""
        self.report.entries.append(entry)
        self._journal.append(entry)

    def skipped(self, job: Job) -> dict:
        """The entry of a job whose output exists, with the earlier run's entry for it."""
        entry = job_entry(job)
        entry.update(status="skipped", reason="output exists")
        previous = self.earlier.get(entry["output"])
        if previous and previous.get("status") == self.done_status:
            entry["previous"] = previous
        return entry

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is not None and issubclass(kind, KeyboardInterrupt):
                self.report.interrupted = True
            self._journal.finish(self._document())
        finally:
            self._held.close()

    def _document(self) -> dict:
        from . import __version__

        report, status = self.report, self.done_status
        entries = report.entries
        done = {entry["output"] or entry["input"] for entry in entries}
        done |= {entry["input"] for entry in entries}
        kept = [
            e for key, e in self.earlier.items() if key not in done and e.get("input") not in done
        ]
        return {
            "faceprior": __version__,
            **self.header,
            "summary": {
                "images": len(entries),
                status: report.count(status),
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


def run_jobs(
    plan: Plan,
    output: Path,
    work: Callable[[Job], dict],
    *,
    report: Path,
    header: dict,
    skip_existing: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    lock_name: str = LOCK_NAME,
    desc: str = "restoring",
    done_status: str = "restored",
) -> FolderReport:
    """Run ``work`` (one job -> its report fields, raising on a problem with the file) on
    every job of ``plan``, one at a time, inside a :class:`FolderRun`: a file that fails is
    recorded and the batch goes on (:func:`run_job`). ``skip_existing`` leaves out jobs whose
    output exists; ``desc`` labels the progress bar; the others as :class:`FolderRun`."""
    from tqdm import tqdm

    write = log or _write_above_the_bar
    folder_run = FolderRun(
        plan, output, report, header, lock_name=lock_name, done_status=done_status
    )
    with folder_run:
        for job in tqdm(plan.jobs, desc=desc, unit="file", disable=not progress):
            if skip_existing and job.target.exists():
                folder_run.record(folder_run.skipped(job))
            else:
                folder_run.record({**job_entry(job), **run_job(job, work, write, done_status)})
    return folder_run.report


def run_job(
    job: Job,
    work: Callable[[Job], dict],
    log: Callable[[str], None],
    done_status: str = "restored",
) -> dict:
    """``work(job)``'s fields with ``status``; a problem with the file (any exception, out of
    memory included) becomes ``status: failed`` with its message, logged, so that one bad
    file never stops the batch. Notes and per-face errors in the fields are logged too."""
    try:
        fields = work(job)
    except (Exception, MemoryError) as error:
        display = describe_path(job.source)["path"]
        message = (str(error) or type(error).__name__).replace(str(job.source), display)
        if not message.startswith(display):
            message = f"{display}: {message}"
        log(f"skipped {message}")
        return {"status": "failed", "error": message, "output": None}
    for note in fields.get("notes", []):
        log(f"note: {job.source}: {note}")
    for index, face in enumerate(fields.get("faces", [])):
        if face.get("error"):
            log(f"{job.source}: face {index} not restored: {face['error']}")
    return {**fields, "status": done_status}


def restore_job(restorer: object, job: Job, options: JobOptions) -> dict:
    """Restore one file (a photo with ``restorer``, a video with
    :func:`faceprior.video.restore_video`): its report fields; raises on a problem."""
    if job.kind == "video":
        report = video_restorer()(
            restorer,
            job.source,
            job.target,
            codec=options.video_codec,
            crf=options.video_crf,
            progress=options.progress,
        )
        fields = report.to_dict()
        del fields["source"], fields["destination"]  # the entry's input and output
        return fields
    return process_image(
        job, restorer.restore_aligned if options.aligned else restorer.restore, options
    )


def process_image(job: Job, transform: Callable, options: JobOptions) -> dict:
    """Read ``job.source``, ``transform`` it (a :class:`~faceprior.io.images.LoadedImage` ->
    a :class:`~faceprior.pipeline.Result`), write the result atomically to ``job.target``
    (and the faces, the comparison, as ``options`` ask); the report fields, with timings."""
    from .io.images import read_image, write_image

    start = time.perf_counter()
    image = read_image(job.source, max_pixels=options.max_pixels)
    read_time = time.perf_counter() - start
    result = transform(image)
    write_start = time.perf_counter()
    write_image(job.target, result.image, result.metadata, quality=options.quality)
    if options.save_faces:
        _save_faces(result, job, options.output, options.protected)
    if options.compare:
        from .face.compare import side_by_side

        side = job.target.with_name(f"{job.target.stem}_compare.png")
        if side.resolve() not in options.protected:
            write_image(side, side_by_side(image.pixels, result))
    result.timings["read"] = read_time
    result.timings["write"] = time.perf_counter() - write_start
    result.timings["total"] = time.perf_counter() - start
    fields = result.to_dict()
    if image.notes:
        fields["notes"] = list(image.notes)
    return fields


def _write_above_the_bar(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def _save_faces(result, job: Job, output: Path, inputs: frozenset[Path]) -> None:
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


def is_own_file(name: str) -> bool:
    """Whether a file name is one faceprior itself leaves in a folder while it writes there:
    a run's lock (``.faceprior.lock``, or a torchrun shard's ``.faceprior.rank0-of-4.lock``)
    or a temporary of an atomic write. Such files are neither inputs nor ignored inputs."""
    is_lock = name == LOCK_NAME or (name.startswith(LOCK_STEM + ".") and name.endswith(".lock"))
    return is_lock or name.endswith(TEMPORARY_SUFFIX)


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
