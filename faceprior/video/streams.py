"""Decode a video to RGB frames and encode restored frames, with PyAV (FFmpeg's libraries).

Only the video stream is re-encoded. Audio, subtitle and data packets are copied into the
output unchanged (no decode, so the sound is bit-exact; a subtitle or data stream that the
output container cannot hold is dropped with a warning), the frame timestamps are kept one
for one (variable frame rate survives), and the output stream gets the input's frame rate,
size, rotation (display matrix) and colour tags (range, matrix, primaries, transfer). Frames
are converted to RGB with the input's own matrix and range and back with the same, so colours
do not shift; a video of more than 8 bits per component is restored as 16-bit RGB and
encoded at its own depth when the encoder has it (else with a :class:`VideoWarning`).

Memory is bounded: the decoder runs ahead in a thread by at most ``READ_AHEAD`` frames. The
restored video is encoded by :class:`VideoWriter` (in segments, :mod:`faceprior.video.resume`)
and :func:`assemble` then joins the segments' packets and the input's copied packets,
interleaved by time, into the destination: written under a temporary name beside it and
renamed when complete, removed on an error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
# Encoder by output container when --codec is not given: H.264 plays everywhere; WebM only
# holds VP8/VP9/AV1.
DEFAULT_CODECS = {".webm": "libvpx-vp9"}
DEFAULT_CODEC = "libx264"
# Visually lossless for H.264/H.265 (x264's default is 23); VP9's scale differs.
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24}
READ_AHEAD = 4
# When the stream leaves the colour matrix unspecified, players assume BT.709 for HD and
# BT.601 below (FFmpeg's and the browsers' rule).
_HD_HEIGHT = 720


# Streams copied packet for packet besides the restored video (audio must be; the others are
# dropped, with a warning, where the output container cannot hold them).
COPIED_TYPES = ("audio", "subtitle", "data")


class VideoError(InputError):
    """A video that cannot be read or written as asked (the message says why)."""


class VideoWarning(UserWarning):
    """Something of the input that the output cannot keep (a stream, the bit depth)."""


@dataclass
class VideoInfo:
    """What the output must keep of the input's video stream."""

    width: int
    height: int
    frames: int | None  # from the container header; None when it does not say
    rate: Fraction | None
    time_base: Fraction
    codec: str
    pix_fmt: str
    depth: int = 8  # bits per component of the input's pixels
    rotation: int = 0  # counter-clockwise degrees a player turns the stored frames
    color_range: int = 0
    colorspace: int = 0
    color_primaries: int = 0
    color_trc: int = 0
    duration: float | None = None  # seconds
    audio: list[str] = field(default_factory=list)  # codec names of the copied audio streams
    copied: list[int] = field(default_factory=list)  # indices of the streams to copy
    dropped: list[str] = field(default_factory=list)  # streams not carried over


@dataclass
class Frame:
    """One decoded frame: upright RGB (H, W, 3), uint8 (uint16 for a video of more than 8
    bits), and its presentation timestamp."""

    rgb: np.ndarray
    pts: int
    time: float  # seconds
    duration: int | None = None  # in the stream's time base, when the container says
    index: int = 0  # position in the video, from 0


def open_input(path: str | os.PathLike):
    """The PyAV container of ``path``, or :class:`VideoError` saying why it cannot be read."""
    import av

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise VideoError(f"{path}: not a readable video ({_reason(error)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream in this file")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.is_decoder:
        name = getattr(stream.codec_context, "name", "unknown")
        container.close()
        raise VideoError(f"{path}: video codec {name!r} cannot be decoded by this FFmpeg build")
    return container


def probe(container) -> VideoInfo:
    """The video stream's properties, from the header (:func:`decode` fills in ``rotation``
    and missing colour tags from the first frame)."""
    stream = container.streams.video[0]
    context = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    info = VideoInfo(
        width=context.width,
        height=context.height,
        frames=stream.frames or None,
        rate=Fraction(rate) if rate else None,
        time_base=Fraction(stream.time_base),
        codec=context.name,
        pix_fmt=context.pix_fmt or "yuv420p",
        depth=pixel_depth(context.pix_fmt or "yuv420p"),
        color_range=int(context.color_range or 0),
        colorspace=int(context.colorspace or 0),
        color_primaries=int(context.color_primaries or 0),
        color_trc=int(context.color_trc or 0),
    )
    if stream.duration is not None:
        info.duration = float(stream.duration * stream.time_base)
    elif container.duration:
        info.duration = container.duration / 1_000_000
    for other in container.streams:
        if other.type in COPIED_TYPES:
            info.copied.append(other.index)
            if other.type == "audio":
                info.audio.append(other.codec_context.name)
        elif other.index != stream.index:
            info.dropped.append(describe_stream(other))
    return info


