"""Video restoration: faces restored steadily over a whole film, sound kept (docs/video.md).

:func:`restore_video` is the entry point; the modules hold its parts: ``streams`` (PyAV
decode/encode, audio copied), ``tracking`` (face tracks, scene cuts), ``smoothing`` (One-Euro
landmark filter) and ``temporal`` (blending restored faces over time).
"""

from __future__ import annotations

from .restore import VideoReport, restore_video
from .streams import VIDEO_SUFFIXES, VideoError, check_codec

__all__ = ["VIDEO_SUFFIXES", "VideoError", "VideoReport", "check_codec", "restore_video"]
