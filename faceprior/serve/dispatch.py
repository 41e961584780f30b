"""The web server's side of the worker process: a bounded queue and one task in flight.

Requests wait in :class:`WorkerClient`'s queue (at most ``queue_size`` tasks, else
:class:`QueueFull` and a 503 with Retry-After); a dispatcher coroutine hands the worker one
task at a time and waits for its answer in a thread, so the event loop keeps serving health
checks, polls and new uploads while a photo is being restored. A worker that dies (killed for
memory, say) fails the task it was running and is started again.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .settings import ServeSettings
from .worker import Task, TaskCancelled, TaskError, worker_main

POLL_S = 0.25


class QueueFull(Exception):
    """Too many tasks waiting; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy: {retry_after} s until a place in the queue")
        self.retry_after = retry_after


class WorkerUnavailable(Exception):
    """The worker process could not start (its message says why)."""


@dataclass
class _Pending:
    task: Task
    future: asyncio.Future
    on_message: Callable[[tuple], None] | None


class WorkerClient:
    """Starts the worker process and feeds it tasks in order."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.catalogue: dict = {"default": None, "models": [], "parsers": []}
        self.counts = {"completed": 0, "failed": 0, "rejected": 0, "cancelled": 0, "restarts": 0}
        self._pending: deque[_Pending] = deque()
        self._running: _Pending | None = None
        self._next_id = 0
        self._average_s = 2.0
        self._wakeup = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self._process = None

    @property
    def ready(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def worker_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def busy(self) -> bool:
        return self._running is not None

    async def start(self) -> None:
        """Spawn the worker and wait until it has loaded the default model (once: a running
        worker is kept)."""
        if self.ready:
            return
        context = multiprocessing.get_context("spawn")
        self._inbox, self._outbox = context.Queue(), context.Queue()
        self._cancel = context.Value("q", -1)
        self._process = context.Process(
            target=worker_main,
            args=(self.settings, self._inbox, self._outbox, self._cancel),
            name="faceprior-serve-worker",
            daemon=True,
        )
        self._process.start()
        deadline = time.monotonic() + self.settings.worker_start_timeout_s
        while True:
            message = await asyncio.to_thread(self._receive)
            if message is not None:
                break
            if not self._process.is_alive() or time.monotonic() > deadline:
                self._terminate()
                raise WorkerUnavailable("the worker process stopped before it was ready")
        if message[0] != "ready":
            self._terminate()
            raise WorkerUnavailable(f"the worker could not load its models: {message[1]}")
        self.catalogue = message[1]
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch())

    async def stop(self) -> None:
        """Give up on waiting and running tasks, then stop the worker (killed after 10 s)."""
        waiting = [*self._pending, *([self._running] if self._running else [])]
        self._pending.clear()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            try:
                await self._dispatcher
            except asyncio.CancelledError:
                pass
            self._dispatcher = None
        for item in waiting:
            if not item.future.done():
                item.future.set_exception(TaskCancelled())
        if self._process is not None and self._process.is_alive():
            self._inbox.put(None)
            await asyncio.to_thread(self._process.join, 10)
        self._terminate()

    def submit(
        self, build: Callable[[int], Task], on_message: Callable[[tuple], None] | None = None
    ) -> tuple[int, asyncio.Future]:
        """Queue a task (``build(id)`` makes it); :class:`QueueFull` when the queue is full."""
        if len(self._pending) >= self.settings.queue_size:
            self.counts["rejected"] += 1
            raise QueueFull(self.retry_after())
        self._next_id += 1
        task = build(self._next_id)
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(task, future, on_message))
        self._wakeup.set()
        return task.id, future

    def cancel(self, task_id: int) -> bool:
        """Cancel a queued task now, or ask the worker to stop a running one; False if unknown."""
        for item in self._pending:
            if item.task.id == task_id:
                self._pending.remove(item)
                self.counts["cancelled"] += 1
                if not item.future.done():
                    item.future.set_exception(TaskCancelled())
                return True
        if self._running is not None and self._running.task.id == task_id:
            self._cancel.value = task_id
            return True
        return False

    def retry_after(self) -> int:
        """Seconds until the queue has room, from the average task time so far."""
        return max(1, min(300, math.ceil(self._average_s * (len(self._pending) + 1))))

    async def _dispatch(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            item = self._pending.popleft()
            if item.future.done():  # the client went away while it waited
                continue
            self._running = item
            started = time.monotonic()
            try:
                await self._run(item)
            except WorkerUnavailable as error:  # a restart failed; the next task tries again
                if not item.future.done():
                    item.future.set_exception(TaskError(503, str(error)))
            finally:
                self._running = None
            elapsed = time.monotonic() - started
            self._average_s = 0.8 * self._average_s + 0.2 * elapsed

    async def _run(self, item: _Pending) -> None:
        task_id = item.task.id
        if not self._process.is_alive():  # died while idle: start a fresh one for this task
            self.counts["restarts"] += 1
            self._terminate()
            await self.start()
        self._inbox.put(item.task)
        while True:
            message = await asyncio.to_thread(self._receive)
            if message is None:
                if item.future.cancelled():
                    self._cancel.value = task_id
                if not self._process.is_alive():
                    await self._replace_dead_worker(item)
                    return
                continue
            kind = message[0]
            if len(message) < 2 or message[1] != task_id:
                continue  # an answer to a task that was given up on
            if kind in ("progress", "item"):
                if item.on_message is not None:
                    item.on_message(message)
                continue
            self._finish(item, message)
            return

    def _finish(self, item: _Pending, message: tuple) -> None:
        kind = message[0]
        if kind == "result":
            self.counts["completed"] += 1
            outcome = message[2]
        elif kind == "cancelled":
            self.counts["cancelled"] += 1
            outcome = TaskCancelled()
        else:
            self.counts["failed"] += 1
            outcome = TaskError(message[2], message[3])
        if item.future.done():
            return
        if isinstance(outcome, Exception):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)

    async def _replace_dead_worker(self, item: _Pending) -> None:
        code = self._process.exitcode
        self.counts["failed"] += 1
        self.counts["restarts"] += 1
        if not item.future.done():
            item.future.set_exception(
                TaskError(
                    500,
                    f"the worker process stopped (exit code {code}) during this task, perhaps "
                    f"out of memory; it has been restarted",
                )
            )
        self._terminate()
        await self.start()

    def _receive(self):
        try:
            return self._outbox.get(timeout=POLL_S)
        except queue.Empty:
            return None

    def _terminate(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


def resident_bytes(pid: int | None = None) -> int | None:
    """Resident memory of a process (this one by default) on Linux, else None."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None