def describe_stream(stream) -> str:
    """``subtitle stream 2 (subrip)``: how the report and warnings name a stream."""
    codec = getattr(stream.codec_context, "name", None) if stream.codec_context else None
    return f"{stream.type} stream {stream.index}" + (f" ({codec})" if codec else "")


def pixel_depth(pix_fmt: str) -> int:
    """Bits per component of an FFmpeg pixel format (8 for unknown names)."""
    import av

    try:
        return max(component.bits for component in av.video.format.VideoFormat(pix_fmt).components)
    except (ValueError, av.error.FFmpegError):
        return 8


def decode(container, info: VideoInfo, skip: int = 0) -> Iterator[Frame]:
    """The video's frames in order, read ahead in a thread; the first ``skip`` are decoded
    (to count them and keep their timestamps) but not converted or returned."""
    return _read_ahead(_demux(container, info, skip), READ_AHEAD)


def _demux(container, info: VideoInfo, skip: int) -> Iterator[Frame]:
    import av

    video = container.streams.video[0]
    video.thread_type = "AUTO"
    first = True
    last_pts = None
    index = 0
    try:
        for packet in container.demux(video):
            for frame in packet.decode():
                if first:  # the display matrix and colour tags live on the frames
                    info.rotation = int(frame.rotation or 0) % 360
                    info.color_range = info.color_range or int(frame.color_range or 0)
                    info.colorspace = info.colorspace or int(frame.colorspace or 0)
                    first = False
                pts = frame.pts
                if pts is None:  # some AVI/raw streams: count frames at the nominal rate
                    pts = round(index / (info.rate or 25) / info.time_base)
                if last_pts is not None and pts <= last_pts:
                    pts = last_pts + 1
                last_pts = pts
                index += 1
                if index <= skip:
                    continue
                rgb = _to_rgb(frame, info)
                duration = frame.duration or None
                yield Frame(rgb, pts, float(pts * info.time_base), duration, index - 1)
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{container.name}: damaged video after {index} frames ({_reason(error)})"
        ) from None


def _to_rgb(frame, info: VideoInfo) -> np.ndarray:
    rgb = frame.to_ndarray(
        format="rgb48le" if info.depth > 8 else "rgb24",
        src_colorspace=_matrix(info),
        src_color_range=info.color_range or 1,  # unspecified means limited (TV) range
        interpolation=_exact_conversion(),
    )
    turns = info.rotation // 90
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _exact_conversion():
    """swscale flags for RGB <-> subsampled YUV without drift: swscale's defaults round down
    and skip chroma interpolation, which darkened frames by a level per generation (measured:
    mean -1.2/255 over a 4:2:0 round trip, -0.01 with these flags)."""
    from av.video.reformatter import Interpolation

    return Interpolation.BICUBIC | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def _matrix(info: VideoInfo) -> int:
    """The YUV matrix (AVColorSpace): the stream's, else the HD/SD convention."""
    if info.colorspace not in (0, 2):  # RGB (0) is handled by the formats; 2 = unspecified
        return info.colorspace
    return 1 if info.height >= _HD_HEIGHT else 5  # BT.709 or BT.470BG (= BT.601)


def check_output(path: Path, codec: str | None) -> str:
    """The encoder for ``path`` (``codec`` or the container's default), or :class:`VideoError`
    for a container or encoder this FFmpeg cannot write, before any frame is restored."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VideoError(
            f"{path}: cannot write {suffix or 'files without a suffix'} videos; "
            f"use one of {', '.join(VIDEO_SUFFIXES)}"
        )
    return check_codec(codec or DEFAULT_CODECS.get(suffix, DEFAULT_CODEC))


def check_codec(codec: str) -> str:
    """``codec`` if this FFmpeg build has it as a video encoder, else :class:`VideoError`."""
    import av

    try:
        found = av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise VideoError(f"unknown video encoder {codec!r} (try libx264)") from None
    if found.type != "video":
        raise VideoError(f"{codec!r} is not a video encoder (try libx264)")
    return codec


def output_pixel_format(info: VideoInfo, formats: list[str]) -> str:
    """The input's pixel format if the encoder has it; for a deeper-than-8-bit input, else
    the encoder's first YUV format at least as deep; else yuv420p."""
    if info.pix_fmt in formats:
        return info.pix_fmt
    if info.depth > 8:
        for name in formats:
            if name.startswith("yuv") and not name.startswith("yuva"):
                if pixel_depth(name) >= info.depth:
                    return name
    return "yuv420p"


