"""The bad-input corpus, library side: hostile and damaged images, arrays, checkpoints and
configs, each built inside its test. Numbers refer to the defects of issue 22.

The command-line and folder-runner cases are in test_bad_inputs_cli.py.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import faceprior
from faceprior.errors import (
    ArgumentError,
    CheckpointError,
    ConfigError,
    FacepriorError,
    InputError,
)
from faceprior.io.images import ImageError, decode_image, read_image

pytestmark = pytest.mark.usefixtures("one_thread")


def png_bytes(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def jpeg_bytes(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def noise(height: int = 32, width: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """``(offset of the chunk's data, kind)`` of every PNG chunk."""
    found, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        found.append((position + 8, data[position + 4 : position + 8]))
        position += 12 + length
    return found


def png_header(width: int, height: int, bit_depth: int = 8) -> bytes:
    """A PNG signature and IHDR claiming this size, one empty IDAT and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# 1 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 16])
def test_01_flipped_byte_in_png_pixel_data_is_refused(tmp_path, bits):
    pixels = noise(24, 24)
    if bits == 16:
        import cv2

        ok, encoded = cv2.imencode(".png", pixels.astype(np.uint16) * 257)
        data = bytearray(encoded.tobytes())
    else:
        data = bytearray(png_bytes(pixels))
    offset = next(start for start, kind in png_chunks(bytes(data)) if kind == b"IDAT")
    data[offset + 20] ^= 0x40
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="flipped.png: damaged"):
        read_image(path)


def test_01_exif_is_read_only_after_the_pixels_decoded(tmp_path):
    """getexif() before load() used to decode the image and swallow the decode error."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = bytearray(jpeg_bytes(noise(64, 64), exif=exif.tobytes()))
    path = tmp_path / "cut.jpg"
    path.write_bytes(bytes(data[: len(data) * 2 // 3]))
    with pytest.raises(ImageError, match="cut.jpg: damaged or truncated"):
        read_image(path)


# 2 -------------------------------------------------------------------------------------------
EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n(ghostscript ran) print\nshowpage\n%%EOF\n"
)


@pytest.mark.parametrize(
    "name, data",
    [
        ("photo.jpg", EPS),
        ("photo.png", b"P6\n16 16\n255\n" + bytes(16 * 16 * 3)),  # PPM: an OpenCV format
        ("photo.tif", b"PF\n4 4\n-1.0\n" + bytes(4 * 4 * 12)),  # PFM
        ("photo.webp", b"\x00\x00\x01\x00\x01\x00\x10\x10" + bytes(64)),  # ICO
    ],
)
def test_02_only_documented_formats_reach_a_decoder(tmp_path, monkeypatch, name, data):
    from PIL import EpsImagePlugin

    def forbidden(*args, **kwargs):
        raise AssertionError("Ghostscript was called")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", forbidden)
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(path)


def test_02_opencv_reader_of_the_training_data_sees_documented_formats_only(tmp_path):
    from faceprior.data.datasets import read_image as read_training_image

    path = tmp_path / "face.png"
    path.write_bytes(b"P6\n16 16\n255\n" + bytes(16 * 16 * 3))
    with pytest.raises(ValueError, match="not a JPEG, PNG"):
        read_training_image(path)


# 4 -------------------------------------------------------------------------------------------
def test_04_jpeg_claiming_more_pixels_than_its_data_is_refused_before_decoding(tmp_path):
    data = bytearray(jpeg_bytes(noise(64, 64)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 9000, 9000)  # height, width
    path = tmp_path / "claims-81mp.jpg"
    path.write_bytes(bytes(data))
    start = time.perf_counter()
    with pytest.raises(ImageError, match="premature end of JPEG data"):
        read_image(path)
    assert time.perf_counter() - start < 2.0


def test_04_a_flat_but_complete_large_jpeg_still_reads():
    flat = np.full((512, 512, 3), 128, np.uint8)
    assert decode_image(jpeg_bytes(flat, quality=10)).pixels.shape == (512, 512, 3)


# 11 ------------------------------------------------------------------------------------------
def test_11_huge_junk_file_is_refused_from_its_header(tmp_path):
    import tracemalloc

    path = tmp_path / "junk.jpg"
    with open(path, "wb") as handle:
        handle.write(b"junk" * 16)
        handle.truncate(2 << 30)  # 2 GB, sparse: costs no disk
    tracemalloc.start()
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(path, max_pixels=1_000_000_000)  # its size alone would not refuse it
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 << 20


def test_11_file_larger_than_any_allowed_image_is_not_read(tmp_path):
    path = tmp_path / "big.png"
    with open(path, "wb") as handle:
        handle.write(png_bytes(noise(8, 8)))
        handle.truncate(200 << 20)
    with pytest.raises(ImageError, match="max_pixels"):
        read_image(path, max_pixels=1_000_000)


def test_11_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(path)


# 19, 20 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def aligned_restorer():
    return faceprior.FaceRestorer("gpen-offline-128", device="cpu", reuse_memory=False)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((1, 5000, 3), np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((), np.uint8),
        np.zeros((7,), np.uint8),
        np.zeros((16, 16, 5), np.uint8),
        np.zeros((16, 16, 3), np.float64),
    ],
    ids=["1x5000", "0x0", "0-d", "1-D", "5-channels", "float64"],
)
def test_19_20_arrays_that_are_no_photo_are_refused_clearly(aligned_restorer, array):
    before = array.copy()
    with pytest.raises(InputError) as error:
        aligned_restorer.restore_aligned(array)
    assert "cv2" not in str(error.value) and "Assertion" not in str(error.value)
    assert np.array_equal(array, before)


def test_19_valid_but_one_pixel_high_png_is_refused_clearly(tmp_path, aligned_restorer):
    path = tmp_path / "line.png"
    path.write_bytes(png_bytes(noise(1, 100_000)))
    with pytest.raises(InputError, match="too small"):
        aligned_restorer.restore(path)


@pytest.mark.parametrize(
    "options, parameter",
    [
        ({"upscale": float("nan")}, "upscale"),
        ({"upscale": float("inf")}, "upscale"),
        ({"upscale": 0.5}, "upscale"),
        ({"min_face_size": float("nan")}, "min_face_size"),
        ({"min_face_size": -1}, "min_face_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"nms_threshold": float("nan")}, "nms_threshold"),
        ({"score_threshold": 2.0}, "score_threshold"),
        ({"max_pixels": 0}, "max_pixels"),
        ({"device": "bogus"}, "device"),
        ({"precision": "fp64"}, "precision"),
    ],
)
def test_20_every_numeric_argument_is_checked_before_loading(options, parameter, monkeypatch):
    from faceprior import pipeline

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(pipeline, "_load_model", no_loading)
    with pytest.raises(ArgumentError) as error:
        faceprior.FaceRestorer("gpen-offline-128", **options)
    assert error.value.parameter == parameter


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a PyTorch without a usable GPU")
def test_10_cuda_on_a_cpu_only_machine_is_a_clear_error():
    with pytest.raises(ArgumentError, match="device is 'cuda'"):
        faceprior.FaceRestorer("gpen-offline-128", device="cuda")


# 13 ------------------------------------------------------------------------------------------
def test_13_max_pixels_bounds_the_upscaled_output_too():
    restorer = faceprior.FaceRestorer(
        "gpen-offline-128", detector=object(), upscale=1e6, reuse_memory=False
    )
    with pytest.raises(InputError, match="output would have .* max_pixels"):
        restorer.restore(noise(460, 460))


# 14 ------------------------------------------------------------------------------------------
class _OneFace:
    """A detector that finds one face in the middle of a 128 x 128 photo."""

    def detect(self, image):
        from faceprior.face.types import FaceDetection

        landmarks = np.array([[50, 55], [78, 55], [64, 70], [53, 85], [75, 85]], np.float32)
        return [FaceDetection(np.array([30.0, 30, 98, 108]), 0.99, landmarks)]


def test_14_nan_weights_leave_the_face_as_it_was_and_say_so(tmp_path):
    from faceprior.models.gpen import FullGenerator

    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=1 / 16)
    with torch.no_grad():
        next(network.parameters()).fill_(float("nan"))
    path = faceprior.save_model(network, tmp_path / "nan.safetensors")
    restorer = faceprior.FaceRestorer(
        str(path), detector=_OneFace(), mask="rectangle", color_match="none", reuse_memory=False
    )
    photo = noise(128, 128)
    result = restorer.restore(photo)
    (face,) = result.faces
    assert "NaN" in face.error and result.to_dict()["faces"][0]["error"] == face.error
    assert np.isfinite(result.image).all()
    assert np.abs(result.image.astype(int) - photo).max() <= 1  # nothing black pasted


# 21 ------------------------------------------------------------------------------------------
def test_21_max_pixels_above_pillows_own_bomb_limit_is_honoured():
    data = png_header(20_000, 10_000)  # 200 MP: beyond Pillow's default 179 MP refusal
    with pytest.raises(ImageError) as refused:
        decode_image(data)
    assert "max_pixels" in str(refused.value)
    with pytest.raises(ImageError) as damaged:
        decode_image(data, max_pixels=300_000_000)
    assert "bomb" not in str(damaged.value) and "damaged" in str(damaged.value)


# 22 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["GIF", "PNG", "TIFF"])
def test_22_multi_frame_files_are_refused_not_flattened(fmt):
    frames = [Image.fromarray(noise(16, 16, seed=seed)) for seed in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="3 frames"):
        decode_image(buffer.getvalue())


def test_22_a_still_gif_reads():
    buffer = io.BytesIO()
    Image.fromarray(noise(16, 16)).convert("P").save(buffer, format="GIF")
    assert decode_image(buffer.getvalue()).pixels.shape == (16, 16, 3)


# 29 ------------------------------------------------------------------------------------------
def test_29_damaged_exif_becomes_a_note_not_a_warning(recwarn):
    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03" + bytes(8)
    image = decode_image(jpeg_bytes(noise(16, 16), exif=exif), source="bad-exif.jpg")
    assert image.pixels.shape == (16, 16, 3)
    assert image.notes, "the damaged EXIF block should be reported"
    assert not [w for w in recwarn if "EXIF" in str(w.message)]


# 7, 8, 28: checkpoints -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_gpen_tensors():
    from faceprior.models.gpen import FullGenerator

    torch.manual_seed(0)
    network = FullGenerator(64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=1 / 16)
    return network.state_dict(), dict(network.arguments)


def _safetensors(path, tensors, architecture="gpen", arguments: object = None, raw=None):
    from safetensors.torch import save_file

    metadata = {"faceprior.architecture": architecture}
    metadata["faceprior.arguments"] = raw if raw is not None else json.dumps(arguments)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: [1, 2], "must be a JSON object"),
        (lambda a: {**a, "bogus": 1}, "not take"),
        (lambda a: {**a, "size": 1048576}, "do not fit gpen|do not match the stored tensors"),
        (lambda a: {**a, "narrow": 1000}, "do not match the stored tensors"),
        (lambda a: {**a, "narrow": 2}, "do not match the stored tensors"),
        (lambda a: {**a, "size": [64]}, "do not fit gpen|do not match"),
        (lambda a: {**a, "size": {"nested": 1}}, "not plain data"),
    ],
    ids=["list", "unknown-key", "size-1M", "narrow-1000", "narrow-2", "size-list", "nested"],
)
def test_08_header_arguments_are_checked_before_any_allocation(
    tmp_path, tiny_gpen_tensors, change, message
):
    import tracemalloc

    tensors, arguments = tiny_gpen_tensors
    path = _safetensors(tmp_path / "forged.safetensors", tensors, arguments=change(arguments))
    tracemalloc.start()
    with pytest.raises(CheckpointError, match=message) as error:
        faceprior.load_model(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert str(path) in str(error.value)
    assert peak < 200 << 20


def test_08_invalid_json_in_the_header_names_the_file(tmp_path, tiny_gpen_tensors):
    path = _safetensors(tmp_path / "bad-json.safetensors", tiny_gpen_tensors[0], raw="{size: 64")
    with pytest.raises(CheckpointError, match="bad-json.safetensors.*not valid JSON"):
        faceprior.load_model(path)


def test_08_honest_header_still_loads(tmp_path, tiny_gpen_tensors):
    tensors, arguments = tiny_gpen_tensors
    path = _safetensors(tmp_path / "ok.safetensors", tensors, arguments=arguments)
    assert faceprior.load_model(path).arguments["size"] == 64


@pytest.mark.parametrize(
    "data", [b"", b"garbage" * 10, pickle.dumps({"a": 1})], ids=["empty", "garbage", "pickle"]
)
def test_07_unreadable_onnx_model_is_a_clear_error(tmp_path, data):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="model.onnx: not a readable ONNX model"):
        faceprior.load_restoration_model(path)


