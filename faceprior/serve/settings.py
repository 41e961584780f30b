"""What a `faceprior serve` instance allows: where it listens, who may call it, how much work.

Everything a request may not change lives here: the device, the detector, the model loaded at
start, the limits. :meth:`ServeSettings.check` refuses settings that would expose the server
(a non-loopback address without a token) before anything listens.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import FacepriorError
from ..face.types import DEFAULT_DETECTOR

TOKEN_ENVIRONMENT = "FACEPRIOR_SERVE_TOKEN"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class SettingsError(FacepriorError, ValueError):
    """Settings the server refuses to start with; the message says what to change."""


@dataclass(frozen=True)
class ServeSettings:
    """Server-side choices and limits (see docs/serve.md for each one).

    ``model`` is loaded when the worker starts and used when a request names none (or
    ``auto``); requests may name other restoration models only when their weights are bundled
    or already cached, unless ``allow_downloads``. ``jobs_dir``: where job uploads and results
    live (default: a temporary folder removed at shutdown). ``keep_jobs`` / ``job_ttl_s``: the
    retention limit, finished jobs beyond either are deleted with their files.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    model: str = "auto"
    detector: str = DEFAULT_DETECTOR
    detector_weights: str | None = None
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int | None = None
    threads: int | None = None
    allow_downloads: bool = False
    jobs_dir: Path | None = None
    keep_jobs: int = 50
    job_ttl_s: float = 24 * 3600.0
    queue_size: int = 8
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_files: int = 32
    max_video_seconds: float = 600.0
    allowed_hosts: tuple[str, ...] | None = None
    worker_start_timeout_s: float = 600.0

    def check(self) -> None:
        """Raise :class:`SettingsError` for settings that are unsafe or cannot work."""
        if not is_loopback(self.host) and not self.token:
            raise SettingsError(
                f"binding to {self.host} (not a loopback address) needs a token: pass --token "
                f"or set {TOKEN_ENVIRONMENT}, and send it as 'Authorization: Bearer TOKEN'"
            )
        if self.token is not None and len(self.token) < 16:
            raise SettingsError("the token must be at least 16 characters long")
        for name in ("queue_size", "max_upload_bytes", "max_pixels", "max_files", "keep_jobs"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_video_seconds", "job_ttl_s"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be in 1-65535, got {self.port}")

    def trusted_hosts(self) -> tuple[str, ...]:
        """Host headers accepted: any with a token, else only loopback names.

        Without a token, a web page on another site could otherwise reach this server through
        a DNS name rebound to 127.0.0.1; the Host header is what gives that away.
        """
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        if self.token:
            return ("*",)
        return ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) only accepts connections from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_from_environment() -> str | None:
    return os.environ.get(TOKEN_ENVIRONMENT) or None