class VideoWriter:
    """Encodes RGB frames into a temporary file, renamed on close.

    ``codec``: FFmpeg encoder name (default by container); ``crf``: constant quality for the
    encoders that have one (lower is better; default per codec, visually lossless).
    ``pix_fmt``: the pixel format chosen (the input's, else one the encoder has).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        size: tuple[int, int],
        codec: str | None = None,
        crf: int | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        self.codec = check_output(self.path, codec)
        self.info = info
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = temporary_name(self.path)
        self._container = av.open(str(self._temporary), "w")
        try:
            self._stream = self._video_stream(size, crf)
        except (av.error.FFmpegError, ValueError) as error:
            self.abort()
            raise VideoError(f"{self.path}: cannot encode {self.codec}: {_reason(error)}") from None
        self.pix_fmt = self._stream.pix_fmt

    def _video_stream(self, size: tuple[int, int], crf: int | None):
        info = self.info
        stream = self._container.add_stream(self.codec, rate=info.rate or 25)
        stream.thread_type = "AUTO"
        # Stored (not displayed) orientation, as the input: the display matrix turns it.
        width, height = size if info.rotation % 180 == 0 else size[::-1]
        stream.width, stream.height = width - width % 2, height - height % 2
        formats = [f.name for f in stream.codec_context.codec.video_formats or ()]
        stream.pix_fmt = output_pixel_format(info, formats)
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        context = stream.codec_context
        context.color_range = info.color_range
        context.colorspace = info.colorspace
        context.color_primaries = info.color_primaries
        context.color_trc = info.color_trc
        quality = DEFAULT_CRF.get(self.codec) if crf is None else crf
        if quality is not None:
            if "crf" not in {option.name for option in context.supported_options.private}:
                raise VideoError(f"encoder {self.codec} has no --crf quality setting")
            stream.options = {"crf": str(quality)}
            if self.codec == "libvpx-vp9":  # constant quality needs bit rate 0 in libvpx
                stream.options["b:v"] = "0"
        if self.codec == "libx265":  # x265 prints its settings to stderr at every open
            stream.options = {**stream.options, "x265-params": "log-level=error"}
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        return stream

    def write_video(self, rgb: np.ndarray, pts: int, duration: int | None = None) -> None:
        import av

        turns = self.info.rotation // 90
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, -turns))
        frame = av.VideoFrame.from_ndarray(
            rgb, format="rgb48le" if rgb.dtype == np.uint16 else "rgb24"
        )
        stream = self._stream
        frame = frame.reformat(
            width=stream.width,
            height=stream.height,
            format=stream.pix_fmt,
            dst_colorspace=_matrix(self.info),
            dst_color_range=self.info.color_range or 1,
            interpolation=_exact_conversion(),
        )
        frame.pts = pts
        frame.time_base = self.info.time_base
        if duration:  # the last frame's duration sets the stream's length and mean rate
            frame.duration = duration
        try:
            self._container.mux(stream.encode(frame))
        except av.error.FFmpegError as error:
            raise VideoError(f"{self.path}: encoding failed ({_reason(error)})") from None

    def close(self) -> None:
        """Flush the encoder, finish the file and move it to its name."""
        import av

        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()
        except av.error.FFmpegError as error:
            self.abort()
            raise VideoError(f"{self.path}: cannot finish the file ({_reason(error)})") from None
        os.replace(self._temporary, self.path)

    def abort(self) -> None:
        """Drop the partial output (errors, Ctrl-C): nothing is left under any name."""
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(FileNotFoundError):
            self._temporary.unlink()


def temporary_name(path: Path) -> Path:
    """Where ``path`` is written before it is complete: hidden, beside it, same suffix."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp{path.suffix}")