def test_28_random_bytes_are_called_damaged_not_dangerous(tmp_path):
    path = tmp_path / "random.pth"
    path.write_bytes(np.random.default_rng(1).bytes(4000))
    with pytest.raises(CheckpointError) as error:
        faceprior.load_model(path)
    assert "could run code" not in str(error.value) and "random.pth" in str(error.value)


def test_28_missing_keys_are_named(tmp_path, tiny_gpen_tensors):
    tensors = dict(tiny_gpen_tensors[0])
    removed = ["generator.input.input", *sorted(tensors)[10:14]]
    for key in removed:
        del tensors[key]
    path = tmp_path / "incomplete.pth"
    torch.save(tensors, path)
    with pytest.raises(CheckpointError) as error:
        faceprior.load_model(path)
    message = str(error.value)
    assert "looks like a gpen state dict" in message and "generator.input.input" in message


def test_28_whole_layer_removed_is_not_called_unknown(tmp_path, tiny_gpen_tensors):
    tensors = {k: v for k, v in tiny_gpen_tensors[0].items() if "to_rgbs.3." not in k}
    path = tmp_path / "no-last-layer.pth"
    torch.save(tensors, path)
    with pytest.raises(CheckpointError, match="looks like a gpen"):
        faceprior.load_model(path)


