"""Video restoration: faces restored steadily over a whole film, sound kept (docs/video.md).

:func:`restore_video` is the entry point; the modules hold its parts: ``streams`` (PyAV
decode/encode; audio, subtitles and data copied), ``tracking`` (face tracks, scene cuts),
``smoothing`` (One-Euro landmark filter), ``temporal`` (blending restored faces over time),
``detail`` (the time-averaged detail source) and ``batching`` (faces of several frames
through the network together).
"""

from __future__ import annotations

from .restore import VideoReport, restore_video
from .streams import VIDEO_SUFFIXES, VideoError, VideoWarning, check_codec

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoError",
    "VideoReport",
    "VideoWarning",
    "check_codec",
    "restore_video",
]
