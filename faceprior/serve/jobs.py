"""Jobs: uploads and results on disk under generated names, with a retention limit.

A job owns one folder ``<jobs_dir>/<id>/`` whose name is a random hex id and whose files are
named by the server (``input-0000``, ``result-0000.png``); nothing a client sends becomes
part of a path. Jobs live in memory (a restart forgets them and removes their folders, which
carry a marker file so that no other folder is ever deleted). Finished jobs beyond
``keep_jobs`` or older than ``job_ttl_s`` are deleted with their files.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKER = ".faceprior-serve-job"
JOB_ID = re.compile(r"^[0-9a-f]{20}$")
FINISHED = ("done", "failed", "cancelled")


@dataclass
class Job:
    """One submitted job; :meth:`to_dict` is what ``GET /v1/jobs/{id}`` answers."""

    id: str
    kind: str
    folder: Path
    names: list[str]
    created: float = field(default_factory=time.time)
    status: str = "queued"
    task_id: int | None = None
    done: int = 0
    total: int = 0
    items: list[dict] = field(default_factory=list)
    error: str | None = None
    finished: float | None = None
    delete_when_finished: bool = False

    def to_dict(self) -> dict:
        items = []
        for index, item in enumerate(self.items):
            entry = {k: v for k, v in item.items() if k not in ("file", "compare_file")}
            if item.get("file"):
                entry["result"] = f"/v1/jobs/{self.id}/results/{index}"
            if item.get("compare_file"):
                entry["compare"] = f"/v1/jobs/{self.id}/compare/{index}"
            items.append(entry)
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "created": self.created,
            "finished": self.finished,
            "progress": {"done": self.done, "total": self.total},
            "items": items,
            "error": self.error,
        }

    def finish(self, status: str, error: str | None = None) -> None:
        """End the job; items it never reached share its status (and error)."""
        self.status, self.error, self.finished = status, error, time.time()
        for item in self.items:
            if item["status"] == "queued":
                item.update(status=status, **({"error": error} if error else {}))


class JobStore:
    """The jobs of this server run, and their folders."""

    def __init__(self, root: Path | None, keep: int, ttl_s: float) -> None:
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="faceprior-serve-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep, self.ttl_s = keep, ttl_s
        self._jobs: dict[str, Job] = {}
        self._remove_leftovers()

    def create(self, kind: str, uploads: list[tuple[str, bytes]]) -> Job:
        """Store the uploads under generated names; ``uploads`` is ``(label, bytes)``."""
        self.prune()
        job_id = secrets.token_hex(10)
        folder = self.root / job_id
        folder.mkdir()
        (folder / MARKER).touch()
        for index, (_, data) in enumerate(uploads):
            (folder / f"input-{index:04d}").write_bytes(data)
        names = [label for label, _ in uploads]
        job = Job(job_id, kind, folder, names, total=len(uploads))
        job.items = [{"input": label, "status": "queued"} for label in names]
        self._jobs[job_id] = job
        return job

    def input_path(self, job: Job, index: int) -> str:
        return str(job.folder / f"input-{index:04d}")

    def remove_inputs(self, job: Job) -> None:
        """Delete a finished job's uploads; its results stay until the job is deleted."""
        for index in range(len(job.names)):
            Path(self.input_path(job, index)).unlink(missing_ok=True)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id) if JOB_ID.match(job_id) else None

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda job: job.created)

    def result_path(self, job: Job, index: int, kind: str = "file") -> Path | None:
        """Where item ``index``'s result (``kind="compare_file"``: its compare PNG) is."""
        if not 0 <= index < len(job.items):
            return None
        name = job.items[index].get(kind)
        return job.folder / name if name else None

    def delete(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        _remove_job_folder(job.folder)

    def prune(self) -> None:
        """Delete finished jobs past the retention limit (oldest first)."""
        now = time.time()
        finished = [job for job in self.all() if job.status in FINISHED]
        expired = [job for job in finished if now - (job.finished or now) > self.ttl_s]
        surplus = [job for job in finished if job not in expired]
        surplus = surplus[: max(0, len(surplus) - self.keep)]
        for job in expired + surplus:
            self.delete(job)

    def close(self) -> None:
        for job in list(self._jobs.values()):
            self.delete(job)
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        for folder in self.root.iterdir():
            if JOB_ID.match(folder.name) and (folder / MARKER).is_file():
                _remove_job_folder(folder)


def _remove_job_folder(folder: Path) -> None:
    if (folder / MARKER).is_file():
        shutil.rmtree(folder, ignore_errors=True)
