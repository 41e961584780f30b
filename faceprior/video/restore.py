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
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .batching import restore_together
from .detail import steady_detail_source
from .resume import PartialVideo
from .streams import (
    Frame,
    VideoError,
    VideoInfo,
    VideoWarning,
    VideoWriter,
    assemble,
    check_output,
    decode,
    open_input,
    plan_copies,
    probe,
    warn_if_shallower,
)
from .temporal import BlendSettings, blend_crop, blend_face
from .tracking import FaceTracker, SceneCutDetector, Track, TrackerSettings

# A frame whose pixels all differ by at most this from the previous frame's is a repeat
# (frozen or duplicated frames; decoder rounding stays below it).
REPEAT_TOLERANCE = 2
# Frames per segment of a resumable run (10 s at 25 fps; x264 puts a key frame this often).
SEGMENT_FRAMES = 250


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
    copied_streams: list[str] = field(default_factory=list)  # subtitle and data streams
    dropped_streams: list[str] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    frame_rate: float | None = None
    stabilized: bool = True
    batch_frames: int = 1  # frames whose faces shared the network's forward passes
    resumed_frames: int = 0  # restored by an interrupted earlier run, kept

    @property
    def fps(self) -> float:
        """Frames restored per second of wall time (by this run: resumed frames left out)."""
        return (self.frames - self.resumed_frames) / self.seconds if self.seconds else 0.0

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
    batch_frames: int | None = None,
    resume: bool = True,
    segment_frames: int = SEGMENT_FRAMES,
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
    ``batch_frames``: consecutive frames whose faces go through the network together, in
    forward passes of the restorer's ``batch_size`` (default: that batch size, so that one
    face a frame fills a batch; the output does not depend on it).
    ``resume``: continue an interrupted run of the same input and settings from its last
    finished segment of ``segment_frames`` frames (:mod:`faceprior.video.resume`; the
    encoder starts afresh, with a key frame, at each segment; ``.avi`` is written as one).
    ``progress``: show a progress bar with an ETA in frames; ``on_frame(done, total)`` is
    called after each frame (``total`` from the header, or None). The output keeps the audio,
    subtitle and data streams (copied), timestamps, frame rate, rotation, colour tags and bit
    depth, and appears only when complete.
    Raises :class:`VideoError` for a video that cannot be read or written.
    """
    from ..checks import number

    source, destination = Path(source), Path(destination)
    if destination.exists() and destination.resolve() == source.resolve():
        raise VideoError(f"{destination} is the input video; choose another output")
    blending = BlendSettings(strength=temporal_strength)
    if batch_frames is None:
        batch_frames = restorer.batch_size
    batch_frames = number("batch_frames", batch_frames, 1, integer=True)
    segment_frames = number("segment_frames", segment_frames, 1, integer=True)
    if destination.suffix.lower() == ".avi":  # AVI cannot join encoders' timestamps
        segment_frames = 2**62
    codec = check_output(destination, codec)
    container = open_input(source)
    partial = segments = bar = frames = None
    report = VideoReport(
        str(source), str(destination), codec=codec, stabilized=stabilize, batch_frames=batch_frames
    )
    start = time.perf_counter()
    try:
        info = probe(container)
        copies = plan_copies(destination, container, info)
        report.audio_streams, report.copied_streams = list(info.audio), copies.described
        report.dropped_streams = info.dropped + copies.dropped
        for stream in info.dropped:  # a second video stream, cover art, attachments
            warnings.warn(
                f"{source}: its {stream} is not copied (only audio, subtitle and data streams are)",
                VideoWarning,
                stacklevel=2,
            )
        report.frame_rate = float(info.rate) if info.rate else None
        frames = _FrameRestorer(
            restorer, stabilize, blending, steady_detail, tracker, reuse_repeats, report
        )
        settings = {
            "codec": codec,
            "crf": crf,
            "stabilize": stabilize,
            "temporal_strength": temporal_strength,
            "steady_detail": steady_detail,
            "tracker": asdict(tracker or TrackerSettings()),
            "reuse_repeats": reuse_repeats,
            "segment_frames": segment_frames,
        }
        partial = PartialVideo(destination, _resume_job(source, restorer, settings))
        finished = partial.start(resume)
        if finished:
            frames.load_state_dict(partial.load_state(finished - 1))
            report.resumed_frames = report.frames
        segments = _Segments(partial, finished, source, info, codec, crf, report)
        bar = _progress_bar(source, info, progress, report.frames)
        begun: list[tuple[Frame, _Begun]] = []

        def write_begun() -> None:
            restored = frames.finish([frame for _, frame in begun])
            for (item, _), rgb in zip(begun, restored, strict=True):
                segments.write(rgb, item.pts, item.duration)
                bar.update()
                if on_frame is not None:
                    on_frame(item.index + 1, info.frames)
            begun.clear()

        for item in decode(container, info, skip=report.frames):
            begun.append((item, frames.begin(item.rgb, item.time)))
            last_of_segment = (item.index + 1) % segment_frames == 0
            if len(begun) == batch_frames or last_of_segment:
                write_begun()
            if last_of_segment:
                segments.close()
                partial.save_state(segments.index - 1, frames.state_dict())
        write_begun()
        _check_complete(source, info, report.frames)
        segments.close()
        if not partial.segments():
            raise VideoError(f"{source}: no video frames could be decoded")
        assemble(destination, partial.segments(), source, copies)
        partial.remove()
    except Exception:
        if segments is not None:
            segments.abort()
        if partial is not None:
            partial.remove()
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the finished segments stay for a resume
        if segments is not None:
            segments.abort()
        if partial is not None and not resume:
            partial.remove()
        raise
    finally:
        if bar is not None:
            bar.close()
        container.close()
    report.tracks = frames.tracker.started if stabilize else 0
    report.seconds = time.perf_counter() - start
    return report


class _Segments:
    """The restored video, encoded a segment at a time into the partial folder; each
    segment's encoder opens at its first frame (the frame size is known then)."""

    def __init__(self, partial, index: int, source: Path, info: VideoInfo, codec, crf, report):
        self.partial, self.index = partial, index  # the next segment to write
        self.source, self.info, self.codec, self.crf = source, info, codec, crf
        self.report = report
        self.writer: VideoWriter | None = None
        self.warned = False

    def write(self, rgb: np.ndarray, pts: int, duration: int | None) -> None:
        if self.writer is None:
            size = (rgb.shape[1], rgb.shape[0])
            path = self.partial.segment(self.index)
            self.writer = VideoWriter(path, self.info, size, self.codec, self.crf)
            self.report.codec, self.report.size = self.writer.codec, size
            if not self.warned:
                warn_if_shallower(self.source, self.info, self.codec, self.writer.pix_fmt)
                self.warned = True
        self.writer.write_video(rgb, pts, duration)

    def close(self) -> None:
        """Finish the current segment (if it has frames)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.index += 1

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def _resume_job(source: Path, restorer, settings: dict) -> dict:
    """What a resumed run must find again: the same input file (path, size, modification
    time), the same video ``settings`` and the restorer's settings that change its output."""
    stat = source.stat()
    names = (
        "model_name", "small_model_name", "small_face_size", "background_name", "upscale",
        "faces", "min_face_size", "strengths", "color_match", "keep_grey", "keep_detail",
    )  # fmt: skip
    return {
        "input": {"path": str(source.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns},
        "video": settings,
        "restorer": {name: repr(getattr(restorer, name, None)) for name in names},
    }


class _FrameRestorer:
    """Restores one frame after another, keeping what the next frame needs (and no more).

    Two steps, so that the faces of several frames share the network (:meth:`begin` each
    frame in order: cut, repeat, tracks, alignment; then :meth:`finish` the frames together:
    one network call, then blending and paste-back frame by frame, in order).
    """

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
        self._previous_input: np.ndarray | None = None  # the last frame restored
        self._previous_output: np.ndarray | None = None

    def begin(self, rgb: np.ndarray, seconds: float) -> _Begun:
        """Everything before the network for the next frame of the video (uint8 RGB, or
        uint16 for a deeper video: restored at its depth, analysed at 8 bits)."""
        report = self.report
        report.frames += 1
        rgb8 = rgb if rgb.dtype == np.uint8 else to_8_bit(rgb)
        cut = self.cuts(rgb8)
        if cut:
            report.scene_cuts += 1
            self.tracker.reset()
        if not cut and self.reuse_repeats and self._is_repeat(rgb8):
            report.reused_frames += 1
            return _Begun(None, [])
        self._previous_input = rgb8
        if not self.stabilize:
            return _Begun(self.restorer.prepare(rgb), [])
        tracks = self.tracker.update(self.restorer.find_faces(rgb8), seconds)
        report.restored_faces += len(tracks)
        report.bridged += sum(track.missed > 0 for track in tracks)
        prepared = self.restorer.prepare(rgb, [track.detection for track in tracks])
        return _Begun(prepared, tracks)

    def finish(self, frames: list[_Begun]) -> list[np.ndarray]:
        """The restored frames of ``frames`` (begun in this order), their faces restored in
        one network call."""
        restored = iter(
            restore_together(self.restorer, [f.prepared for f in frames if f.prepared is not None])
        )
        outputs = []
        for frame in frames:
            if frame.prepared is None:  # a repeat: the output of the frame before it
                outputs.append(self._previous_output)
                continue
            if self.stabilize:
                output = self._finish_tracked(frame, next(restored))
            else:
                result = self.restorer.finish(frame.prepared, next(restored))
                self.report.restored_faces += len(result.faces)
                output = result.image
            self._previous_output = output
            outputs.append(output)
        return outputs

    def state_dict(self) -> dict:
        """Everything the next frame needs (plain arrays and numbers), for a resumed run."""
        return {
            "report": {name: getattr(self.report, name) for name in _CARRIED},
            "tracker": self.tracker.state_dict(),
            "cuts": self.cuts.state_dict(),
            "previous_input": self._previous_input,
            "previous_output": self._previous_output,
        }

    def load_state_dict(self, state: dict) -> None:
        for name, value in state["report"].items():
            setattr(self.report, name, tuple(value) if name == "size" else value)
        self.tracker.load_state_dict(state["tracker"])
        self.cuts.load_state_dict(state["cuts"])
        self._previous_input = state["previous_input"]
        self._previous_output = state["previous_output"]

    def _is_repeat(self, rgb: np.ndarray) -> bool:
        previous = self._previous_input
        if previous is None or previous.shape != rgb.shape:
            return False
        difference = np.abs(rgb.astype(np.int16) - previous)
        return int(difference.max()) <= REPEAT_TOLERANCE

    def _finish_tracked(self, frame: _Begun, restored) -> np.ndarray:
        """Blend each face with its track's past, steady the detail source, paste back.

        In frame order: each track's memory holds the frames before this one."""
        tracks, prepared = frame.tracks, frame.prepared

        def refine(indices, crops, faces, matrices):
            for row, index in enumerate(indices):
                state = tracks[index].state
                steady_crop = blend_crop(state, crops[row], matrices[row], self.blending)
                faces[row] = blend_face(state, crops[row], faces[row], matrices[row], self.blending)
                crops[row] = steady_crop  # what colour matching reads, in place
            return faces

        if self.steady_detail:
            # The detail source (and background) of paste-back; a copy, the frame stays as is.
            prepared.rgb = prepared.rgb.copy()
            for batch in prepared.batches:
                for index, matrix in zip(batch.indices, batch.matrices, strict=True):
                    steady_detail_source(
                        tracks[index].state,
                        prepared.rgb,
                        prepared.detections[index].landmarks,  # this frame's, smoothed
                        matrix,
                        batch.crops.shape[1],
                        self.blending,
                    )
        return self.restorer.finish(prepared, restored, refine).image


# What a resumed run's report takes over from the interrupted one.
_CARRIED = ("frames", "reused_frames", "restored_faces", "bridged", "scene_cuts", "size")


@dataclass
class _Begun:
    """A frame ready for the network: its prepared photo (None for a repeat of the frame
    before) and, stabilised, the track of each of its faces."""

    prepared: object | None
    tracks: list[Track]


def to_8_bit(rgb: np.ndarray) -> np.ndarray:
    """uint16 RGB rounded to uint8 (for detection, cuts and repeats, which work at 8 bits)."""
    return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _check_complete(source: Path, info: VideoInfo, decoded: int) -> None:
    """A file cut short still decodes up to the cut: compare with the header's frame count."""
    if info.frames and decoded < info.frames:
        raise VideoError(
            f"{source}: truncated or damaged video: only {decoded} of its {info.frames} "
            f"frames could be decoded"
        )


def _progress_bar(source: Path, info: VideoInfo, enabled: bool, done: int):
    from tqdm import tqdm

    return tqdm(
        total=info.frames,
        initial=done,
        desc=source.name,
        unit="frame",
        disable=not enabled,
        leave=False,
    )