def warn_if_shallower(source: Path, info: VideoInfo, codec: str, pix_fmt: str) -> None:
    """A :class:`VideoWarning` when the output keeps fewer bits than the input had."""
    if info.depth > 8 and pixel_depth(pix_fmt) < info.depth:
        warnings.warn(
            f"{source}: its {info.depth}-bit video is written with {codec} as {pix_fmt} "
            f"({pixel_depth(pix_fmt)}-bit): the encoder has no {info.depth}-bit format; "
            f"--codec libx264, libx265 or ffv1 (.mkv) keep it",
            VideoWarning,
            stacklevel=3,
        )


# FFmpeg's muxer for each output suffix (to test, before any work, what it can hold)
CONTAINER_FORMATS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
}


@dataclass
class Copies:
    """The input's streams copied into the output: ``indices`` (audio, subtitle and data),
    ``described`` (the subtitle and data ones, for the report) and ``dropped`` (those the
    output container cannot hold, each warned about)."""

    indices: list[int] = field(default_factory=list)
    described: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def plan_copies(destination: Path, source, info: VideoInfo) -> Copies:
    """Which of ``info.copied`` the destination's container holds, known before any work:
    audio it cannot hold is a :class:`VideoError`, a subtitle or data stream a warning."""
    import io

    import av

    copies = Copies()
    suffix = destination.suffix.lower()
    with av.open(io.BytesIO(), "w", format=CONTAINER_FORMATS[suffix]) as probe:
        for index in info.copied:
            stream = source.streams[index]
            try:
                probe.add_stream_from_template(stream)
            except (av.error.FFmpegError, ValueError):
                if stream.type == "audio":
                    raise VideoError(
                        f"{destination}: a {suffix} file cannot hold the input's "
                        f"{stream.codec_context.name} audio, which is copied unchanged; write "
                        f".mkv (holds any codec) or .mp4/.mov instead"
                    ) from None
                described = describe_stream(stream)
                copies.dropped.append(described)
                warnings.warn(
                    f"{source.name}: its {described} is not copied: a {suffix} file cannot "
                    f"hold it (.mkv holds subtitles, .mp4 data streams)",
                    VideoWarning,
                    stacklevel=2,
                )
                continue
            copies.indices.append(index)
            if stream.type != "audio":
                copies.described.append(describe_stream(stream))
    return copies


def assemble(destination: Path, segments: list[Path], source: Path, copies: Copies) -> None:
    """Write ``destination`` from the restored video's ``segments`` (in order) and the
    input's copied streams, packet for packet, interleaved by time; atomically."""
    import heapq

    import av

    temporary = temporary_name(destination)
    try:
        with (
            av.open(str(segments[0])) as first,
            av.open(str(source)) as original,
            av.open(str(temporary), "w") as output,
        ):
            video = output.add_stream_from_template(first.streams.video[0])
            targets = {
                i: output.add_stream_from_template(original.streams[i]) for i in copies.indices
            }
            restored = ((packet, video) for packet in _segment_packets(segments))
            streams = [original.streams[i] for i in copies.indices]
            kept = (
                (packet, targets[packet.stream.index])
                for packet in (original.demux(*streams) if streams else ())
                if _has_time(packet)
            )
            for packet, stream in heapq.merge(restored, kept, key=lambda pair: _seconds(pair[0])):
                packet.stream = stream
                output.mux(packet)
    except (av.error.FFmpegError, ValueError, OSError) as error:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise VideoError(f"{destination}: cannot write the file ({_reason(error)})") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    os.replace(temporary, destination)


def _segment_packets(segments: list[Path]) -> Iterator:
    """The video packets of the segments one after the other, decoding times kept rising
    (a segment's encoder starts its own; containers without them get one just above)."""
    import av

    last = None
    for path in segments:
        with av.open(str(path)) as segment:
            for packet in segment.demux(video=0):
                if not packet.size:
                    continue
                if last is not None and (packet.dts is None or packet.dts <= last):
                    packet.dts = last + 1
                if packet.dts is not None:
                    last = packet.dts
                yield packet


def _has_time(packet) -> bool:
    return bool(packet.size) and (packet.dts is not None or packet.pts is not None)


def _seconds(packet) -> float:
    time = packet.dts if packet.dts is not None else packet.pts
    return float(time * packet.time_base) if time is not None else 0.0


def _read_ahead(items: Iterator, depth: int) -> Iterator:
    """Run ``items`` in a thread, at most ``depth`` ahead; its errors surface here, in order."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(("end", done))
        except BaseException as error:  # handed to the consumer, which raises it
            buffer.put(("error", error))

    thread = threading.Thread(target=produce, name="faceprior-video-decode", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                buffer.get_nowait()
        thread.join()


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)
