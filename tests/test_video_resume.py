"""An interrupted video run continues where it stopped, and ends as an uninterrupted run."""

from __future__ import annotations

import numpy as np
import pytest
from test_video import (
    ScriptedFaces,
    _face,
    _fast_restorer,
    _noisy_static_shot,
    _read_clip,
    _write_clip,
)

from faceprior.errors import ArgumentError
from faceprior.video import restore_video

pytestmark = pytest.mark.usefixtures("one_thread")


class StopAt(ScriptedFaces):
    """The detector of a run that is interrupted (Ctrl-C) at its ``stop``-th call."""

    def __init__(self, script, stop: int | None = None):
        super().__init__(script)
        self.stop = stop

    def detect(self, image):
        if self.calls == self.stop:
            raise KeyboardInterrupt
        return super().detect(image)


def _script(count: int) -> list:
    """One face whose detection jitters by a pixel or two (so smoothing has memory)."""
    rng = np.random.default_rng(3)
    return [[_face(44 + rng.normal(0, 1.5), 14 + rng.normal(0, 1.5), 62)] for _ in range(count)]


@pytest.fixture
def still(tmp_path):
    frames = _noisy_static_shot(12)
    source = tmp_path / "still.mp4"
    _write_clip(source, frames)
    return source


def test_interrupted_run_resumes_and_equals_an_uninterrupted_one(tmp_path, still):
    # lossless: the decoded frames are the restored frames (x264's threads vary its lossy
    # choices from run to run, interrupted or not)
    options = {"segment_frames": 4, "crf": 0}
    whole = restore_video(
        _fast_restorer(StopAt(_script(12))), still, tmp_path / "whole.mp4", **options
    )
    target = tmp_path / "out" / "still.mp4"
    with pytest.raises(KeyboardInterrupt):  # in frame 7 (the second segment): segment 0 kept
        restore_video(_fast_restorer(StopAt(_script(12), stop=6)), still, target, **options)
    partial = target.parent / ".still.mp4.faceprior-partial"
    assert not target.exists() and (partial / "segment-00000.mp4").is_file()
    (partial / ".segment-00001.4999999.dead.tmp.mp4").write_bytes(b"a killed run's segment")
    (target.parent / ".still.4999999.dead.tmp.mp4").write_bytes(b"a killed run's output")
    detector = StopAt(_script(12)[4:])  # what the detector would say from frame 4 on
    resumed = restore_video(_fast_restorer(detector), still, target, **options)
    assert resumed.resumed_frames == 4 and detector.calls == 8 - resumed.reused_frames
    assert [p.name for p in target.parent.iterdir()] == ["still.mp4"]  # the folder is gone
    first, second = whole.to_dict(), resumed.to_dict()
    for key in ("frames", "reused_frames", "restored_faces", "bridged", "tracks", "size"):
        assert first[key] == second[key], key
    assert whole.frames == 12 and whole.tracks == 1
    expected, times, _, audio = _read_clip(tmp_path / "whole.mp4")
    frames, resumed_times, _, resumed_audio = _read_clip(target)
    assert len(frames) == 12 and times == resumed_times and audio == resumed_audio
    for index, (a, b) in enumerate(zip(expected, frames, strict=True)):
        assert np.array_equal(a, b), index


def test_a_run_with_other_settings_or_resume_off_starts_again(tmp_path, still):
    target = tmp_path / "out" / "still.mp4"
    for stop, options in ((6, {}), (None, {"temporal_strength": 0.5}), (6, {}), (None, {})):
        detector = StopAt(_script(12), stop=stop)
        restorer = _fast_restorer(detector)
        if stop is not None:
            with pytest.raises(KeyboardInterrupt):
                restore_video(restorer, still, target, segment_frames=4, **options)
            continue
        if options:  # settings changed: the earlier segments do not fit
            report = restore_video(restorer, still, target, segment_frames=4, **options)
        else:
            report = restore_video(restorer, still, target, segment_frames=4, resume=False)
        assert report.resumed_frames == 0 and report.frames == 12


def test_segment_frames_sets_where_the_encoder_restarts(tmp_path, still):
    keys = {}
    for segment_frames in (4, 250):
        target = tmp_path / f"{segment_frames}.mkv"
        restore_video(_fast_restorer(StopAt([[]])), still, target, segment_frames=segment_frames)
        import av

        with av.open(str(target)) as container:
            keys[segment_frames] = [
                packet.is_keyframe for packet in container.demux(video=0) if packet.size
            ]
    assert np.flatnonzero(keys[4]).tolist() == [0, 4, 8]
    assert np.flatnonzero(keys[250]).tolist() == [0]
    with pytest.raises(ArgumentError, match="segment_frames"):
        restore_video(_fast_restorer(StopAt([[]])), still, tmp_path / "x.mp4", segment_frames=0)


def test_a_folder_run_resumes_its_interrupted_video(tmp_path, still, monkeypatch):
    """What ``faceprior restore folder/ -o out/`` does when run again after Ctrl-C."""
    from functools import partial

    from faceprior import folders
    from faceprior.folders import restore_folder

    # segments of 4 frames instead of 250, so that this short clip has finished ones
    monkeypatch.setattr(folders, "video_restorer", lambda: partial(restore_video, segment_frames=4))
    out = tmp_path / "out"
    interrupted = _fast_restorer(StopAt(_script(12), stop=9))
    with pytest.raises(KeyboardInterrupt):
        restore_folder([still], out, interrupted, progress=False)
    assert not (out / "still.mp4").exists()
    report = restore_folder([still], out, _fast_restorer(StopAt(_script(12)[8:])), progress=False)
    (entry,) = report.entries
    assert entry["status"] == "restored" and entry["resumed_frames"] == 8, entry
    assert entry["frames"] == 12 and (out / "still.mp4").is_file()
    assert not list(out.glob(".*partial"))
