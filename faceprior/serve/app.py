"""The FastAPI application: routes, error answers, the web page.

Every answer that is not a file is JSON; errors are ``{"error": message}`` with a 4xx status
for anything the client can fix (the message is the one the CLI prints for the same
problem), 503 with Retry-After when the queue is full, and 500 only for a fault of the
server itself. See docs/serve.md for the API.
"""

from __future__ import annotations

import base64
import re
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from .dispatch import QueueFull, WorkerClient, WorkerUnavailable, resident_bytes
from .jobs import FINISHED, Job, JobStore
from .options import OUTPUT_FIELDS, OptionError, option_specs, parse_options
from .security import BodyLimit, BodyTooLarge, TokenGuard
from .settings import ServeSettings
from .worker import MEDIA_TYPES, SUFFIXES, Task, TaskCancelled, TaskError, Upload

STATIC = Path(__file__).parent / "static"
UPLOAD_FIELDS = ("image", "file", "files", "video")
MAX_FIELDS = 64


class ServeError(Exception):
    """An answer other than success: HTTP status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def create_app(settings: ServeSettings) -> FastAPI:
    """The ASGI app for ``settings``; the worker starts with the app's lifespan."""
    settings.check()
    worker = WorkerClient(settings)
    jobs = JobStore(settings.jobs_dir, settings.keep_jobs, settings.job_ttl_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()
            jobs.close()

    app = FastAPI(
        title="faceprior",
        version=__version__,
        description="Blind face restoration over HTTP; see docs/serve.md.",
        lifespan=lifespan,
    )
    app.state.worker, app.state.jobs, app.state.settings = worker, jobs, settings
    _add_error_answers(app)

    @app.get("/health")
    async def health():
        """Whether the worker is up; 503 while it (re)starts."""
        body = {"status": "ok" if worker.ready else "unavailable", "queued": worker.queued}
        return JSONResponse(body, status_code=200 if worker.ready else 503)

    @app.get("/metrics")
    async def metrics():
        """Counters, queue length and the memory of both processes (for load tests)."""
        return {
            "queued": worker.queued,
            "busy": worker.busy,
            "tasks": worker.counts,
            "jobs": len(jobs.all()),
            "resident_bytes": {
                "server": resident_bytes(),
                "worker": resident_bytes(worker.worker_pid) if worker.ready else None,
            },
        }

    @app.get("/v1/models")
    async def models():
        """Models and parsers requests may name, the default, and every request option."""
        specs = {
            name: {"type": spec.annotation, "default": _jsonable(spec.default)}
            for name, spec in option_specs().items()
        }
        specs.update({name: {"type": text} for name, text in OUTPUT_FIELDS.items()})
        return {**worker.catalogue, "options": specs, "limits": _limits(settings)}

    @app.post("/v1/restore", openapi_extra=_upload_schema("image"))
    async def restore(request: Request):
        """Restore one photo and answer with the image in its format (``Accept:
        application/json``: the report and the image in base64)."""
        uploads, fields = await _read_request(request, settings, single=True)
        options = _parse(fields, worker)
        label, data = uploads[0]
        if _is_video(label):
            raise ServeError(422, f"{label}: videos are restored as jobs: POST /v1/jobs")
        _, future = _submit(worker, lambda i: Task(i, "image", options, [Upload(label, data)]))
        try:
            payload = await future
        except TaskCancelled:
            raise ServeError(503, "the server is shutting down") from None
        report, fmt, compare = payload["report"], payload["format"], payload["compare"]
        stem = PurePosixPath(label).stem
        name = f"{stem}_restored{SUFFIXES[fmt]}"
        if "application/json" in request.headers.get("accept", ""):
            answer = {"report": report, "filename": name, "media_type": MEDIA_TYPES[fmt],
                      "image_base64": base64.b64encode(payload["image"]).decode()}  # fmt: skip
            if compare is not None:
                answer["compare_base64"] = base64.b64encode(compare).decode()
            return answer
        if compare is not None:  # one image per answer: the one asked for
            name, image, media_type = f"{stem}_compare.png", compare, "image/png"
        else:
            image, media_type = payload["image"], MEDIA_TYPES[fmt]
        headers = {
            "content-disposition": f'attachment; filename="{_ascii(name)}"',
            "x-faceprior-model": _ascii(report["model"]),
            "x-faceprior-faces": str(len(report["faces"])),
        }
        return Response(image, media_type=media_type, headers=headers)

    @app.post("/v1/jobs", status_code=202, openapi_extra=_upload_schema("files"))
    async def submit_job(request: Request):
        """Queue photos (or a video) for restoration; poll ``GET /v1/jobs/{id}``."""
        uploads, fields = await _read_request(request, settings, single=False)
        options = _parse(fields, worker)
        kind = "video" if any(_is_video(label) for label, _ in uploads) else "photos"
        if kind == "video" and len(uploads) != 1:
            raise ServeError(422, "a video job takes one video and nothing else")
        job = jobs.create(kind, uploads)

        def build(task_id: int) -> Task:
            files = [
                Upload(label, path=jobs.input_path(job, i)) for i, label in enumerate(job.names)
            ]
            return Task(task_id, kind, options, files, output_dir=str(job.folder))

        try:
            job.task_id, future = _submit(worker, build, lambda m: _job_progress(job, m))
        except ServeError:
            jobs.delete(job)
            raise
        future.add_done_callback(lambda f: _job_finished(job, f, jobs))
        return JSONResponse(
            job.to_dict(), status_code=202, headers={"location": f"/v1/jobs/{job.id}"}
        )

    @app.get("/v1/jobs")
    async def list_jobs():
        jobs.prune()
        return {"jobs": [job.to_dict() for job in jobs.all()]}

    @app.get("/v1/jobs/{job_id}")
    async def job_status(job_id: str):
        return _job(jobs, job_id).to_dict()

    @app.get("/v1/jobs/{job_id}/results/{index}")
    async def job_result(job_id: str, index: int):
        """The restored file of item ``index`` (404 until it is done)."""
        job = _job(jobs, job_id)
        path = jobs.result_path(job, index)
        if path is None or not path.is_file():
            raise ServeError(404, f"job {job_id} has no result {index} (yet)")
        item = job.items[index]
        name = f"{PurePosixPath(item['input']).stem}_restored{path.suffix}"
        return FileResponse(path, media_type=item.get("media_type"), filename=_ascii(name))

    @app.get("/v1/jobs/{job_id}/compare/{index}")
    async def job_compare(job_id: str, index: int):
        """Input | output of item ``index`` as PNG (jobs submitted with ``compare=true``)."""
        job = _job(jobs, job_id)
        path = jobs.result_path(job, index, "compare_file")
        if path is None or not path.is_file():
            raise ServeError(
                404, f"job {job_id} has no comparison {index} (compare=true makes one)"
            )
        name = f"{PurePosixPath(job.items[index]['input']).stem}_compare.png"
        return FileResponse(path, media_type="image/png", filename=_ascii(name))

    @app.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str):
        """Cancel a queued or running job and delete its files."""
        job = _job(jobs, job_id)
        if job.status in FINISHED:
            jobs.delete(job)
            return {"id": job.id, "status": job.status, "deleted": True}
        job.delete_when_finished = True
        worker.cancel(job.task_id)
        if job.status == "queued":  # removed from the queue: its callback deleted it
            return {"id": job.id, "status": "cancelled", "deleted": True}
        return JSONResponse({"id": job.id, "status": "cancelling", "deleted": False}, 202)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    app.add_middleware(TokenGuard, token=settings.token)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.trusted_hosts()))
    return app


