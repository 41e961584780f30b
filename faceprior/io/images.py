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
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError

# 100 megapixels: above any camera in common use. Restoring such a photo takes about 6 GB of
# memory (float32 planes of the photo, its upscaled canvas and masks); the limit bounds the
# input and the upscaled output alike.
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
# Read but not written (a GIF is restored into a PNG).
READ_ONLY_SUFFIXES = {".gif": "GIF"}
INPUT_SUFFIXES = IMAGE_SUFFIXES + tuple(READ_ONLY_SUFFIXES)
# The only decoders an input ever reaches, whatever its name says: Pillow's other plugins
# (EPS runs Ghostscript, and dozens of rarely used parsers) are never offered untrusted bytes.
INPUT_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF")
_HOLDS_16_BIT = ("PNG", "TIFF")
_HOLDS_ALPHA = ("PNG", "TIFF", "WEBP")
_HOLDS_METADATA = ("JPEG", "PNG", "WEBP", "TIFF")
_EXIF_PREFIX = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Largest file accepted per allowed pixel: 16-bit RGBA stored uncompressed is 8 bytes a pixel;
# the slack covers metadata. Bigger files are refused before they are read into memory.
_BYTES_PER_PIXEL = 8
_FILE_SLACK_BYTES = 64 << 20


class ImageError(InputError):
    """An image that cannot be read or written as asked; the message names the file."""


@dataclass(frozen=True)
class ImageMetadata:
    """What travels from an input file to its output besides the pixels."""

    format: str | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None


@dataclass
class LoadedImage:
    """Decoded pixels (orientation applied), the metadata to write back, and ``notes``: what
    the decoders warned about (a damaged EXIF block, ...) while the pixels were still sound."""

    pixels: np.ndarray
    metadata: ImageMetadata = field(default_factory=ImageMetadata)
    path: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PixelLayout:
    """How to turn float RGB back into the caller's array layout."""

    grayscale: bool
    has_alpha: bool
    dtype: np.dtype


def sniff_format(data: bytes) -> str | None:
    """The format named by the first bytes, if it is one faceprior reads (else None).

    Guards decoders that guess the format themselves (OpenCV), so that they too see only the
    documented formats.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(_PNG_SIGNATURE):
        return "PNG"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file; raise :class:`ImageError` naming the file on any problem.

    The header is checked (format, pixel count, file size) before the file is read whole, so a
    huge junk file costs nothing to refuse.
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block open() forever
            raise ImageError(f"{path}: not a regular file")
        with open(path, "rb") as stream:
            _check_file_size(os.fstat(stream.fileno()).st_size, max_pixels, str(path))
            with warnings.catch_warnings():  # decode_image records them as notes
                warnings.simplefilter("ignore")
                # The header only: format and size are refused before the file is read.
                _open_checked(stream, max_pixels, str(path))
            stream.seek(0)
            data = stream.read()
    except OSError as error:
        raise ImageError(f"{path}: cannot read file: {error.strerror or error}") from None
    image = decode_image(data, max_pixels=max_pixels, source=str(path))
    image.path = path
    return image


def _check_file_size(size: int, max_pixels: int, source: str) -> None:
    if size == 0:
        raise ImageError(f"{source}: empty file")
    limit = max_pixels * _BYTES_PER_PIXEL + _FILE_SLACK_BYTES
    if size > limit:
        raise ImageError(
            f"{source}: {size:,} bytes is more than an image of at most {max_pixels:,} pixels "
            f"can take (max_pixels); refused without reading it"
        )


def _open_checked(stream, max_pixels: int, source: str):
    """Pillow handle on ``stream`` whose format is allowed and whose size is within limits."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Pillow's own bomb limit (about 179 MP) must not undercut a larger max_pixels: ours
        # is checked right after the header is parsed, before anything is decoded.
        if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
            Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            handle = Image.open(stream, formats=INPUT_FORMATS)
        except Image.DecompressionBombError:
            raise ImageError(
                f"{source}: more than {max_pixels:,} pixels (max_pixels), refused as a possible "
                f"decompression bomb; raise max_pixels if the file is trusted"
            ) from None
        except UnidentifiedImageError:
            formats = ", ".join(INPUT_FORMATS)
            message = f"not a readable image file (unknown format or damaged; reads {formats})"
            raise ImageError(f"{source}: {message}") from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise ImageError(f"{source}: not a readable image file ({error})") from None
    width, height = handle.size
    if width < 1 or height < 1:
        handle.close()
        raise ImageError(f"{source}: the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        handle.close()
        raise ImageError(
            f"{source}: {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} (max_pixels, a guard against decompression bombs); raise the "
            f"limit if the file is trusted"
        )
    frames = getattr(handle, "n_frames", 1)
    if frames > 1:
        handle.close()
        raise ImageError(
            f"{source}: {handle.format} with {frames} frames (animation or pages); faceprior "
            f"restores still images: extract the frames first (video files go to the video "
            f"path)"
        )
    return handle


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, source: str = "<bytes>"
) -> LoadedImage:
    """Decode image bytes (see the module docstring for which decoder handles what)."""
    from PIL import Image

    if not data:
        raise ImageError(f"{source}: empty file")
    _check_file_size(len(data), max_pixels, source)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open_checked(io.BytesIO(data), max_pixels, source) as handle:
            fmt = handle.format
            if fmt == "PNG":
                _check_png_chunks(data, source)
            elif fmt == "JPEG":
                _check_jpeg_data(data, handle.size, source)
            if _bit_depth(handle, data) > 8:
                pixels = _decode_opencv(data, fmt, handle.size, source)
            else:
                pixels = _decode_pillow(handle, source)
            # After decoding: getexif() on an unloaded image decodes it and swallows errors.
            orientation, exif = _exif_without_orientation(handle, notes)
            icc = handle.info.get("icc_profile") if handle.mode != "CMYK" else None
    notes += [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]
    pixels = np.ascontiguousarray(apply_orientation(pixels, orientation))
    metadata = ImageMetadata(format=fmt, icc_profile=icc or None, exif=exif)
    return LoadedImage(pixels, metadata, notes=notes)


