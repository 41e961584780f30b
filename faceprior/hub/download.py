"""Downloading zoo files into the user cache: resumable, verified, atomic.

A file appears under its final name only after it was fully received and verified (sha256
when the zoo pins one, otherwise the expected size; the hash seen at the first download is
recorded in ``hashes.json`` and enforced on every later use). Partial downloads are kept as
``<name>.part`` and resumed with an HTTP Range request.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ..errors import DownloadError
from .zoo import ZooEntry

CHUNK = 1 << 20
TIMEOUT_S = 30
# Set to 1 (or true/yes/on) to forbid every download: only cached and bundled files are used.
OFFLINE_ENV = "FACEPRIOR_OFFLINE"
_offline_scope: ContextVar[bool] = ContextVar("faceprior_offline", default=False)
# Files shipped inside the package (zoo entries and metric weights marked ``bundled``).
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"


def is_offline() -> bool:
    """True inside :func:`offline` or when ``$FACEPRIOR_OFFLINE`` is 1/true/yes/on."""
    flag = os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return flag or _offline_scope.get()


@contextmanager
def offline(enabled: bool = True) -> Iterator[None]:
    """Within the block, :func:`fetch` never opens a connection (``enabled=False``: no change)."""
    token = _offline_scope.set(enabled or _offline_scope.get())
    try:
        yield
    finally:
        _offline_scope.reset(token)


def bundled_path(entry: ZooEntry) -> Path:
    """Where a file shipped inside the package lives (``faceprior/weights/``)."""
    return BUNDLED_DIR / entry.filename


def cache_dir() -> Path:
    """``$FACEPRIOR_HOME`` or the platform's user cache folder (e.g. ~/.cache/faceprior)."""
    override = os.environ.get("FACEPRIOR_HOME")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("faceprior"))


def weights_dir() -> Path:
    return cache_dir() / "weights"


def cached_path(entry: ZooEntry) -> Path:
    return weights_dir() / entry.filename


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_record_path() -> Path:
    return weights_dir() / "hashes.json"


def _recorded_hashes() -> dict[str, str]:
    path = _hash_record_path()
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def _record_hash(filename: str, digest: str) -> None:
    hashes = _recorded_hashes()
    hashes[filename] = digest
    path = _hash_record_path()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True))
    os.replace(tmp, path)


def expected_hash(entry: ZooEntry) -> str | None:
    return entry.sha256 or _recorded_hashes().get(entry.filename)


def verify(entry: ZooEntry, path: Path) -> None:
    """Raise DownloadError if ``path`` is not the file the zoo (or the first download) pinned."""
    size = path.stat().st_size
    if entry.size_bytes is not None and size != entry.size_bytes:
        raise DownloadError(
            f"{path}: size {size} bytes, expected {entry.size_bytes} for {entry.name}"
        )
    want = expected_hash(entry)
    if want is not None:
        got = sha256_of(path)
        if got != want:
            raise DownloadError(f"{path}: sha256 {got} does not match {want} for {entry.name}")


def fetch(entry: ZooEntry, progress: bool = True) -> Path:
    """Return the verified local file of ``entry``, downloading it if needed.

    A bundled entry is taken from the package; offline (see :func:`is_offline`), a file that
    is neither bundled nor cached is a DownloadError without any connection attempt.
    """
    if entry.bundled and bundled_path(entry).is_file():
        verify(entry, bundled_path(entry))
        return bundled_path(entry)
    target = cached_path(entry)
    if target.exists():
        verify(entry, target)
        return target
    if is_offline():
        raise DownloadError(
            f"{entry.name} is not cached and offline mode is on (--offline / {OFFLINE_ENV}); "
            f"put {entry.filename} at {target} or pass a local file's path"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in entry.urls:
        try:
            _download(url, target, entry, progress)
            return target
        except (urllib.error.URLError, http.client.HTTPException, OSError, DownloadError) as error:
            errors.append(f"{url}: {error}")
    tried = "\n  ".join(errors) or "(no URL known)"
    raise DownloadError(
        f"could not download {entry.name} ({entry.filename}).\n  {tried}\n"
        f"Download it by hand from {entry.urls[0] if entry.urls else 'the authors'} and put it at "
        f"{target} (or pass the file's path instead of the model name)."
    )


def _download(url: str, target: Path, entry: ZooEntry, progress: bool) -> None:
    from tqdm import tqdm

    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "faceprior"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        if have and response.status != 206:
            have = 0  # server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else entry.size_bytes
        with (
            open(partial, "ab" if have else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=entry.filename,
                disable=not progress,
            ) as bar,
        ):
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))
    received = partial.stat().st_size
    if total is not None and received < total:
        raise DownloadError(
            f"connection closed after {received} of {total} bytes; run again to resume"
        )
    try:
        verify(entry, partial)
    except DownloadError:
        partial.unlink()
        raise
    if expected_hash(entry) is None:
        _record_hash(entry.filename, sha256_of(partial))
    os.replace(partial, target)
