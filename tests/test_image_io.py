"""faceprior.io.images: lossless round trips of real photos, and clear errors for bad files."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from conftest import shared_path
from PIL import Image, ImageCms, ImageOps

from faceprior.io.images import (
    ImageError,
    ImageMetadata,
    decode_image,
    join_pixels,
    read_image,
    split_pixels,
    write_image,
)

MAKE_TAG = 0x010F


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo, RGB uint8, small enough to keep the tests fast."""
    bgr = cv2.imread(str(shared_path("data/faces/whole/facexlib/test.jpg")))
    return np.ascontiguousarray(
        cv2.resize(bgr, (160, 200), interpolation=cv2.INTER_AREA)[..., ::-1]
    )


def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(make: str, orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE_TAG] = make
    exif[0x0112] = orientation
    return exif


def test_png_keeps_pixels_icc_and_exif(tmp_path, photo):
    source = tmp_path / "in.png"
    icc = _srgb_profile()
    Image.fromarray(photo).save(source, icc_profile=icc, exif=_exif("faceprior-test"))
    image = read_image(source)
    assert image.pixels.dtype == np.uint8 and np.array_equal(image.pixels, photo)
    assert image.metadata.icc_profile == icc
    out = write_image(tmp_path / "out.png", image.pixels, image.metadata)
    again = read_image(out)
    assert np.array_equal(again.pixels, photo)
    assert again.metadata.icc_profile == icc
    assert Image.open(out).getexif()[MAKE_TAG] == "faceprior-test"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_and_reset(tmp_path, photo, orientation):
    source = tmp_path / f"rot{orientation}.jpg"
    Image.fromarray(photo).save(source, quality=95, exif=_exif("cam", orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(source)))
    image = read_image(source)
    assert image.pixels.shape == expected.shape
    assert np.array_equal(image.pixels, expected)
    out = write_image(tmp_path / "out.jpg", image.pixels, image.metadata)
    exif = Image.open(out).getexif()
    assert exif.get(0x0112, 1) == 1 and exif[MAKE_TAG] == "cam"


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_stays_16_bit(tmp_path, photo, suffix, channels):
    rng = np.random.default_rng(0)
    wide = photo.astype(np.uint16) * 257 + rng.integers(0, 257, photo.shape, dtype=np.uint16)
    if channels == 1:
        wide = wide[..., 1]
    elif channels == 4:
        alpha = np.linspace(0, 65535, wide.shape[1]).astype(np.uint16)
        wide = np.dstack([wide, np.broadcast_to(alpha, wide.shape[:2])])
    source = tmp_path / f"in{suffix}"
    bgr = wide if channels == 1 else wide[..., [2, 1, 0, 3][:channels]]
    assert cv2.imwrite(str(source), bgr)
    image = read_image(source)
    assert image.pixels.dtype == np.uint16 and np.array_equal(image.pixels, wide)
    out = write_image(tmp_path / f"out{suffix}", image.pixels, image.metadata)
    assert np.array_equal(read_image(out).pixels, wide)


def test_16_bit_png_gets_icc_and_exif_chunks(tmp_path, photo):
    wide = photo.astype(np.uint16) * 257
    icc = _srgb_profile()
    metadata = ImageMetadata(icc_profile=icc, exif=_exif("wide").tobytes())
    out = write_image(tmp_path / "wide.png", wide, metadata)
    with Image.open(out) as handle:
        assert handle.info["icc_profile"] == icc
        assert handle.getexif()[MAKE_TAG] == "wide"
    image = read_image(out)
    assert image.pixels.dtype == np.uint16 and np.array_equal(image.pixels, wide)
    assert image.metadata.icc_profile == icc


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_grey_and_alpha_round_trip(tmp_path, photo, mode):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    pixels = {"L": grey, "LA": np.dstack([grey, alpha]), "RGBA": np.dstack([photo, alpha])}[mode]
    source = tmp_path / "in.png"
    Image.fromarray(pixels).save(source)
    image = read_image(source)
    assert np.array_equal(image.pixels, pixels)
    out = write_image(tmp_path / "out.webp" if mode == "RGBA" else tmp_path / "out.png", pixels)
    back = read_image(out).pixels
    assert back.shape == pixels.shape
    if mode == "RGBA":  # lossy WebP colour, exact alpha
        assert np.array_equal(back[..., 3], alpha)
    else:
        assert np.array_equal(back, pixels)


def test_split_join_is_exact(photo):
    wide = photo.astype(np.uint16) * 257 + 3
    alpha = np.full(photo.shape[:2], 77, np.uint8)
    grey = photo[..., 0]
    for pixels in (photo, wide, grey, np.dstack([photo, alpha]), np.dstack([grey, alpha])):
        rgb, alpha_plane, layout = split_pixels(pixels)
        assert rgb.dtype == np.float32 and rgb.shape == pixels.shape[:2] + (3,)
        assert np.array_equal(join_pixels(rgb, alpha_plane, layout), pixels)


def test_writer_refuses_to_drop_alpha_or_bits(tmp_path, photo):
    rgba = np.dstack([photo, photo[..., 0]])
    with pytest.raises(ImageError, match="alpha"):
        write_image(tmp_path / "x.jpg", rgba)
    with pytest.raises(ImageError, match="16-bit"):
        write_image(tmp_path / "x.jpg", photo.astype(np.uint16))
    with pytest.raises(ImageError, match="cannot write"):
        write_image(tmp_path / "x.gif", photo)
    assert not list(tmp_path.iterdir())


def test_atomic_write_leaves_no_temporary_files(tmp_path, photo):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    write_image(target, photo)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert np.array_equal(read_image(target).pixels, photo)


def _huge_png_header(width: int, height: int) -> bytes:
    """A PNG that claims enormous dimensions: decoding it would need gigabytes."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_bad_files_give_clear_errors(tmp_path, photo):
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    cases = {
        "empty.jpg": (b"", "empty file"),
        "noise.jpg": (np.random.default_rng(1).bytes(4000), "not a readable image"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "bomb.png": (_huge_png_header(100_000, 100_000), "decompression bomb"),
        "wide.png": (_huge_png_header(20_000, 6_000), "exceeds the limit"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImageError, match=message) as caught:
            read_image(path)
        assert name in str(caught.value)
    with pytest.raises(ImageError, match="cannot read file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="exceeds the limit of 1,000"):
        decode_image(jpeg, max_pixels=1000)
