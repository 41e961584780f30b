"""Image files in and out without losing what the photo carries.

Reading: Pillow parses the header first, so the pixel-count limit (a guard against
decompression bombs) is enforced before anything is decoded, and the EXIF block, ICC profile
and mode are taken from it. 8-bit images are decoded by Pillow, whose decoders refuse
truncated data; 16-bit PNG and TIFF are decoded by OpenCV, because Pillow reduces 16-bit colour
to 8 bits. The EXIF orientation is applied to the pixels and reset to 1 in the EXIF kept for
writing, so viewers do not rotate the result a second time.

Writing: 8-bit images are encoded by Pillow with their ICC profile and EXIF (JPEG, PNG, WebP,
TIFF); 16-bit images by OpenCV, with the ICC profile and EXIF added as PNG chunks (a 16-bit TIFF
keeps its pixels but not that metadata). A file is written beside its target under a temporary
name and renamed into place, so an interrupted run never leaves half an image.

Pixels are numpy arrays, channels last, RGB order: (H, W) grey, (H, W, 2) grey + alpha,
(H, W, 3) RGB, (H, W, 4) RGBA; uint8 or uint16.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# 100 megapixels: above any camera in common use, far below what exhausts memory in the pipeline.
DEFAULT_MAX_PIXELS = 100_000_000
ORIENTATION_TAG = 0x0112

FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
IMAGE_SUFFIXES = tuple(FORMAT_BY_SUFFIX)
_HOLDS_16_BIT = ("PNG", "TIFF")
_HOLDS_ALPHA = ("PNG", "TIFF", "WEBP")
_HOLDS_METADATA = ("JPEG", "PNG", "WEBP", "TIFF")
_EXIF_PREFIX = b"Exif\x00\x00"


class ImageError(ValueError):
    """An image that cannot be read or written as asked; the message names the file."""


@dataclass(frozen=True)
class ImageMetadata:
    """What travels from an input file to its output besides the pixels."""

    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None


@dataclass
class LoadedImage:
    """Decoded pixels (orientation applied) and the metadata to write back."""

    pixels: np.ndarray
    metadata: ImageMetadata = field(default_factory=ImageMetadata)
    path: Path | None = None


@dataclass(frozen=True)
class PixelLayout:
    """How to turn float RGB back into the caller's array layout."""

    grayscale: bool
    has_alpha: bool
    dtype: np.dtype


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file; raise :class:`ImageError` naming the file on any problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot read file: {error.strerror or error}") from None
    image = decode_image(data, max_pixels=max_pixels, source=str(path))
    image.path = path
    return image


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, source: str = "<bytes>"
) -> LoadedImage:
    """Decode image bytes (see the module docstring for which decoder handles what)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError(f"{source}: empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            handle = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            message = f"refused as a possible decompression bomb: {error}"
            raise ImageError(f"{source}: {message}") from None
        except UnidentifiedImageError:
            message = "not a readable image file (unknown format, or damaged)"
            raise ImageError(f"{source}: {message}") from None
        except (OSError, ValueError, SyntaxError) as error:
            raise ImageError(f"{source}: not a readable image file ({error})") from None
        with handle:
            width, height = handle.size
            if width * height > max_pixels:
                raise ImageError(
                    f"{source}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
                    f"{max_pixels:,} (a guard against decompression bombs); raise the limit "
                    f"(--max-pixels) if the file is trusted"
                )
            orientation, exif = _exif_without_orientation(handle)
            icc = handle.info.get("icc_profile") if handle.mode != "CMYK" else None
            fmt = handle.format
            if _bit_depth(handle, data) > 8:
                pixels = _decode_opencv(data, source)
            else:
                pixels = _decode_pillow(handle, source)
    pixels = np.ascontiguousarray(apply_orientation(pixels, orientation))
    return LoadedImage(pixels, ImageMetadata(format=fmt, icc_profile=icc or None, exif=exif))


def _exif_without_orientation(handle) -> tuple[int, bytes | None]:
    """The EXIF orientation, and the EXIF block to write with the orientation reset to 1."""
    try:
        exif = handle.getexif()
        orientation = int(exif.get(ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block must not make the pixels unreadable
        return 1, handle.info.get("exif")
    raw = handle.info.get("exif")
    if orientation == 1:
        return 1, raw or (exif.tobytes() if len(exif) else None)
    exif[ORIENTATION_TAG] = 1
    return (orientation if 1 <= orientation <= 8 else 1), exif.tobytes()


def _bit_depth(handle, data: bytes) -> int:
    if handle.format == "PNG" and len(data) > 24:
        return data[24]  # IHDR bit depth: 8-byte signature, length, type, width, height
    if handle.format == "TIFF":
        bits = handle.tag_v2.get(258, 8)
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 16 if handle.mode.startswith("I;16") else 8


_PILLOW_MODES = {
    "L": "L",
    "LA": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "1": "L",
    "PA": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}


def _decode_pillow(handle, source: str) -> np.ndarray:
    try:
        handle.load()
    except (OSError, ValueError, SyntaxError) as error:
        raise ImageError(f"{source}: damaged or truncated image data ({error})") from None
    mode = handle.mode
    if mode == "P":
        target = "RGBA" if "transparency" in handle.info else "RGB"
    elif mode in _PILLOW_MODES:
        target = _PILLOW_MODES[mode]
    else:
        raise ImageError(f"{source}: unsupported pixel mode {mode!r} (8/16-bit grey or colour)")
    return np.array(handle if mode == target else handle.convert(target))


def _decode_opencv(data: bytes, source: str) -> np.ndarray:
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ImageError(f"{source}: damaged or truncated image data")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{source}: unsupported sample type {pixels.dtype} (8 or 16 bits only)")
    return _swap_red_blue(pixels)


def _swap_red_blue(pixels: np.ndarray) -> np.ndarray:
    """RGB(A) <-> BGR(A); grey is returned as is."""
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        order = [2, 1, 0] + ([3] if pixels.shape[2] == 4 else [])
        return pixels[..., order]
    return pixels


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright as EXIF orientation 1-8 says (the TIFF/EXIF definition)."""
    operations = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return operations.get(orientation, operations[1])(pixels)


