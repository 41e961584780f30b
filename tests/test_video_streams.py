"""What the input has besides the picture is kept: subtitle and data streams, bit depth."""

from __future__ import annotations

import warnings
from fractions import Fraction

import av
import numpy as np
import pytest
from test_video import ScriptedFaces, _face, _fast_restorer, _pattern

from faceprior.video import VideoWarning, restore_video

pytestmark = pytest.mark.usefixtures("one_thread")

SUBTITLES = "1\n00:00:00,000 --> 00:00:00,200\nHello\n\n2\n00:00:00,200 --> 00:00:00,360\nWorld\n\n"


def _clip_with(path, tmp_path, subtitles=False, data=False, frames=10):
    """An H.264 clip of ``_pattern`` frames with an SRT subtitle and/or a binary data stream."""
    srt = tmp_path / "captions.srt"
    srt.write_text(SUBTITLES)
    with av.open(str(path), "w") as container, av.open(str(srt)) as captions:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        text = container.add_stream_from_template(captions.streams[0]) if subtitles else None
        extra = container.add_data_stream("bin_data") if data else None
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_pattern(index), format="rgb24")
            container.mux(video.encode(frame))
            if extra is not None:
                packet = av.Packet(b"telemetry %d" % index)
                packet.stream, packet.time_base = extra, Fraction(1, 1000)
                packet.pts = packet.dts = index * 40
                container.mux(packet)
        if text is not None:
            for packet in captions.demux():
                if packet.size:
                    packet.stream = text
                    container.mux(packet)
        container.mux(video.encode())


def _packets(path, kind: str) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as container:
        return [
            (packet.pts, bytes(packet))
            for packet in container.demux()
            if packet.stream.type == kind and packet.size
        ]


def test_subtitle_and_data_streams_are_copied_bit_exact(tmp_path):
    restorer = _fast_restorer(ScriptedFaces([[_face(10, 4, 30)]]))
    for name, kind, options in (("subs.mkv", "subtitle", {"subtitles": True}),
                                ("data.mp4", "data", {"data": True})):  # fmt: skip
        source, target = tmp_path / name, tmp_path / "out" / name
        _clip_with(source, tmp_path, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("error", VideoWarning)
            report = restore_video(restorer, source, target)
        assert report.frames == 10 and not report.dropped_streams
        assert report.copied_streams == [f"{kind} stream 1" + (" (srt)" * (kind == "subtitle"))]
        copied = _packets(target, kind)
        assert copied == _packets(source, kind) and len(copied) >= 2


def test_a_stream_the_output_container_cannot_hold_is_dropped_with_a_warning(tmp_path):
    source = tmp_path / "subs.mkv"
    _clip_with(source, tmp_path, subtitles=True)
    restorer = _fast_restorer(ScriptedFaces([[]]))
    with pytest.warns(VideoWarning, match=r"subtitle stream 1 \(srt\) is not copied.*\.mp4"):
        report = restore_video(restorer, source, tmp_path / "out.mp4")
    assert report.dropped_streams == ["subtitle stream 1 (srt)"] and not report.copied_streams
    assert report.frames == 10 and _packets(tmp_path / "out.mp4", "subtitle") == []


def _ten_bit_clip(path, frames=4):
    """A slow 10-bit luma ramp (150 levels across the frame: 8 bits would keep about 38)."""
    height, width = 48, 160
    ramp = np.tile(400 + np.arange(width) * 150 // width, (height, 1)).astype(np.uint16)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p10le"
        video.options = {"qp": "0"}  # lossless: the ramp arrives intact
        for _ in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p10le")
            frame.planes[0].update(ramp.tobytes())
            for plane in frame.planes[1:]:
                plane.update(np.full(plane.buffer_size // 2, 512, np.uint16).tobytes())
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return ramp


def _luma_planes(path) -> tuple[str, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        planes = []
        for frame in container.decode(stream):
            data = np.frombuffer(
                bytes(frame.planes[0]), np.uint16 if "10" in frame.format.name else np.uint8
            )
            planes.append(data.reshape(frame.height, -1)[:, : frame.width])
        return stream.codec_context.pix_fmt, planes


def test_ten_bit_video_keeps_its_depth_or_warns(tmp_path):
    source = tmp_path / "deep.mkv"
    ramp = _ten_bit_clip(source)
    restorer = _fast_restorer(ScriptedFaces([[_face(60, 6, 34)]]))  # a face on the ramp
    target = tmp_path / "deep-out.mkv"
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)
        restore_video(restorer, source, target, crf=0)
    pix_fmt, planes = _luma_planes(target)
    assert pix_fmt == "yuv420p10le" and len(planes) == 4
    outside = np.s_[:, :56]  # left of the face: the ramp as it was
    for plane in planes:
        assert len(np.unique(plane[outside])) > 45  # 10-bit steps kept (8 bits: about 14)
        assert np.abs(plane[outside].astype(int) - ramp[outside]).max() <= 2
    assert np.abs(planes[0][:, 56:100].astype(int) - ramp[:, 56:100]).mean() > 1  # restored
    # VP9 in this FFmpeg build has 8-bit formats only: written as 8-bit, with a warning
    with pytest.warns(VideoWarning, match="10-bit video is written with libvpx-vp9 as yuv420p"):
        restore_video(restorer, source, tmp_path / "vp9.mkv", codec="libvpx-vp9")
    assert _luma_planes(tmp_path / "vp9.mkv")[0] == "yuv420p"