async def _read_request(
    request: Request, settings: ServeSettings, single: bool
) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Uploaded files as ``(label, bytes)`` and option fields (query and form)."""
    fields = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    uploads: list[tuple[str, bytes]] = []
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=settings.max_files, max_fields=MAX_FIELDS)
        except HTTPException as error:  # Starlette's "Too many files/fields": a limit
            status = 413 if str(error.detail).startswith("Too many") else error.status_code
            raise ServeError(status, str(error.detail)) from None
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key not in UPLOAD_FIELDS:
                        raise ServeError(
                            422, f"file field {key!r}: send files as 'image' or 'files'"
                        )
                    uploads.append((_label(value.filename), await value.read()))
                elif key in UPLOAD_FIELDS:
                    raise ServeError(422, f"{key!r} must be a file upload, not a text field")
                else:
                    fields[key] = str(value)
        finally:
            await form.close()
    elif content_type.startswith("application/x-www-form-urlencoded"):
        raise ServeError(415, "send the image as multipart/form-data or as the raw request body")
    else:
        data = await request.body()
        label = _label(fields.pop("filename", None) or "upload")
        if data:
            uploads.append((label, data))
    if not uploads:
        raise ServeError(422, "no image in the request: upload it as field 'image' or as the body")
    if single and len(uploads) > 1:
        raise ServeError(422, f"/v1/restore takes one image, got {len(uploads)}; use /v1/jobs")
    return uploads, fields


def _parse(fields: dict[str, str], worker: WorkerClient):
    catalogue = worker.catalogue
    names = {
        "models": {model["name"] for model in catalogue["models"] if model["available"]},
        "parsers": set(catalogue["parsers"]),
        "backgrounds": set(catalogue.get("backgrounds", ())),
    }
    names["models"].add("auto")
    try:
        return parse_options(fields, names)
    except OptionError as error:
        raise ServeError(422, str(error)) from None


def _submit(worker: WorkerClient, build, on_message=None):
    try:
        return worker.submit(build, on_message)
    except QueueFull as error:
        raise ServeError(503, str(error), {"retry-after": str(error.retry_after)}) from None


def _job(jobs: JobStore, job_id: str) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise ServeError(404, f"no job {job_id!r} (finished jobs are kept for a limited time)")
    return job


def _job_progress(job: Job, message: tuple) -> None:
    if job.status == "queued":
        job.status = "running"
    if message[0] == "progress":
        job.done, job.total = message[2], message[3]
    else:
        index, entry = message[2], message[3]
        job.items[index] = {"input": job.names[index], **entry}


def _job_finished(job: Job, future, jobs: JobStore) -> None:
    if future.cancelled() or isinstance(future.exception(), TaskCancelled):
        job.finish("cancelled")
    elif future.exception() is not None:
        job.finish("failed", str(future.exception()))
    else:
        job.finish("done")
    if job.delete_when_finished:
        jobs.delete(job)
    else:
        jobs.remove_inputs(job)


def _add_error_answers(app: FastAPI) -> None:
    def answer(status: int, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ServeError)
    async def serve_error(request, error: ServeError):
        return answer(error.status, str(error), error.headers)

    @app.exception_handler(TaskError)
    async def task_error(request, error: TaskError):
        return answer(error.status, str(error))

    @app.exception_handler(WorkerUnavailable)
    async def unavailable(request, error: WorkerUnavailable):
        return answer(503, str(error), {"retry-after": "30"})

    @app.exception_handler(BodyTooLarge)
    async def too_large(request, error):
        limit = app.state.settings.max_upload_bytes
        return answer(413, f"the upload is larger than this server's limit of {limit:,} bytes")

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        return answer(error.status_code, str(error.detail), getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return answer(422, problems)


def _upload_schema(field: str) -> dict:
    """OpenAPI description of the multipart body: the file and every option as a field."""
    properties = {field: {"type": "string", "format": "binary"}}
    for name, spec in option_specs().items():
        properties[name] = {"type": "string", "description": spec.describe()}
    for name, text in OUTPUT_FIELDS.items():
        properties[name] = {"type": "string", "description": text}
    schema = {"type": "object", "properties": properties, "required": [field]}
    return {
        "requestBody": {
            "content": {
                "multipart/form-data": {"schema": schema},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    }


def _limits(settings: ServeSettings) -> dict:
    return {
        "max_upload_bytes": settings.max_upload_bytes,
        "max_pixels": settings.max_pixels,
        "max_files": settings.max_files,
        "max_video_seconds": settings.max_video_seconds,
        "queue_size": settings.queue_size,
    }


def _label(filename: str | None) -> str:
    """The last component of a client's file name, printable, for messages only."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name
    name = "".join(c for c in name if c.isprintable())[-120:]
    return name or "upload"


def _ascii(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def _is_video(label: str) -> bool:
    from ..video import VIDEO_SUFFIXES

    return PurePosixPath(label).suffix.lower() in VIDEO_SUFFIXES


def _jsonable(value):
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
