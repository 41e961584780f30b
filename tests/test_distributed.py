"""Ray runs (faceprior.distributed.restore_dataset) on a local 2-CPU Ray instance.

One Ray instance serves the module. Its workers get a setup hook (Ray's own
``worker_process_setup_hook``) that logs every file they write and the process that runs each
of the restorer's three stages and, when a test asks for it
through a file in the events folder, kills the worker: right after it wrote a given output, or
each time it reads a given input. The driver (this process) is never affected.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from faceprior.cli import main
from faceprior.distributed import MANIFEST_NAME, restore_dataset
from faceprior.io.images import TEMPORARY_SUFFIX, read_image

ray = pytest.importorskip("ray", reason="Ray runs need the faceprior[ray] extra")

DETECTOR_WEIGHTS = "data/weights/retinaface_mobilenet0.25_Final.pth"
GOOD = ("group.jpg", "one.jpg", "six.png", "wide16.png")
BAD = ("noise.png", "truncated.jpg")
RAY_OPTIONS = ("ray", "detect_actors", "restore_actors", "restore_actor_cpus", "ray_batch_size")


def _options() -> dict:
    return {
        "model": "gpen-offline-128",
        "detector_weights": str(shared_path(DETECTOR_WEIGHTS)),
        "device": "cpu",
    }


def _worker_hook(events: str):
    """Runs in every Ray worker as it starts: log writes, and die where a test asks."""

    def install() -> None:
        import faceprior.io.images as images
        from faceprior.pipeline import FaceRestorer

        folder = Path(events)

        def logged_stage(name: str):
            method = getattr(FaceRestorer, name)

            def run(*args, **kwargs):
                with open(folder / "stages.log", "a") as log:
                    log.write(f"{name} {os.getpid()}\n")
                return method(*args, **kwargs)

            return run

        for name in ("prepare", "restore_crops", "finish"):
            setattr(FaceRestorer, name, logged_stage(name))
        write, read = images.atomic_write_bytes, images.read_image

        def logged_write(path, data):
            write(path, data)
            with open(folder / "writes.log", "a") as log:
                log.write(f"{path}\n")
            plan = folder / "die-after-writing"
            if plan.exists() and Path(path).name == plan.read_text():
                if not (folder / "died").exists():
                    (folder / "died").write_text(str(os.stat(path).st_ino))
                    os._exit(1)

        def poisoned_read(path, *args, **kwargs):
            plan = folder / "die-reading"
            if plan.exists() and Path(path).name == plan.read_text():
                os._exit(1)
            return read(path, *args, **kwargs)

        images.atomic_write_bytes = logged_write
        images.read_image = poisoned_read

    return install


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """A local Ray instance (2 CPUs) whose workers run :func:`_worker_hook`."""
    folder = tmp_path_factory.mktemp("worker-events")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"worker_process_setup_hook": _worker_hook(str(folder))},
    )
    yield folder
    ray.shutdown()


def _writes(events: Path, folder: Path) -> list[str]:
    log = events / "writes.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return sorted(Path(line).name for line in lines if Path(line).parent == folder)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Four real photos (one a 16-bit RGBA PNG) and two damaged files."""
    folder = tmp_path_factory.mktemp("inputs")
    whole = "data/faces/whole"
    shutil.copy(shared_path(f"{whole}/CodeFormer_whole_imgs/00.jpg"), folder / "group.jpg")
    shutil.copy(shared_path(f"{whole}/CodeFormer_whole_imgs/01.jpg"), folder / "one.jpg")
    shutil.copy(shared_path(f"{whole}/DFDNet_TestWhole/test6.png"), folder / "six.png")
    single = cv2.imread(str(shared_path(f"{whole}/facexlib/test.jpg")))
    single = cv2.resize(single, (167, 208), interpolation=cv2.INTER_AREA).astype(np.uint16) * 257
    alpha = np.full(single.shape[:2], 40000, np.uint16)
    cv2.imwrite(str(folder / "wide16.png"), np.dstack([single, alpha]))
    jpeg = (folder / "group.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "noise.png").write_bytes(np.random.default_rng(0).bytes(3000))
    return folder


@pytest.fixture(scope="module")
def runs(events, inputs, tmp_path_factory, one_thread):
    """A plain run and a Ray run of the same folder; what they wrote, read at once.

    The plain run uses one torch thread, as each restore actor does (Ray gives an actor as
    many threads as CPUs it reserves): the order of float sums depends on the thread count,
    and JPEG re-encoding turns such last-bit differences into a few levels on a few pixels.
    """
    root = tmp_path_factory.mktemp("runs")
    common = ["--model", "gpen-offline-128", "--device", "cpu", "--quiet", "--save-faces"]
    common += ["--detector-weights", str(shared_path(DETECTOR_WEIGHTS))]
    codes = {
        "plain": main(["restore", str(inputs), "-o", str(root / "plain"), *common]),
        "ray": main(
            ["restore", str(inputs), "-o", str(root / "ray"), "--ray", "--ray-batch-size", "3"]
            + common
        ),
    }
    files = {
        name: {kind: (root / kind / name).read_bytes() for kind in ("plain", "ray")}
        for name in GOOD
    }
    faces = {
        kind: {p.name: p.read_bytes() for p in (root / kind / "faces").iterdir()}
        for kind in ("plain", "ray")
    }
    reports = {
        kind: json.loads((root / kind / "faceprior-report.json").read_text())
        for kind in ("plain", "ray")
    }
    return {
        "root": root,
        "codes": codes,
        "faces": faces,
        "files": files,
        "reports": reports,
        "writes": _writes(events, root / "ray"),
        "manifest": (root / "ray" / MANIFEST_NAME).read_text(),
    }


def _comparable(report: dict, folder: Path) -> dict:
    """A report without timings, and with this run's folder left out of the paths."""
    text = json.dumps(report).replace(str(folder), "OUT")
    document = json.loads(text)
    for entry in document["images"]:
        entry.pop("timings", None)
    for option in RAY_OPTIONS:
        document["settings"].pop(option)  # recorded, and the only difference
    return document


def test_ray_run_matches_a_plain_run(runs):
    for name, files in runs["files"].items():
        assert files["ray"] == files["plain"], name  # the same bytes, hence the same pixels
    assert runs["faces"]["ray"] == runs["faces"]["plain"]  # --save-faces: crops, masks
    assert len(runs["faces"]["ray"]) == 3 * 10  # crop, restored face, mask of 10 faces
    wide = read_image(runs["root"] / "ray" / "wide16.png").pixels
    assert wide.dtype == np.uint16 and wide.shape == (208, 167, 4)
    assert (wide[..., 3] == 40000).all()
    plain = _comparable(runs["reports"]["plain"], runs["root"] / "plain")
    distributed = _comparable(runs["reports"]["ray"], runs["root"] / "ray")
    assert distributed == plain
    assert distributed["summary"]["restored"] == 4 and distributed["summary"]["failed"] == 2
    assert distributed["summary"]["faces"] == sum(
        len(e.get("faces", [])) for e in distributed["images"]
    )
    assert distributed["model"] == "gpen-offline-128"
    assert runs["codes"] == {"plain": 1, "ray": 1}  # 1: some files failed


def test_the_three_stages_run_in_separate_actors(runs, events):
    """Read, detect and align; the network; paste and write: each photo through three
    processes (one actor of each pool on this 2-CPU instance), none of them the driver."""
    processes: dict[str, list[int]] = {}
    for line in (events / "stages.log").read_text().splitlines():
        stage, pid = line.split()
        processes.setdefault(stage, []).append(int(pid))
    assert {stage: len(pids) for stage, pids in processes.items()} == {
        "prepare": len(GOOD), "restore_crops": len(GOOD), "finish": len(GOOD),
    }  # fmt: skip
    sets = [set(pids) for pids in processes.values()]
    assert sum(len(pids) for pids in sets) == len(set().union(*sets))  # pairwise disjoint
    assert os.getpid() not in set().union(*sets)


def test_each_output_written_once_and_every_input_in_the_manifest(runs):
    assert runs["writes"] == sorted(GOOD)
    folder = runs["root"] / "ray"
    assert not list(folder.glob(f"*{TEMPORARY_SUFFIX}"))
    lines = [json.loads(line) for line in runs["manifest"].splitlines()]
    by_name = {Path(line["input"]).name: line for line in lines}
    assert sorted(by_name) == sorted(GOOD + BAD) and len(lines) == len(GOOD + BAD)
    for name in GOOD:
        assert by_name[name]["status"] == "restored"
        assert by_name[name]["output"] == str(folder / name)
    assert by_name["group.jpg"]["faces"] == 4
    assert by_name["truncated.jpg"]["status"] == "failed"
    assert "truncated" in by_name["truncated.jpg"]["error"]
    assert "not a readable image" in by_name["noise.png"]["error"]


def test_rerun_of_an_interrupted_job_with_dying_workers(runs, events, inputs):
    """Resume what a killed driver left, while one worker dies after writing an output and
    one photo kills its worker every time it is read."""
    folder = runs["root"] / "ray"
    report = folder / "faceprior-report.json"
    finished = json.loads(report.read_text())["images"]
    # What a driver killed mid-run leaves: no report, the journal of the files done so far
    # (its last line torn), outputs not written yet, a temporary file of a dead process.
    report.unlink()
    kept = [e for e in finished if Path(e["input"]).name in ("one.jpg", "six.png")]
    journal = "".join(json.dumps(e) + "\n" for e in kept) + '{"input": "torn'
    report.with_suffix(".jsonl").write_text(journal)
    for name in ("group.jpg", "wide16.png"):
        (folder / name).unlink()
    stale = folder / f".group.jpg.999999999.0badf00d{TEMPORARY_SUFFIX}"
    stale.write_bytes(b"half an image")
    untouched = {name: os.stat(folder / name).st_ino for name in ("one.jpg", "six.png")}
    (events / "die-after-writing").write_text("group.jpg")  # once, the output written
    (events / "die-reading").write_text("wide16.png")  # every time

    try:
        rerun = restore_dataset(inputs, folder, _options(), progress=False, max_attempts=2)
    finally:
        (events / "die-after-writing").unlink()
        (events / "die-reading").unlink()

    assert (events / "died").exists()
    status = {Path(e["input"]).name: e for e in rerun.entries}
    assert {n: e["status"] for n, e in status.items()} == {
        "group.jpg": "restored", "wide16.png": "failed", "one.jpg": "skipped",
        "six.png": "skipped", "noise.png": "failed", "truncated.jpg": "failed",
    }  # fmt: skip
    assert "died 2 times" in status["wide16.png"]["error"]
    assert not (folder / "wide16.png").exists()
    # The rerun wrote only the missing output: twice, as its worker died before reporting it
    # (atomically, the same pixels); the outputs of the first run were left alone.
    assert _writes(events, folder) == sorted([*GOOD, "group.jpg", "group.jpg"])
    assert {name: os.stat(folder / name).st_ino for name in untouched} == untouched
    for name in ("group.jpg", "one.jpg", "six.png"):
        assert (folder / name).read_bytes() == runs["files"][name]["plain"]
    assert not stale.exists()
    one = next(e for e in finished if Path(e["input"]).name == "one.jpg")
    assert status["one.jpg"]["previous"]["faces"] == one["faces"]  # kept from the first run
    lines = [json.loads(line) for line in (folder / MANIFEST_NAME).read_text().splitlines()]
    manifest = {Path(line["input"]).name: line for line in lines}
    assert len(lines) == len(GOOD + BAD)
    first = {Path(e["input"]).name: len(e.get("faces", [])) for e in finished}
    # The resumed job's manifest describes the whole job: the skipped files' faces too.
    assert {n: line["faces"] for n, line in manifest.items() if n != "wide16.png"} == {
        n: count for n, count in first.items() if n != "wide16.png"
    }
    assert manifest["wide16.png"]["status"] == "failed"
