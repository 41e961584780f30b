"""The worker process: restorations run here, one task at a time, with the models kept loaded.

The web server never imports torch; it sends :class:`Task` objects through a multiprocessing
queue (spawn start method, so no state is inherited from the event loop's process) and reads
back messages: ``("ready", catalogue)`` once the default model and the detector are loaded,
then per task ``("progress", id, done, total)``, ``("item", id, index, entry)``, and one of
``("result", id, payload)``, ``("error", id, status, message)`` or ``("cancelled", id)``.
A task is cancelled when the shared ``cancel`` value holds its id; the worker looks between
photos (and between video frames).
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .options import OUTPUT_FORMATS, RequestOptions
from .settings import ServeSettings

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
# Keyword arguments that make FaceRestorer load something; the rest are cheap per request.
LOAD_OPTIONS = (
    "model",
    "fidelity",
    "parsing_model",
    "small_model",
    "mask_parser",
    "score_threshold",
    "nms_threshold",
)
CACHED_RESTORERS = 2
PROGRESS_INTERVAL_S = 0.25
VIDEO_MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
}


@dataclass
class Upload:
    """One uploaded file: its bytes, or a generated path under the jobs folder.

    ``label`` is the client's file name reduced to its last component; it only appears in
    messages and download names, never in a path.
    """

    label: str
    data: bytes | None = None
    path: str | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else Path(self.path).read_bytes()


@dataclass
class Task:
    """``kind``: ``image`` (answer with the bytes), ``photos`` (write results to
    ``output_dir``) or ``video``."""

    id: int
    kind: str
    options: RequestOptions
    uploads: list[Upload] = field(default_factory=list)
    output_dir: str | None = None


@dataclass
class Restored:
    """One restored photo: its report entry, encoded image and format, and the compare PNG."""

    entry: dict
    data: bytes
    format: str
    compare: bytes | None = None


class TaskError(Exception):
    """A task that cannot be done; ``status`` is the HTTP status the request gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TaskCancelled(Exception):
    pass


def worker_main(settings: ServeSettings, inbox, outbox, cancel) -> None:
    """Entry point of the spawned process: load, announce, then serve tasks until ``None``."""
    try:
        service = RestorationService(settings)
        catalogue = service.start()
    except Exception as error:  # the server reports it and exits; nothing to serve with
        outbox.put(("failed", f"{type(error).__name__}: {error}"))
        return
    outbox.put(("ready", catalogue))
    while True:
        task = inbox.get()
        if task is None:
            return
        try:
            payload = service.run(task, outbox, partial(_is_cancelled, cancel, task.id))
            outbox.put(("result", task.id, payload))
        except TaskCancelled:
            outbox.put(("cancelled", task.id))
        except TaskError as error:
            outbox.put(("error", task.id, error.status, str(error)))
        except Exception as error:  # a bug, not the request's fault: say so, keep serving
            outbox.put(("error", task.id, 500, f"internal error: {type(error).__name__}: {error}"))


def _is_cancelled(cancel, task_id: int) -> bool:
    return cancel.value == task_id