def output_format(path: str | os.PathLike) -> str:
    """Format name for a file name's suffix, or :class:`ImageError` if faceprior cannot write it."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        known = ", ".join(IMAGE_SUFFIXES)
        raise ImageError(f"{path}: cannot write {suffix or 'files without a suffix'} (use {known})")
    return FORMAT_BY_SUFFIX[suffix]


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    metadata: ImageMetadata | None = None,
    quality: int = 95,
) -> Path:
    """Encode ``pixels`` in the format of ``path``'s suffix and write it atomically.

    ``quality`` applies to JPEG and WebP. Raises :class:`ImageError` rather than drop an alpha
    channel or bits the format cannot hold.
    """
    path = Path(path)
    data = encode_image(pixels, output_format(path), metadata, quality, target=str(path))
    atomic_write_bytes(path, data)
    return path


def encode_image(
    pixels: np.ndarray,
    fmt: str,
    metadata: ImageMetadata | None = None,
    quality: int = 95,
    target: str = "<bytes>",
) -> bytes:
    metadata = metadata or ImageMetadata()
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.dtype not in (np.uint8, np.uint16) or channels not in (1, 2, 3, 4):
        raise ImageError(f"{target}: cannot write {pixels.dtype} pixels of shape {pixels.shape}")
    if channels in (2, 4) and fmt not in _HOLDS_ALPHA:
        raise ImageError(f"{target}: {fmt} cannot store the alpha channel; write PNG, TIFF or WebP")
    if pixels.dtype == np.uint16:
        if fmt not in _HOLDS_16_BIT:
            raise ImageError(f"{target}: {fmt} cannot store 16-bit samples; write PNG or TIFF")
        return _encode_opencv(pixels, fmt, metadata, target)
    return _encode_pillow(pixels, fmt, metadata, quality)


def _encode_pillow(pixels: np.ndarray, fmt: str, metadata: ImageMetadata, quality: int) -> bytes:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels))
    options: dict = {}
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)  # 4:4:4 keeps colour edges of faces
    elif fmt == "WEBP":
        options.update(quality=quality)
    if fmt in _HOLDS_METADATA:
        if metadata.icc_profile:
            options["icc_profile"] = metadata.icc_profile
        if metadata.exif:
            options["exif"] = metadata.exif
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _encode_opencv(pixels: np.ndarray, fmt: str, metadata: ImageMetadata, target: str) -> bytes:
    import cv2

    if pixels.ndim == 3 and pixels.shape[2] == 2:  # OpenCV writes no grey+alpha: widen to RGBA
        pixels = pixels[..., [0, 0, 0, 1]]
    ok, encoded = cv2.imencode(".png" if fmt == "PNG" else ".tiff", _swap_red_blue(pixels))
    if not ok:
        raise ImageError(f"{target}: OpenCV could not encode the image as {fmt}")
    data = encoded.tobytes()
    return _png_with_metadata(data, metadata) if fmt == "PNG" else data


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_with_metadata(data: bytes, metadata: ImageMetadata) -> bytes:
    """Insert iCCP and eXIf chunks right after IHDR (both must precede the image data)."""
    chunks = b""
    if metadata.icc_profile:
        chunks += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(metadata.icc_profile))
    if metadata.exif:
        exif = metadata.exif
        if exif.startswith(_EXIF_PREFIX):
            exif = exif[len(_EXIF_PREFIX) :]
        chunks += _png_chunk(b"eXIf", exif)
    end_of_ihdr = 8 + 8 + 13 + 4
    return data[:end_of_ihdr] + chunks + data[end_of_ihdr:]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write under a temporary name in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def split_pixels(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, PixelLayout]:
    """Float32 RGB in [0, 1] (grey replicated), the alpha plane (or None), and the layout."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"expected uint8 or uint16 pixels, got {pixels.dtype}")
    scale = np.float32(1.0 / np.iinfo(pixels.dtype).max)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if pixels.ndim not in (2, 3) or channels not in (1, 2, 3, 4):
        raise ImageError(f"expected (H, W) or (H, W, 1-4) pixels, got shape {pixels.shape}")
    values = pixels.astype(np.float32) * scale
    if values.ndim == 2:
        values = values[..., None]
    color, alpha = (values[..., :-1], values[..., -1]) if channels in (2, 4) else (values, None)
    if color.shape[2] == 1:
        color = np.repeat(color, 3, axis=2)
    layout = PixelLayout(grayscale=channels <= 2, has_alpha=alpha is not None, dtype=pixels.dtype)
    return np.ascontiguousarray(color), alpha, layout


def join_pixels(rgb: np.ndarray, alpha: np.ndarray | None, layout: PixelLayout) -> np.ndarray:
    """Inverse of :func:`split_pixels`: grey layouts keep the luma (ITU-R BT.601) only."""
    import cv2

    maximum = np.iinfo(layout.dtype).max
    planes = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None] if layout.grayscale else rgb
    if layout.has_alpha:
        planes = np.concatenate([planes, alpha[..., None]], axis=2)
    out = np.clip(np.rint(planes * maximum), 0, maximum).astype(layout.dtype)
    return out[..., 0] if out.shape[2] == 1 else out
