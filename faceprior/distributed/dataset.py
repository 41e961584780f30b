"""``restore_dataset``: a folder run on a Ray cluster (or a local Ray instance), resumable.

The driver plans the jobs exactly as :func:`faceprior.restore_folder` does (same inputs, same
output names, same checks), leaves out the outputs that exist, and streams the rest through a
Ray Data pipeline of three actor pools (:mod:`faceprior.distributed.stages`): reading,
detection and alignment on CPU actors, the restoration network on GPU actors (or CPU actors
without a GPU), paste-back and writing on CPU actors. Each actor loads its models once; Ray
moves the photos between them with back-pressure.

Exactly once, resumable:

- every output is written by the local run's own function: under a temporary name, flushed,
  then renamed into place, so any file under its final name is complete;
- a rerun skips the outputs that exist and merges the report of the earlier run;
- each finished file is appended to the report's journal (``<report>.jsonl``) as it arrives,
  so a driver that dies loses nothing already done;
- a worker that dies loses the photos of its block in flight: Ray retries them (an output the
  dead worker had already written is written again, atomically, with the same pixels); a photo
  that kills its worker ``max_attempts`` times is recorded as failed, and a photo that fails
  with an error (a damaged file) is recorded at once and never retried;
- at the end, the JSON report (the same as a local run's) and a manifest, one JSON line per
  input with its status, output, number of faces and error (``faceprior-manifest.jsonl``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import folders
from ..errors import ArgumentError, FacepriorError
from ..io.images import DEFAULT_MAX_PIXELS
from .stages import StageSettings, driver_options

MANIFEST_NAME = "faceprior-manifest.jsonl"
# Photos per Ray block: what a worker that dies can lose, and the unit of Ray's scheduling.
DEFAULT_DETECT_BATCH_SIZE = 4
DEFAULT_MAX_ATTEMPTS = 3
# CPUs each actor of the two CPU stages reserves: a prepare and a finish actor share one.
CPU_STAGE_CPUS = 0.5
# Blocks beyond this many cost the driver more bookkeeping than they save in lost work.
_MAX_BLOCKS = 100_000


def restore_dataset(
    inputs: Sequence[str | os.PathLike] | str | os.PathLike,
    output: str | os.PathLike,
    restorer_options: dict | None = None,
    *,
    aligned: bool = False,
    output_format: str = "same",
    suffix: str = "",
    quality: int = 95,
    recursive: bool = False,
    skip_existing: bool = True,
    save_faces: bool = False,
    report: str | os.PathLike | None = None,
    manifest: str | os.PathLike | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    settings: dict | None = None,
    compare: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    address: str | None = None,
    detect_actors: int | None = None,
    restore_actors: int | None = None,
    finish_actors: int | None = None,
    cpus_per_restore_actor: float = 1.0,
    detect_batch_size: int = DEFAULT_DETECT_BATCH_SIZE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    video_codec: str | None = None,
    video_crf: int | None = None,
):
    """Restore every image of ``inputs`` into ``output`` on Ray; a :class:`FolderReport`.

    The arguments up to ``log`` are those of :func:`faceprior.restore_folder`, except:
    ``restorer_options`` are :class:`faceprior.FaceRestorer`'s keyword arguments (each actor
    builds its own restorer; ``device``: ``auto`` uses GPUs when the cluster has some,
    ``cpu`` never does); ``skip_existing`` is on by default, which makes a rerun resume;
    ``manifest``: the JSON-lines manifest (default ``output/faceprior-manifest.jsonl``).

    Ray: ``address`` None joins the Ray instance this process already started, else does what
    ``ray.init()`` does (``RAY_ADDRESS``, else a new local instance, shut down at the end);
    ``"auto"`` joins the cluster this machine belongs to, ``"ray://host:10001"`` a remote one
    (paths must then name the same files on every node: shared storage).
    ``detect_actors``: CPU actors that read, detect and align (default 1 per GPU, at least 1);
    ``restore_actors``: actors that run the restoration network (default one per GPU, else one
    per CPU left); ``finish_actors``: CPU actors that paste back and write (default: as many as
    ``detect_actors``); each CPU-stage actor reserves half a CPU (``CPU_STAGE_CPUS``);
    ``cpus_per_restore_actor``: CPUs each restore actor reserves (its torch threads);
    ``detect_batch_size``: photos per Ray block (what a dying worker loses);
    ``max_attempts``: tries of a photo whose worker dies before it is recorded as failed.
    ``video_codec``/``video_crf``: as for :func:`faceprior.restore_folder`; each video is
    restored whole by one restore actor, and a video whose worker died resumes from its last
    finished segment (:mod:`faceprior.video.resume`).
    """
    ray = _import_ray()
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    for name, value in (
        ("detect_batch_size", detect_batch_size),
        ("max_attempts", max_attempts),
        ("detect_actors", 1 if detect_actors is None else detect_actors),
        ("restore_actors", 1 if restore_actors is None else restore_actors),
        ("finish_actors", 1 if finish_actors is None else finish_actors),
        ("max_pixels", max_pixels),  # as restore_folder checks it and quality
    ):
        _check_positive(name, value)
    if not cpus_per_restore_actor > 0:
        raise ArgumentError("cpus_per_restore_actor", f"must be > 0, got {cpus_per_restore_actor}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ArgumentError("quality", f"must be an integer from 1 to 100, got {quality!r}")
    output = Path(output)
    plan = folders.plan_jobs(inputs, output, recursive, suffix, output_format, report)
    report_path = Path(report) if report is not None else output / folders.REPORT_NAME
    manifest_path = Path(manifest) if manifest is not None else output / MANIFEST_NAME
    faces_folder = [output / folders.FACES_FOLDER] if save_faces else []
    folders.check_output_folders(output, report_path, manifest_path.parent, *faces_folder)
    options = dict(restorer_options or {})
    restorer = _driver_restorer(options, aligned)
    write = log or _write_above_the_bar
    started_ray = _connect(ray, address, progress)
    header = folders.report_header(restorer, settings)
    try:
        with folders.FolderRun(plan, output, report_path, header) as folder_run:
            run = _Run(plan, folder_run, write)
            try:
                pending = run.skip_existing() if skip_existing else list(plan.jobs)
                if pending:
                    stages = _StagePlan.choose(
                        ray, options, detect_actors, restore_actors, cpus_per_restore_actor,
                        finish_actors,
                    )  # fmt: skip
                    files = folders.JobOptions(
                        output=output,
                        protected=_inputs_to_protect(plan, save_faces or compare),
                        aligned=aligned,
                        quality=quality,
                        max_pixels=max_pixels,
                        save_faces=save_faces,
                        compare=compare,
                        video_codec=video_codec,
                        video_crf=video_crf,
                    )
                    settings_of_stages = StageSettings(options, files, max_attempts)
                    dataset = _pipeline(ray, pending, settings_of_stages, stages, detect_batch_size)
                    run.collect(dataset, progress)
            finally:
                folder_run.report.entries[:] = run.ordered_entries()  # in the plan's order
                write_manifest(manifest_path, folder_run.report.entries, plan.ignored)
    finally:
        if started_ray:
            ray.shutdown()
    return folder_run.report


def _driver_restorer(options: dict, aligned: bool):
    """A restorer on the driver's CPU, built from the actors' options to check them.

    A wrong option or a missing model then stops the run here, with faceprior's message,
    rather than as actors failing to start deep in Ray's logs; the report takes the model
    names from it.
    """
    import inspect

    from ..pipeline import FaceRestorer

    try:
        inspect.signature(FaceRestorer).bind(**options)
    except TypeError as error:
        raise ArgumentError("restorer_options", f"are not FaceRestorer's: {error}") from None
    restorer = FaceRestorer(**driver_options(options))
    if not aligned:
        restorer.detector  # noqa: B018 - a bad detector must stop the run here too
    return restorer


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise FacepriorError("Ray runs need Ray Data: pip install 'faceprior[ray]'") from None
    return ray


def _write_above_the_bar(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(name, f"must be a positive integer, got {value!r}")


def _connect(ray, address: str | None, progress: bool) -> bool:
    """Join or start Ray; True when this call started it (and must shut it down)."""
    import logging

    if not progress:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    if address is None and ray.is_initialized():
        return False
    ray.init(address=address, log_to_driver=True, configure_logging=progress)
    return address is None or address == "local"


class _StagePlan:
    """How many actors of each stage, and what each reserves."""

    def __init__(
        self, detect: int, restore: int, gpus: float, cpus: float, device: str, finish: int
    ) -> None:
        self.detect_actors, self.restore_actors, self.finish_actors = detect, restore, finish
        self.restore_gpus, self.restore_cpus, self.device = gpus, cpus, device

    @classmethod
    def choose(
        cls, ray, options: dict, detect, restore, cpus_per_restore: float, finish=None
    ) -> _StagePlan:
        """Without a GPU, one prepare and one finish actor (half a CPU each) and restore
        actors on the CPUs left; with GPUs, one restore actor per GPU and a prepare and a
        finish actor per GPU, as far as the CPUs go."""
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        wants = str(options.get("device", "auto"))
        if wants.startswith("cuda") and not gpus:
            raise ArgumentError("device", f"is {wants!r}, but the Ray cluster has no GPU")
        if gpus and not wants.startswith("cpu"):
            restore = restore or gpus
            detect = detect or max(1, min(gpus, int(cpus - restore * cpus_per_restore)))
            return cls(detect, restore, 1, cpus_per_restore, "cuda", finish or detect)
        detect = detect or 1
        finish = finish or detect
        left = cpus - (detect + finish) * CPU_STAGE_CPUS
        restore = restore or max(1, int(left // cpus_per_restore))
        return cls(detect, restore, 0, cpus_per_restore, "cpu", finish)


def _inputs_to_protect(plan, writes_extra_files: bool) -> frozenset:
    """The resolved inputs, which face crops and comparisons must never overwrite (sent to
    every actor, so only when such files are written)."""
    return folders.protected_inputs(plan) if writes_extra_files else frozenset()


def _pipeline(ray, jobs, settings, stages: _StagePlan, detect_batch_size: int):
    """The Ray Data pipeline: rows of paths, prepared photos, restored faces, report entries."""
    from .stages import AttemptCounter, FinishPhotos, PreparePhotos, RestoreFaces

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # faceprior's own bar counts photos and faces
    # Restarted if its node is lost: the counts start again, the job goes on.
    counter = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(AttemptCounter)
    counter = counter.remote()
    rows = [
        {"source": os.fsencode(job.source), "target": os.fsencode(job.target), "kind": job.kind}
        for job in jobs
    ]
    blocks = min(_MAX_BLOCKS, -(-len(rows) // detect_batch_size))
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    dataset = dataset.map_batches(
        PreparePhotos,
        fn_constructor_args=(settings, counter),
        compute=ray.data.ActorPoolStrategy(size=stages.detect_actors),
        batch_size=detect_batch_size,
        num_cpus=CPU_STAGE_CPUS,
    )
    dataset = dataset.map_batches(
        RestoreFaces,
        fn_constructor_args=(settings, counter, stages.device),
        compute=ray.data.ActorPoolStrategy(size=stages.restore_actors),
        batch_size=1,
        num_cpus=stages.restore_cpus,
        num_gpus=stages.restore_gpus,
    )
    return dataset.map_batches(
        FinishPhotos,
        fn_constructor_args=(settings, counter),
        compute=ray.data.ActorPoolStrategy(size=stages.finish_actors),
        batch_size=1,
        num_cpus=CPU_STAGE_CPUS,
    )


class _Run:
    """The driver's bookkeeping: one entry per job, whatever the cluster retried."""

    def __init__(self, plan, folder_run, write: Callable[[str], None]) -> None:
        self.plan, self.folder_run, self.write = plan, folder_run, write
        self.jobs = {os.fsencode(job.source): job for job in plan.jobs}
        self.entries: dict[bytes, dict] = {}

    def record(self, key: bytes, entry: dict) -> None:
        if key in self.entries:
            return  # a row the cluster delivered twice is recorded once
        self.entries[key] = entry
        self.folder_run.record(entry)

    def skip_existing(self) -> list:
        """Record the jobs whose output exists; return the others."""
        pending = []
        for key, job in self.jobs.items():
            if job.target.exists():
                self.record(key, self.folder_run.skipped(job))
            else:
                pending.append(job)
        return pending

    def collect(self, dataset, progress: bool) -> None:
        """Record the pipeline's rows as they stream in."""
        from tqdm import tqdm

        faces = 0
        total = len(self.jobs)
        with tqdm(
            total=total, initial=len(self.entries), desc="restoring", unit="file",
            disable=not progress, file=sys.stderr,
        ) as bar:  # fmt: skip
            for row in dataset.iter_rows():
                key = bytes(row["source"])
                fields = json.loads(row["entry"])
                for line in json.loads(row["logs"]):
                    self.write(line)
                entry = folders.job_entry(self.jobs[key])
                entry.update(fields)
                self.record(key, entry)
                faces += len(fields.get("faces", []))
                bar.set_postfix(faces=faces, refresh=False)
                bar.update(1)

    def ordered_entries(self) -> list[dict]:
        """Entries in the plan's order, as a local run lists them."""
        return [self.entries[key] for key in self.jobs if key in self.entries]


def write_manifest(path: Path, entries: list[dict], ignored: list[dict]) -> None:
    """One JSON line per input: status, output, faces, error (and why a file was left out).

    A skipped input counts the faces its earlier run restored, so the manifest of a resumed
    job describes the whole job.
    """
    from ..io.images import atomic_write_bytes

    lines = []
    for entry in entries:
        done = entry.get("previous", entry)
        line = {
            "input": entry["input"],
            "output": entry.get("output"),
            "status": entry["status"],
            "faces": len(done.get("faces", [])),
        }
        for key in ("error", "reason", "input_base64", "output_base64"):
            if entry.get(key):
                line[key] = entry[key]
        lines.append(json.dumps(line))
    for item in ignored:
        lines.append(json.dumps({**item, "output": None, "status": "ignored", "faces": 0}))
    atomic_write_bytes(path, "".join(line + "\n" for line in lines).encode())