class RestorationService:
    """Keeps restorers loaded and runs tasks with them."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self._bases: OrderedDict[tuple, object] = OrderedDict()
        self.default_model = settings.model

    def start(self) -> dict:
        """Load the default model and the detector; return the catalogue of models."""
        import torch

        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        if self.default_model == "auto":
            self.default_model = self._auto_model()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            restorer = self.restorer({})
        notes = [str(warning.message) for warning in caught]
        return {**catalogue(self.settings, restorer.model_name), "warnings": notes}

    def restorer(self, options: dict):
        """A FaceRestorer for these options, reusing the loaded networks of an earlier one."""
        from ..pipeline import FaceRestorer

        options = dict(options)
        if options.get("model") in (None, "auto"):
            options["model"] = self.default_model
        load = {name: options.pop(name) for name in LOAD_OPTIONS if name in options}
        if options.get("mask") == "parsing":  # the other masks cost nothing to make
            load["mask"] = options.pop("mask")
        if options.get("background", "lanczos") != "lanczos":  # a network, chosen by upscale
            load["background"] = options.pop("background")
            load.update({k: options[k] for k in ("upscale", "tile_size") if k in options})
        key = tuple(sorted(load.items()))
        base = self._bases.get(key)
        if base is None:
            base = FaceRestorer(**load, **self._server_keywords())
            base.detector  # noqa: B018 - load now, not inside the first request
            self._bases[key] = base
            while len(self._bases) > CACHED_RESTORERS:
                self._bases.popitem(last=False)
        self._bases.move_to_end(key)
        if "mask" in load:
            options["mask"] = base.mask_source
        if "background" in load:
            options["background"] = base.background or "lanczos"
        keywords = self._server_keywords()
        keywords.update(reuse_memory=False, detector=base.detector)
        restorer = FaceRestorer(base.model, small_model=base.small_model, **keywords, **options)
        restorer.model_name, restorer.small_model_name = base.model_name, base.small_model_name
        if "background" in load:
            restorer.background_name = base.background_name
        return restorer

    def run(self, task: Task, outbox, cancelled) -> dict:
        restorer = self._restorer_for(task.options)
        if task.kind == "image":
            done = self._restore_one(restorer, task.uploads[0], task.options)
            return {"image": done.data, "format": done.format, "report": done.entry,
                    "compare": done.compare}  # fmt: skip
        if task.kind == "photos":
            return self._restore_photos(restorer, task, outbox, cancelled)
        if task.kind == "video":
            return self._restore_video(restorer, task, outbox, cancelled)
        raise TaskError(422, f"unknown task kind {task.kind!r}")

    def _restorer_for(self, options: RequestOptions):
        from ..errors import FacepriorError

        try:
            return self.restorer(options.restorer)
        except (FacepriorError, ValueError, KeyError) as error:
            raise TaskError(422, str(error).strip("'\"")) from None

    def _restore_one(self, restorer, upload: Upload, options: RequestOptions) -> Restored:
        """One photo restored and encoded; :class:`TaskError` 422 for a bad image."""
        from ..errors import FacepriorError
        from ..face.compare import side_by_side
        from ..io.images import decode_image, encode_image

        start = time.perf_counter()
        try:
            loaded = decode_image(
                upload.read(), max_pixels=self.settings.max_pixels, source=upload.label
            )
            read_time = time.perf_counter() - start
            result = (
                restorer.restore_aligned(loaded) if options.aligned else restorer.restore(loaded)
            )
            encode_start = time.perf_counter()
            data, fmt = encode(result, loaded.metadata.format, options, upload.label)
            compare = None
            if options.compare:
                compare = encode_image(side_by_side(loaded.pixels, result), "PNG")
        except (FacepriorError, ValueError) as error:
            message = str(error)
            if not message.startswith(upload.label):
                message = f"{upload.label}: {message}"
            raise TaskError(422, message) from None
        result.timings["read"] = read_time
        result.timings["write"] = time.perf_counter() - encode_start
        result.timings["total"] = time.perf_counter() - start
        entry = {"input": upload.label, "model": restorer.model_name, **result.to_dict()}
        entry["format"] = fmt
        if loaded.notes:
            entry["notes"] = list(loaded.notes)
        return Restored(entry, data, fmt, compare)

    def _restore_photos(self, restorer, task: Task, outbox, cancelled) -> dict:
        from ..io.images import atomic_write_bytes

        total = len(task.uploads)
        restored = 0
        for index, upload in enumerate(task.uploads):
            if cancelled():
                raise TaskCancelled
            outbox.put(("progress", task.id, index, total))
            try:
                done = self._restore_one(restorer, upload, task.options)
            except TaskError as error:  # one bad photo must not stop the job
                outbox.put(("item", task.id, index, {"status": "failed", "error": str(error)}))
                continue
            entry = done.entry
            name = f"result-{index:04d}{SUFFIXES[done.format]}"
            atomic_write_bytes(Path(task.output_dir) / name, done.data)
            entry.update(status="restored", file=name, media_type=MEDIA_TYPES[done.format])
            if done.compare is not None:
                entry["compare_file"] = f"compare-{index:04d}.png"
                atomic_write_bytes(Path(task.output_dir) / entry["compare_file"], done.compare)
            outbox.put(("item", task.id, index, entry))
            restored += 1
        outbox.put(("progress", task.id, total, total))
        return {"restored": restored, "failed": total - restored}

    def _restore_video(self, restorer, task: Task, outbox, cancelled) -> dict:
        """One video through :func:`faceprior.video.restore_video`, its length checked first."""
        try:
            import av  # noqa: F401 - faceprior.video imports it only when opening the file
        except ImportError:
            raise TaskError(415, "video jobs need PyAV: pip install 'faceprior[video]'") from None
        from ..errors import FacepriorError
        from ..video import VIDEO_SUFFIXES, VideoError, restore_video
        from ..video.streams import open_input, probe

        upload = task.uploads[0]
        source = Path(upload.path)

        def relabel(error: Exception) -> str:  # messages name the upload, not the server's path
            return str(error).replace(str(source), upload.label)

        try:
            container = open_input(source)
            try:
                info = probe(container)
            finally:
                container.close()
        except VideoError as error:
            raise TaskError(422, relabel(error)) from None
        limit = self.settings.max_video_seconds
        if info.duration is None or info.duration > limit:
            length = "of unknown length" if info.duration is None else f"{info.duration:.1f} s long"
            raise TaskError(422, f"{upload.label}: the video is {length}; this server's limit "
                            f"is {limit:g} s (faceprior serve --max-video-seconds)")  # fmt: skip
        suffix = Path(upload.label).suffix.lower()
        name = f"result-0000{suffix if suffix in VIDEO_SUFFIXES else '.mp4'}"
        total = info.frames or 0
        watch = _FrameWatch(lambda done: outbox.put(("progress", task.id, done, total)), cancelled)
        outbox.put(("progress", task.id, 0, total))
        try:
            # a job is never resumed: a cancelled or failed one leaves nothing behind
            report = restore_video(
                restorer, source, Path(task.output_dir) / name, resume=False, on_frame=watch
            )
        except (FacepriorError, ValueError) as error:
            raise TaskError(422, relabel(error)) from None
        entry = {
            key: value
            for key, value in report.to_dict().items()
            if key not in ("source", "destination")
        }
        entry.update(
            status="restored", file=name, model=restorer.model_name,
            media_type=VIDEO_MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"),
        )  # fmt: skip
        outbox.put(("item", task.id, 0, entry))
        outbox.put(("progress", task.id, report.frames, report.frames))
        return {"restored": 1, "failed": 0}

    def _server_keywords(self) -> dict:
        settings = self.settings
        return {
            "detector": settings.detector,
            "detector_weights": settings.detector_weights,
            "device": settings.device,
            "batch_size": settings.batch_size,
            "precision": settings.precision,
            "max_pixels": settings.max_pixels,
            "offline": not settings.allow_downloads,
        }

    def _auto_model(self) -> str:
        """``auto`` without network access: the first of AUTO_MODELS already on this machine."""
        from ..pipeline import AUTO_MODELS

        if self.settings.allow_downloads:
            return "auto"
        models = restoration_models(self.settings)
        return next((name for name in AUTO_MODELS if models[name]["available"]), AUTO_MODELS[-1])


class _FrameWatch:
    """``on_frame`` of a video job: reports progress (at most every PROGRESS_INTERVAL_S) and
    stops the video, between frames, when the job is cancelled."""

    def __init__(self, on_frame, cancelled) -> None:
        self._on_frame, self._cancelled = on_frame, cancelled
        self._reported = 0.0

    def __call__(self, done: int, total: int | None) -> None:
        if self._cancelled():
            raise TaskCancelled
        now = time.monotonic()
        if now - self._reported > PROGRESS_INTERVAL_S:
            self._reported = now
            self._on_frame(done)


def encode(result, input_format: str | None, options: RequestOptions, label: str):
    """The restored pixels as bytes: the requested format, or the input's when it can hold
    them (a BMP with alpha comes back as PNG)."""
    from ..io.images import ImageError, encode_image

    if options.format != "same":
        fmt = OUTPUT_FORMATS[options.format]
        return encode_image(result.image, fmt, result.metadata, options.quality, label), fmt
    fmt = input_format if input_format in SUFFIXES else "PNG"
    try:
        return encode_image(result.image, fmt, result.metadata, options.quality, label), fmt
    except ImageError:
        return encode_image(result.image, "PNG", result.metadata, options.quality, label), "PNG"


def restoration_models(settings: ServeSettings) -> dict[str, dict]:
    """Every zoo restoration model, and whether a request may name it (``available``: bundled
    or cached, or any with ``allow_downloads``)."""
    from ..hub.zoo import entries
    from ..models.registry import get_architecture

    found = {}
    for entry in entries().values():
        try:
            restores = get_architecture(entry.architecture).restorer is not None
        except KeyError:
            continue
        if not restores:
            continue
        cached = _on_this_machine(entry)
        found[entry.name] = {
            "name": entry.name,
            "architecture": entry.architecture,
            "description": entry.description,
            "licence": entry.licence,
            "input_size": entry.input_size,
            "output_size": entry.output_size,
            "bundled": entry.bundled,
            "cached": cached,
            "available": cached or settings.allow_downloads,
        }
    return found


def catalogue(settings: ServeSettings, default_name: str) -> dict:
    """What ``GET /v1/models`` answers: the zoo's restoration models, the parsers a request
    may name, and the default."""
    from ..hub.zoo import entries

    models = restoration_models(settings)
    if default_name not in models:  # a checkpoint path given to `faceprior serve --model`
        models[default_name] = {"name": default_name, "cached": True, "available": True}

    def available(architecture: str) -> list[str]:
        return [
            e.name
            for e in entries().values()
            if e.architecture == architecture and (settings.allow_downloads or _on_this_machine(e))
        ]

    return {
        "default": default_name,
        "models": list(models.values()),
        "parsers": available("psfrgan-parsenet"),
        # "realesrnet" picks the network for the upscale factor, Lanczos when it is missing.
        "backgrounds": ["lanczos", "realesrnet", *available("realesrnet")],
    }


def _on_this_machine(entry) -> bool:
    """Whether a zoo entry's weights need no download: bundled, or already cached."""
    from ..hub import download

    return entry.bundled or download.cached_path(entry).exists()
