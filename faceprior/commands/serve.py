"""Serve restoration over HTTP: a JSON API under /v1 and a web page at /, on this machine.

The models load once, in one worker process, and stay loaded; requests queue for it (a full
queue answers 503 with Retry-After). The server listens on 127.0.0.1 unless told otherwise;
any other address needs a token (--token or FACEPRIOR_SERVE_TOKEN), which every request must
then carry as 'Authorization: Bearer TOKEN' (the web page: open it once with ?token=TOKEN).
Request models are limited to bundled and cached ones (no downloads) unless
--allow-downloads. API documentation: /docs on the running server, and docs/serve.md.

examples:
  faceprior serve
  faceprior serve --port 8080 --model gpen-bfr-512 --jobs-dir /srv/faceprior-jobs
  FACEPRIOR_SERVE_TOKEN=$(openssl rand -hex 16) faceprior serve --host 0.0.0.0
  curl -F image=@photo.jpg http://127.0.0.1:8000/v1/restore -o restored.jpg
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

HELP = "serve restoration over HTTP: an API and a web page (needs the serve extra)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..serve.settings import TOKEN_ENVIRONMENT, ServeSettings

    defaults = ServeSettings()
    network = parser.add_argument_group("network")
    network.add_argument(
        "--host", default=defaults.host, help="address to listen on (default: 127.0.0.1)"
    )
    network.add_argument("--port", type=int, default=defaults.port, help="port (default: 8000)")
    network.add_argument(
        "--token",
        help=f"secret every request must carry (at least 16 characters; default: "
        f"${TOKEN_ENVIRONMENT}); required when --host is not a loopback address",
    )
    network.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="Host header to accept (repeatable); default: any with a token, else only "
        "localhost/127.0.0.1/[::1] (guards against DNS rebinding)",
    )
    models = parser.add_argument_group("models")
    models.add_argument(
        "--model",
        default=defaults.model,
        help="model loaded at start and used when a request names none (default: auto: "
        "gpen-bfr-512 if cached, else a cached gpen-bfr-256, else the bundled gpen-offline-128-v5)",
    )
    models.add_argument(
        "--detector",
        default=defaults.detector,
        help=f"face detector (default: {defaults.detector})",
    )
    models.add_argument("--detector-weights", help="local detector weights (.pth or .onnx)")
    models.add_argument("--device", default=defaults.device, help="torch device (default: cpu)")
    models.add_argument(
        "--precision", choices=("fp32", "bf16", "fp16"), default=defaults.precision,
        help="arithmetic of the restoration model (default: fp32)",
    )  # fmt: skip
    models.add_argument("--batch-size", type=int, help="faces per forward pass")
    models.add_argument("--threads", type=int, help="torch CPU threads of the worker")
    models.add_argument(
        "--allow-downloads",
        action="store_true",
        help="let requests name zoo models that are not cached yet (downloaded on first use)",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--queue-size", type=int, default=defaults.queue_size,
        help=f"requests waiting for the worker before 503 (default: {defaults.queue_size})",
    )  # fmt: skip
    limits.add_argument(
        "--max-upload-mb", type=float, default=defaults.max_upload_bytes / 2**20,
        help=f"largest request body, MiB (default: {defaults.max_upload_bytes / 2**20:g})",
    )  # fmt: skip
    limits.add_argument(
        "--max-pixels", type=int, default=defaults.max_pixels,
        help=f"largest image, pixels (default: {defaults.max_pixels:,})",
    )  # fmt: skip
    limits.add_argument(
        "--max-files", type=int, default=defaults.max_files,
        help=f"files per job (default: {defaults.max_files})",
    )  # fmt: skip
    limits.add_argument(
        "--max-video-seconds", type=float, default=defaults.max_video_seconds,
        help=f"longest video, seconds (default: {defaults.max_video_seconds:g})",
    )  # fmt: skip
    jobs = parser.add_argument_group("jobs")
    jobs.add_argument(
        "--jobs-dir", type=Path,
        help="folder for job uploads and results (default: a temporary folder, removed at exit)",
    )  # fmt: skip
    jobs.add_argument(
        "--keep-jobs", type=int, default=defaults.keep_jobs,
        help=f"finished jobs kept (default: {defaults.keep_jobs}); older ones are deleted",
    )  # fmt: skip
    jobs.add_argument(
        "--job-ttl-hours", type=float, default=defaults.job_ttl_s / 3600,
        help=f"hours a finished job is kept (default: {defaults.job_ttl_s / 3600:g})",
    )  # fmt: skip


def settings_from(args: argparse.Namespace):
    """The :class:`ServeSettings` the command line asks for."""
    from ..serve.settings import ServeSettings, token_from_environment

    return ServeSettings(
        host=args.host,
        port=args.port,
        token=args.token or token_from_environment(),
        model=args.model,
        detector=args.detector,
        detector_weights=args.detector_weights,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        threads=args.threads,
        allow_downloads=args.allow_downloads,
        jobs_dir=args.jobs_dir,
        keep_jobs=args.keep_jobs,
        job_ttl_s=args.job_ttl_hours * 3600,
        queue_size=args.queue_size,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_files=args.max_files,
        max_video_seconds=args.max_video_seconds,
        allowed_hosts=tuple(args.allowed_host) if args.allowed_host else None,
    )


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from ..serve import SettingsError, create_app
        from ..serve.dispatch import WorkerUnavailable
    except ImportError as error:
        print(
            f"faceprior serve: {error.name} is missing; install the serve extra: "
            f"pip install 'faceprior[serve]'",
            file=sys.stderr,
        )
        return 2
    settings = settings_from(args)
    try:
        app = create_app(settings)
    except SettingsError as error:
        print(f"faceprior serve: {error}", file=sys.stderr)
        return 2
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    address = f"http://{host}:{settings.port}/"
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, timeout_graceful_shutdown=10
    )

    async def serve() -> int:
        print("faceprior serve: loading the models...", file=sys.stderr)
        try:  # before listening, so that a model that cannot load is one clear message
            await app.state.worker.start()
        except WorkerUnavailable as error:
            print(f"faceprior serve: {error}", file=sys.stderr)
            return 2
        print(f"faceprior serve: open {address}" + ("?token=TOKEN" if settings.token else ""),
              file=sys.stderr)  # fmt: skip
        await uvicorn.Server(config).serve()
        return 0

    return asyncio.run(serve())
