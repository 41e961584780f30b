"""Faces of several frames share the network's forward passes; the output does not change."""

from __future__ import annotations

import numpy as np
import pytest
from test_video import OTHER, PHOTO, ScriptedFaces, _face, _photo, _read_clip, _write_clip
from tiny_models import tiny_restorer

from faceprior.errors import ArgumentError
from faceprior.pipeline import FaceRestorer
from faceprior.video import restore_video
from faceprior.video.batching import restore_together

pytestmark = pytest.mark.usefixtures("one_thread")


class CountingRestorer(FaceRestorer):
    """Records the calls of :meth:`restore_crops` and the batch of every forward pass."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: D107 (test helper)
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.passes: list[int] = []
        self.model.register_forward_hook(lambda _m, inputs, _o: self.passes.append(len(inputs[0])))

    def restore_crops(self, prepared):
        self.calls += 1
        return super().restore_crops(prepared)


def _script() -> list:
    """Two faces, one missed for a frame, then a cut (new tracks) with one face."""
    two = [_face(4, 8, 36), _face(52, 10, 34)]
    return [two] * 3 + [two[:1]] + [two] * 2 + [[_face(20, 10, 40)]] * 6


def _clip(tmp_path):
    first, second = _photo(PHOTO, 96)[:96], _photo(OTHER, 96)[:96]
    noise = np.random.default_rng(0)
    frames = [first] * 4 + [first] + [first] + [second] * 6  # frames 4 and 5 repeat frame 3
    frames = [
        np.clip(f + noise.normal(0, 3, f.shape), 0, 255).astype(np.uint8) if i not in (4, 5) else f
        for i, f in enumerate(frames)
    ]
    frames[4] = frames[5] = frames[3]
    source = tmp_path / "clip.mkv"
    _write_clip(source, frames, audio=False)
    return source


@pytest.mark.parametrize("stabilize", [True, False])
def test_batching_frames_changes_the_passes_not_the_output(tmp_path, stabilize):
    source = _clip(tmp_path)
    outputs, reports = {}, {}
    for batch_frames in (1, 5):
        restorer = CountingRestorer(
            tiny_restorer("unet"), detector=ScriptedFaces(_script()), batch_size=3
        )
        target = tmp_path / f"{batch_frames}.mkv"
        report = restore_video(
            restorer, source, target, crf=0, stabilize=stabilize, batch_frames=batch_frames
        )
        outputs[batch_frames] = np.stack(_read_clip(target)[0]).astype(int)
        reports[batch_frames] = report.to_dict()
        restored_frames = report.frames - report.reused_frames
        # one network call per group of frames (a group of repeats only needs none)
        assert restorer.calls == (restored_frames if batch_frames == 1 else 3)
        assert sum(restorer.passes) == report.restored_faces
        # a frame's two faces fill two of the three places; frames together fill them all
        assert max(restorer.passes) == (2 if batch_frames == 1 else 3)
    assert reports[5]["batch_frames"] == 5
    for key in ("frames", "reused_frames", "restored_faces", "bridged", "tracks", "scene_cuts"):
        assert reports[1][key] == reports[5][key], key
    assert reports[1]["reused_frames"] >= 1 and reports[1]["scene_cuts"] == 1
    difference = np.abs(outputs[1] - outputs[5])
    assert difference.max() <= 2 and difference.mean() < 0.01, (difference.max(), difference.mean())


def test_restore_together_returns_each_photos_own_faces():
    """Photos with 2, 0 and 1 faces: merged, restored once, split back in order."""
    restorer = FaceRestorer(tiny_restorer("unet"), detector=ScriptedFaces([[]]), batch_size=2)
    rng = np.random.default_rng(1)
    photos = [rng.integers(0, 255, (80, 96, 3), np.uint8) for _ in range(3)]
    faces = [[_face(4, 4, 36), _face(50, 8, 34)], [], [_face(20, 10, 40)]]
    prepared = [restorer.prepare(p, f) for p, f in zip(photos, faces, strict=True)]
    together = restore_together(restorer, prepared)
    for photo, alone, joint in zip(prepared, map(restorer.restore_crops, prepared), together):
        assert len(joint.faces) == len(alone.faces) == len(photo.batches)
        for a, b in zip(alone.faces, joint.faces, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
    assert restore_together(restorer, []) == []


def test_batch_frames_must_be_a_positive_integer(tmp_path):
    restorer = FaceRestorer(tiny_restorer("unet"), detector=ScriptedFaces([[]]))
    for wrong in (0, 1.5):
        with pytest.raises(ArgumentError, match="batch_frames"):
            restore_video(restorer, tmp_path / "x.mp4", tmp_path / "y.mp4", batch_frames=wrong)
