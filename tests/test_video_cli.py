"""`faceprior restore` with videos: alone, in folders with photos, bad ones reported."""

from __future__ import annotations

import json

import av
import pytest
from test_video import _pattern, _read_clip, _write_clip

from faceprior.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def _restore(*args: str) -> int:
    return main(["restore", *args, "--quiet", "--device", "cpu", "--model", "gpen-offline-128"])


def test_folder_of_photos_and_videos_with_a_broken_video(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _write_clip(folder / "clip.mp4", [_pattern(i) for i in range(6)])
    (folder / "broken.mkv").write_bytes(b"\x1a\x45\xdf\xa3 not really matroska")
    import cv2

    cv2.imwrite(str(folder / "photo.png"), _pattern(0))
    out = tmp_path / "out"
    assert _restore(str(folder), "-o", str(out), "--crf", "30") == 1  # one file failed
    report = json.loads((out / "faceprior-report.json").read_text())
    status = {entry["input"].rsplit("/", 1)[-1]: entry["status"] for entry in report["images"]}
    assert status == {"broken.mkv": "failed", "clip.mp4": "restored", "photo.png": "restored"}
    assert sorted(p.name for p in out.iterdir()) == [
        "clip.mp4",
        "faceprior-report.json",
        "photo.png",
    ]
    frames, _, facts, audio = _read_clip(out / "clip.mp4")
    assert len(frames) == 6 and facts["size"] == (64, 48) and audio
    entry = next(e for e in report["images"] if e["input"].endswith("clip.mp4"))
    assert entry["frames"] == 6 and entry["codec"] == "libx264"
    # --skip-existing leaves the finished video alone
    before = (out / "clip.mp4").stat().st_mtime_ns
    assert _restore(str(folder / "clip.mp4"), "-o", str(out), "--skip-existing") == 0
    assert (out / "clip.mp4").stat().st_mtime_ns == before


def test_codec_option_and_unknown_codec(tmp_path, capsys):
    clip = tmp_path / "clip.mkv"
    _write_clip(clip, [_pattern(i) for i in range(4)], audio=False)
    assert _restore(str(clip), "-o", str(tmp_path / "out"), "--codec", "mpeg4") == 0
    with av.open(str(tmp_path / "out" / "clip.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
    assert _restore(str(clip), "-o", str(tmp_path / "bad"), "--codec", "nonesuch") == 2
    assert "unknown video encoder 'nonesuch'" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "clip.mkv").exists()