# 24, 25: configs -----------------------------------------------------------------------------
def test_25_billion_laughs_yaml_is_refused_quickly(tmp_path):
    from faceprior.train.config import read_yaml

    lines = ['a0: ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 10):
        lines.append(f"a{level}: [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    lines[0] = lines[0].replace("a0:", "a0: &a0", 1)
    lines = [lines[0]] + [
        line.replace(f"a{i}:", f"a{i}: &a{i}", 1) for i, line in enumerate(lines[1:], 1)
    ]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="expand to more than"):
        read_yaml(path)
    assert time.perf_counter() - start < 2.0


def test_24_binary_yaml_is_a_config_error(tmp_path):
    from faceprior.train.config import read_yaml

    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81task: x\n")
    with pytest.raises(ConfigError, match="not a text file"):
        read_yaml(path)


def test_error_family_keeps_the_builtin_bases():
    """Code written before the family (``except ValueError``) keeps catching these."""
    assert issubclass(CheckpointError, ValueError) and issubclass(CheckpointError, FacepriorError)
    assert issubclass(ConfigError, ValueError) and issubclass(InputError, ValueError)
    from faceprior.hub.download import DownloadError
    from faceprior.pipeline import ModelUnavailableError

    assert issubclass(DownloadError, RuntimeError) and issubclass(DownloadError, FacepriorError)
    assert issubclass(ModelUnavailableError, FacepriorError)
