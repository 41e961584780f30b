"""torchrun shards: `torchrun --nproc_per_node=N -m faceprior restore ...` splits the inputs.

torchrun itself is not needed: it only starts N processes with RANK, WORLD_SIZE and
LOCAL_RANK set, which the tests set themselves.
"""

from __future__ import annotations

import fcntl
import json
import shutil

import pytest
from conftest import shared_path

from faceprior.cli import main
from faceprior.distributed import Shard, shard_from_environment
from faceprior.errors import ArgumentError

DETECTOR_WEIGHTS = "data/weights/retinaface_mobilenet0.25_Final.pth"


@pytest.mark.parametrize("count", [0, 1, 2, 7, 8])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_shards_are_disjoint_and_cover_the_inputs(count, world_size):
    items = [f"photo{i}.jpg" for i in range(count)]
    shards = [Shard(rank, world_size).select(items) for rank in range(world_size)]
    together = [item for shard in shards for item in shard]
    assert sorted(together) == sorted(items)  # each input once: no padding, no duplicates
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    for shard in shards:
        assert shard == sorted(shard, key=items.index)  # each process keeps the input order


def test_shard_from_the_environment():
    assert shard_from_environment({}) == Shard(0, 1, 0)
    assert shard_from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == Shard(
        3, 4, 1
    )
    assert shard_from_environment({"RANK": "1", "WORLD_SIZE": "2"}).local_rank == 1
    for bad in ({"RANK": "2", "WORLD_SIZE": "2"}, {"RANK": "x", "WORLD_SIZE": "2"}):
        with pytest.raises(ArgumentError, match="RANK"):
            shard_from_environment(bad)


def test_two_processes_restore_disjoint_shards(tmp_path, monkeypatch, one_thread):
    inputs = tmp_path / "in"
    inputs.mkdir()
    whole = "data/faces/whole"
    for relative, name in (
        ("CodeFormer_whole_imgs/01.jpg", "a.jpg"),
        ("DFDNet_TestWhole/test6.png", "b.png"),
        ("DFDNet_TestWhole/test3.jpg", "c.jpg"),
    ):
        shutil.copy(shared_path(f"{whole}/{relative}"), inputs / name)
    listed = tmp_path / "photos.txt"  # an archive's list of paths, one per line
    listed.write_text("".join(f"{inputs / name}\n\n" for name in ("a.jpg", "b.png", "c.jpg")))
    out = tmp_path / "out"
    arguments = ["restore", f"@{listed}", "-o", str(out), "--model", "gpen-offline-128"]
    arguments += ["--detector-weights", str(shared_path(DETECTOR_WEIGHTS)), "--quiet"]
    out.mkdir()
    # Process 0 is still running (it holds its lock) while process 1 works: no conflict.
    with open(out / ".faceprior.rank0-of-2.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "1")
        assert main(arguments) == 0
    monkeypatch.setenv("RANK", "0")
    assert main(arguments) == 0

    shards = [
        json.loads((out / f"faceprior-report.rank{rank}-of-2.json").read_text())["images"]
        for rank in (0, 1)
    ]
    names = [{entry["input"].rsplit("/", 1)[-1] for entry in shard} for shard in shards]
    assert names[0].isdisjoint(names[1])
    assert names[0] | names[1] == {"a.jpg", "b.png", "c.jpg"}
    assert all(entry["status"] == "restored" for shard in shards for entry in shard)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "a.jpg", "b.png", "c.jpg",
        "faceprior-report.rank0-of-2.json", "faceprior-report.rank1-of-2.json",
    ]  # fmt: skip


def test_ray_and_torchrun_are_not_combined(tmp_path, monkeypatch, capsys):
    photo = tmp_path / "a.jpg"
    shutil.copy(shared_path("data/faces/whole/CodeFormer_whole_imgs/01.jpg"), photo)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["restore", str(photo), "-o", str(tmp_path / "out"), "--ray"]) == 2
    assert "torchrun" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
