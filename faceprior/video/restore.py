"""Restore the faces of a whole video, steadily, a frame at a time.

Per frame: detect the faces (the photo pipeline's detector and ``faces``/``min_face_size``
selection), follow them with :class:`FaceTracker` (smoothed landmarks, so the aligned crop
does not jitter; a missed detection is bridged), restore them with the photo pipeline, blend
each restored face with its track's past in aligned space (:func:`blend_face`), and paste back
over a frame whose face regions (the ``keep_detail`` source) are averaged over time too
(:func:`steady_detail_source`).
A frame identical to the previous one reuses the previous output; a scene cut ends every
track. Only the current frame, the previous one and a few read-ahead frames are ever held.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .detail import steady_detail_source
from .streams import (
    VideoError,
    VideoInfo,
    VideoWriter,
    check_output,
    decode,
    open_input,
    probe,
)
from .temporal import BlendSettings, blend_crop, blend_face
from .tracking import FaceTracker, SceneCutDetector, TrackerSettings

# A frame whose pixels all differ by at most this from the previous frame's is a repeat
# (frozen or duplicated frames; decoder rounding stays below it).
REPEAT_TOLERANCE = 2


@dataclass
class VideoReport:
    """What :func:`restore_video` did: frames, faces, tracks, cuts and speed."""

    source: str
    destination: str
    frames: int = 0
    reused_frames: int = 0  # repeats of the previous frame, not restored again
    restored_faces: int = 0  # summed over frames
    bridged: int = 0  # faces restored in frames where the detector missed them
    tracks: int = 0
    scene_cuts: int = 0
    seconds: float = 0.0
    codec: str = ""
    audio_streams: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    frame_rate: float | None = None
    stabilized: bool = True

    @property
    def fps(self) -> float:
        """Frames restored per second of wall time."""
        return self.frames / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        report = asdict(self)
        report["size"] = list(self.size)
        report["fps"] = round(self.fps, 3)
        report["seconds"] = round(self.seconds, 3)
        return report


def restore_video(
    restorer,
    source: str | os.PathLike,
    destination: str | os.PathLike,
    codec: str | None = None,
    crf: int | None = None,
    stabilize: bool = True,
    temporal_strength: float = BlendSettings.strength,
    steady_detail: bool = True,
    tracker: TrackerSettings | None = None,
    reuse_repeats: bool = True,
    progress: bool = False,
    on_frame: Callable[[int, int | None], None] | None = None,
) -> VideoReport:
    """Restore every face of the video ``source`` into ``destination`` with ``restorer``.

    ``restorer``: a :class:`faceprior.FaceRestorer` (its model, masks, colour matching,
    upscale and face selection apply per frame). ``codec``: FFmpeg video encoder (default
    libx264, libvpx-vp9 for .webm); ``crf``: its constant-quality setting (default 18 for
    H.264, visually lossless). ``stabilize=False``: restore each frame on its own like a photo
    (the frame-by-frame baseline). ``temporal_strength``: largest weight of a face's past in
    the temporal blend (0: landmark smoothing only). ``steady_detail``: with the restorer's
    ``keep_detail``, take the detail kept in large faces from the track's face region
    averaged over time (motion-aware, :mod:`faceprior.video.detail`) instead of from the
    frame alone, whose noise would flicker. ``tracker``: track matching and landmark
    smoothing settings. ``reuse_repeats``: copy the previous output for a repeated frame.
    ``progress``: show a progress bar with an ETA in frames; ``on_frame(done, total)`` is
    called after each frame (``total`` from the header, or None). The output keeps the audio
    (copied), timestamps, frame rate, rotation and colour tags, and appears only when complete.
    Raises :class:`VideoError` for a video that cannot be read or written.
    """
    source, destination = Path(source), Path(destination)
    if destination.exists() and destination.resolve() == source.resolve():
        raise VideoError(f"{destination} is the input video; choose another output")
    blending = BlendSettings(strength=temporal_strength)
    check_output(destination, codec)
    container = open_input(source)
    writer: VideoWriter | None = None
    items = bar = None
    report = VideoReport(str(source), str(destination), stabilized=stabilize)
    start = time.perf_counter()
    try:
        info = probe(container)
        report.audio_streams, report.dropped_streams = list(info.audio), list(info.dropped)
        report.frame_rate = float(info.rate) if info.rate else None
        frames = _FrameRestorer(
            restorer, stabilize, blending, steady_detail, tracker, reuse_repeats, report
        )
        bar = _progress_bar(source, info, progress)
        pending_audio = []
        items = decode(container, info)
        for kind, item in items:
            if kind == "audio":
                if writer is None:
                    pending_audio.append(item)
                else:
                    writer.write_audio(item)
                continue
            output = frames(item.rgb, item.time)
            if writer is None:
                size = (output.shape[1], output.shape[0])
                writer = VideoWriter(destination, container, info, size, codec, crf)
                report.codec, report.size = writer.codec, size
                for packet in pending_audio:
                    writer.write_audio(packet)
                pending_audio = []
            writer.write_video(output, item.pts, item.duration)
            bar.update()
            if on_frame is not None:
                on_frame(report.frames, info.frames)
        _check_complete(source, info, report.frames)
        if writer is None:
            raise VideoError(f"{source}: no video frames could be decoded")
        writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        if items is not None:
            items.close()
        container.close()
    report.tracks = frames.tracker.started if stabilize else 0
    report.seconds = time.perf_counter() - start
    return report


class _FrameRestorer:
    """Restores one frame after another, keeping what the next frame needs (and no more)."""

    def __init__(
        self,
        restorer,
        stabilize: bool,
        blending: BlendSettings,
        steady_detail: bool,
        tracker: TrackerSettings | None,
        reuse_repeats: bool,
        report: VideoReport,
    ) -> None:
        self.restorer = restorer
        self.stabilize = stabilize
        self.blending = blending
        self.steady_detail = steady_detail and restorer.keep_detail
        self.tracker = FaceTracker(tracker)
        self.cuts = SceneCutDetector()
        self.reuse_repeats = reuse_repeats
        self.report = report
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (input, output)

    def __call__(self, rgb: np.ndarray, seconds: float) -> np.ndarray:
        report = self.report
        report.frames += 1
        cut = self.cuts(rgb)
        if cut:
            report.scene_cuts += 1
            self.tracker.reset()
        if not cut and self.reuse_repeats and self._is_repeat(rgb):
            report.reused_frames += 1
            return self._previous[1]
        if self.stabilize:
            output = self._restore_tracked(rgb, seconds)
        else:
            result = self.restorer.restore(rgb)
            report.restored_faces += len(result.faces)
            output = result.image
        self._previous = (rgb, output)
        return output

    def _is_repeat(self, rgb: np.ndarray) -> bool:
        if self._previous is None or self._previous[0].shape != rgb.shape:
            return False
        difference = np.abs(rgb.astype(np.int16) - self._previous[0])
        return int(difference.max()) <= REPEAT_TOLERANCE

    def _restore_tracked(self, rgb: np.ndarray, seconds: float) -> np.ndarray:
        tracks = self.tracker.update(self.restorer.find_faces(rgb), seconds)
        self.report.restored_faces += len(tracks)
        self.report.bridged += sum(track.missed > 0 for track in tracks)

        def refine(indices, crops, restored, matrices):
            for row, index in enumerate(indices):
                state = tracks[index].state
                steady_crop = blend_crop(state, crops[row], matrices[row], self.blending)
                restored[row] = blend_face(
                    state, crops[row], restored[row], matrices[row], self.blending
                )
                crops[row] = steady_crop  # what colour matching reads, in place
            return restored

        restorer = self.restorer
        prepared = restorer.prepare(rgb, [track.detection for track in tracks])
        restored = restorer.restore_crops(prepared)  # from the frame's own crops
        if self.steady_detail:
            # The detail source (and background) of paste-back; a copy, the frame stays as is.
            prepared.rgb = prepared.rgb.copy()
            for batch in prepared.batches:
                for index, matrix in zip(batch.indices, batch.matrices, strict=True):
                    steady_detail_source(
                        tracks[index].state,
                        prepared.rgb,
                        tracks[index].detection.landmarks,
                        matrix,
                        batch.crops.shape[1],
                        self.blending,
                    )
        return restorer.finish(prepared, restored, refine).image


def _check_complete(source: Path, info: VideoInfo, decoded: int) -> None:
    """A file cut short still decodes up to the cut: compare with the header's frame count."""
    if info.frames and decoded < info.frames:
        raise VideoError(
            f"{source}: truncated or damaged video: only {decoded} of its {info.frames} "
            f"frames could be decoded"
        )


def _progress_bar(source: Path, info: VideoInfo, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=info.frames, desc=source.name, unit="frame", disable=not enabled, leave=False)