def _check_png_chunks(data: bytes, source: str) -> None:
    """Every chunk's CRC: a flipped byte in the pixel data must not decode as other pixels."""
    position = len(_PNG_SIGNATURE)
    while position + 8 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        end = position + 8 + length
        if end + 4 > len(data):
            raise ImageError(f"{source}: damaged or truncated image data (PNG chunk {kind!r})")
        (stored,) = struct.unpack(">I", data[end : end + 4])
        if zlib.crc32(data[position + 4 : end]) & 0xFFFFFFFF != stored:
            name = kind.decode("latin-1")
            raise ImageError(f"{source}: damaged image data (CRC error in PNG chunk {name})")
        if kind == b"IEND":
            return
        position = end + 4
    raise ImageError(f"{source}: damaged or truncated image data (no PNG IEND chunk)")


# Start-of-frame markers of Huffman-coded JPEGs (baseline, extended, progressive, lossless).
_HUFFMAN_SOF = {0xC0, 0xC1, 0xC2, 0xC3}


def _check_jpeg_data(data: bytes, size: tuple[int, int], source: str) -> None:
    """Refuse a JPEG whose coded data cannot cover the size its header claims.

    libjpeg pads data that ends early with grey and only warns, so a damaged file claiming
    9000x9000 would decode to 81 MP of grey. Every 8x8 block costs at least one bit in a
    Huffman-coded scan, which bounds the pixels a file of this size can really hold.
    """
    marker = _first_sof_marker(data)
    if marker not in _HUFFMAN_SOF:
        return  # arithmetic coding (rare) has no such bound
    blocks = -(-size[0] // 8) * -(-size[1] // 8)
    if len(data) * 8 < blocks:
        raise ImageError(
            f"{source}: damaged or truncated image data (premature end of JPEG data: "
            f"{len(data):,} bytes cannot hold {size[0]}x{size[1]} pixels)"
        )


def _first_sof_marker(data: bytes) -> int | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
        if marker == 0xFF:
            position += 1
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return None


def _exif_without_orientation(handle, notes: list[str]) -> tuple[int, bytes | None]:
    """The EXIF orientation, and the EXIF block to write with the orientation reset to 1."""
    try:
        exif = handle.getexif()
        orientation = int(exif.get(ORIENTATION_TAG, 1))
    except Exception as error:  # a damaged EXIF block must not make the pixels unreadable
        notes.append(f"damaged EXIF block ignored for the orientation ({error})")
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
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ImageError(f"{source}: damaged or truncated image data ({error})") from None
    mode = handle.mode
    if mode == "P":
        target = "RGBA" if "transparency" in handle.info else "RGB"
    elif mode in _PILLOW_MODES:
        target = _PILLOW_MODES[mode]
    else:
        raise ImageError(f"{source}: unsupported pixel mode {mode!r} (8/16-bit grey or colour)")
    return np.array(handle if mode == target else handle.convert(target))


def _decode_opencv(data: bytes, fmt: str, size: tuple[int, int], source: str) -> np.ndarray:
    import cv2

    if fmt not in _HOLDS_16_BIT or sniff_format(data) != fmt:
        raise ImageError(f"{source}: {fmt} files with more than 8 bits per sample are not read")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.shape[1::-1] != tuple(size):
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


TEMPORARY_SUFFIX = ".faceprior-tmp"


def temporary_path(path: str | os.PathLike) -> Path:
    """A fresh hidden name beside ``path`` to write it under before renaming it into place:
    ``.<name>.<pid>.<random><TEMPORARY_SUFFIX>``, which :func:`remove_stale_temporaries`
    recognises (and removes once its process is gone) and folder runs do not take for input.
    For writers that cannot hand :func:`atomic_write_bytes` their bytes (ONNX export)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write under a temporary name in the same folder, flush to disk, then rename over ``path``.

    A symlink at ``path`` is replaced, never followed. Raises :class:`OutputError` naming the
    path when the folder cannot be written (read-only, full disk, a file in the way).
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror or error}") from None
    finally:
        if temporary.exists():
            temporary.unlink()


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files that an interrupted faceprior process left in ``folder``.

    Only names of :func:`atomic_write_bytes`'s own pattern whose process is gone are removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for candidate in folder.glob(f".*{TEMPORARY_SUFFIX}"):
        parts = candidate.name[: -len(TEMPORARY_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or process_alive(int(parts[1])):
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass  # another run removed it, or it is not ours to remove
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (this one does; another user's counts as running):
    what tells a dead run's leftovers from a live one's."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
