"""faceprior.folders' public machinery: run_jobs with any per-file work, FolderRun, own files.

restore_folder's own behaviour (bad inputs, interruption, locks) is tested through the command
line in test_bad_inputs_cli.py; here, the seam the GPEN task commands and Ray runs use.
"""

from __future__ import annotations

import fcntl
import json

import numpy as np
import pytest
from PIL import Image

from faceprior.distributed import Shard
from faceprior.folders import (
    LOCK_NAME,
    FolderRun,
    Job,
    JobOptions,
    is_own_file,
    plan_jobs,
    process_image,
    restore_folder,
    run_jobs,
)
from faceprior.pipeline import Result


def _png(path, seed=0, size=16):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


class _Inverting:
    """A restorer whose result is the negative of the photo, with no faces."""

    model_name = "inverting"
    small_model = None

    def restore(self, image):
        return Result(255 - image.pixels, [], image.metadata, {}, image.pixels.shape[1::-1])


@pytest.fixture()
def photos(tmp_path):
    for index in range(3):
        _png(tmp_path / "photos" / f"p{index}.png", seed=index)
    return tmp_path / "photos"


def test_run_jobs_runs_any_work_and_records_its_failures(photos, tmp_path):
    out = tmp_path / "out"
    plan = plan_jobs([photos], out, suffix="_x")
    lines = []

    def work(job: Job) -> dict:
        if job.source.name == "p1.png":
            raise ValueError(f"{job.source}: cannot be worked on")
        job.target.parent.mkdir(parents=True, exist_ok=True)
        job.target.write_bytes(job.source.read_bytes())
        return {"faces": [{"error": "too small"}], "notes": ["a note"]}

    report = run_jobs(
        plan, out, work, report=out / "r.json", header={"task": "copy"}, progress=False,
        log=lines.append, done_status="done",
    )  # fmt: skip
    assert [entry["status"] for entry in report.entries] == ["done", "failed", "done"]
    assert report.entries[1]["output"] is None and "cannot be worked on" in lines[2]
    assert lines.count(f"note: {photos / 'p0.png'}: a note") == 1
    assert f"{photos / 'p0.png'}: face 0 not restored: too small" in lines
    document = json.loads((out / "r.json").read_text())
    assert document["task"] == "copy"
    assert document["summary"]["done"] == 2 and document["summary"]["failed"] == 1
    assert "restored" not in document["summary"]
    assert (out / "p2_x.png").read_bytes() == (photos / "p2.png").read_bytes()
    assert not (out / LOCK_NAME).exists() and not (out / "r.jsonl").exists()
    # Resumed with skip_existing: the earlier entry of a done file comes with it.
    again = run_jobs(
        plan, out, work, report=out / "r.json", header={}, progress=False, skip_existing=True,
        log=lines.append, done_status="done",
    )  # fmt: skip
    assert again.entries[0]["status"] == "skipped" and again.entries[0]["previous"]["faces"]


def test_folder_run_writes_the_report_when_interrupted_and_releases_the_lock(photos, tmp_path):
    out = tmp_path / "out"
    plan = plan_jobs([photos], out)
    with pytest.raises(KeyboardInterrupt), FolderRun(plan, out, out / "r.json", {}) as run:
        assert (out / LOCK_NAME).exists()
        run.record({"input": str(plan.jobs[0].source), "output": None, "status": "failed"})
        assert len((out / "r.jsonl").read_text().splitlines()) == 1  # journaled at once
        raise KeyboardInterrupt
    document = json.loads((out / "r.json").read_text())
    assert document["summary"]["interrupted"] is True and document["summary"]["failed"] == 1
    assert not (out / LOCK_NAME).exists()
    with FolderRun(plan, out, out / "r.json", {}) as run:  # the lock was released
        assert list(run.earlier) == [str(plan.jobs[0].source)]


def test_process_image_writes_the_result_and_never_a_comparison_over_an_input(photos, tmp_path):
    job = Job(photos / "p0.png", tmp_path / "out" / "p0_r.png")
    options = JobOptions(output=tmp_path / "out", compare=True)
    fields = process_image(job, _Inverting().restore, options)
    assert fields["output_size"] == [16, 16] and set(fields["timings"]) >= {"read", "write"}
    written = np.asarray(Image.open(job.target))
    assert np.array_equal(written, 255 - np.asarray(Image.open(job.source)))
    assert (tmp_path / "out" / "p0_r_compare.png").exists()
    # Beside the inputs, where an input has the comparison's name: that input is kept.
    clash = _png(photos / "p0_r_compare.png", seed=9)
    before = clash.read_bytes()
    options = JobOptions(output=photos, protected=frozenset({clash.resolve()}), compare=True)
    process_image(Job(photos / "p0.png", photos / "p0_r.png"), _Inverting().restore, options)
    assert clash.read_bytes() == before and (photos / "p0_r.png").exists()


def test_lock_files_of_other_shards_are_not_ignored_inputs(photos):
    """torchrun ranks writing beside their inputs see each other's lock files: those are
    faceprior's own, not hidden inputs to list in the report."""
    _png(photos / ".hidden.png")
    with open(photos / ".faceprior.rank1-of-2.lock", "a") as other_rank:
        fcntl.flock(other_rank, fcntl.LOCK_EX | fcntl.LOCK_NB)
        report = restore_folder(
            photos, photos, _Inverting(), suffix="_r", shard=Shard(0, 2), progress=False
        )
    assert [item["input"] for item in report.ignored] == [str(photos / ".hidden.png")]
    assert [entry["status"] for entry in report.entries] == ["restored", "restored"]
    document = json.loads((photos / "faceprior-report.rank0-of-2.json").read_text())
    assert document["summary"]["ignored"] == 1


def test_own_files_are_told_from_hidden_inputs():
    assert is_own_file(".faceprior.lock") and is_own_file(".faceprior.rank3-of-8.lock")
    assert is_own_file(".photo.png.1234.0badc0de.faceprior-tmp")
    assert not is_own_file(".faceprior.png") and not is_own_file(".hidden.png")
    assert not is_own_file(".faceprior-notes.lock.png")
