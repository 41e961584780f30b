"""Whole-photo background super-resolution: blended tiles, and the restore pipeline using it.

The network is the official RRDBNet on the realesrnet-x* parity packs' weights (the released
weights are not available here), saved to a temporary official-layout checkpoint.
"""

from __future__ import annotations

import functools
import warnings

import cv2
import numpy as np
import pytest
import torch
from conftest import load_parity_pack, shared_path

from faceprior.face.background import (
    BackgroundFallbackWarning,
    BackgroundUpsampler,
    load_background,
    zoo_name_for,
)
from faceprior.models.realesrnet import RRDBNet
from faceprior.pipeline import FaceRestorer

pytestmark = pytest.mark.usefixtures("one_thread")


@functools.cache
def _state_dict(scale: str) -> dict:
    return load_parity_pack(f"realesrnet-{scale}").torch_state_dict()


def _network(scale: str) -> RRDBNet:
    state_dict = _state_dict(scale)
    network = RRDBNet(scale=int(scale[1]), num_feat=32, num_block=23, num_grow_ch=32)
    network.load_state_dict(state_dict)
    return network.eval()


def _photo(height: int, width: int) -> np.ndarray:
    """A real photo (faces and all) shrunk to a small float32 RGB image in [0, 1]."""
    path = shared_path("data/faces/whole/CodeFormer_whole_imgs/00.jpg")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small[..., ::-1]).astype(np.float32) / 255


def _grey_levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.round(a * 255) - np.round(b * 255))


def test_tiled_agrees_with_untiled_within_two_grey_levels():
    network = _network("x2")
    photo = _photo(75, 97)  # odd sizes: padded to 76 x 98 before the network
    untiled = BackgroundUpsampler(network, tile_size=0).upsample(photo)
    tiled = BackgroundUpsampler(network, tile_size=39).upsample(photo)  # odd: rounded to 40
    assert tiled.shape == untiled.shape == (150, 194, 3)
    difference = _grey_levels(tiled, untiled)
    assert difference.max() <= 2 and difference.mean() <= 0.5, (
        difference.max(),
        difference.mean(),
    )
    # Without context and blending (as the official tiling, 10 px) the seams are far off.
    hard = BackgroundUpsampler(network, tile_size=39, tile_pad=0).upsample(photo)
    assert _grey_levels(hard, untiled).max() > 4


@pytest.mark.parametrize("tile_size", [6, 13])
def test_any_tile_size_works_for_the_x1_network(tile_size):
    """The official tiling fails for x1 whenever a window is not a multiple of 4."""
    network = _network("x1")
    photo = _photo(21, 27)
    untiled = BackgroundUpsampler(network, tile_size=0).upsample(photo)
    tiled = BackgroundUpsampler(network, tile_size=tile_size).upsample(photo)
    assert tiled.shape == untiled.shape == (21, 27, 3)
    assert _grey_levels(tiled, untiled).max() <= 2


def _checkpoint(tmp_path, scale: str):
    """The pack weights saved as the official realesrnet_x*.pth (weights under params_ema)."""
    path = tmp_path / f"realesrnet_{scale}.pth"
    torch.save({"params_ema": _state_dict(scale)}, path)
    return path


class _NoFaces:
    """A detector that finds nothing: the pipeline only upscales the photo."""

    def detect(self, bgr):
        return []


def test_restore_uses_the_network_background_and_reports_it(tmp_path):
    checkpoint = _checkpoint(tmp_path, "x2")
    photo = _photo(40, 52)
    pixels = np.round(photo * 255).astype(np.uint8)
    restorer = FaceRestorer(
        "gpen-offline-128", detector=_NoFaces(), upscale=2, background=str(checkpoint)
    )
    assert restorer.background_name == "realesrnet_x2.pth"
    result = restorer.restore(pixels)
    assert result.image.shape == (80, 104, 3) and result.image.dtype == np.uint8
    expected = restorer.background.upsample(pixels.astype(np.float32) / 255)
    assert _grey_levels(result.image / 255, expected).max() <= 1
    assert result.to_dict()["background"] == "realesrnet_x2.pth"
    lanczos = FaceRestorer("gpen-offline-128", detector=_NoFaces(), upscale=2).restore(pixels)
    assert lanczos.to_dict()["background"] == "lanczos"
    assert np.abs(lanczos.image.astype(int) - result.image).mean() > 1


def test_network_background_keeps_alpha_and_16_bits_and_other_factors(tmp_path):
    network = _network("x2")
    photo = _photo(30, 38)
    rgba = np.concatenate([photo, np.linspace(0, 1, 30 * 38).reshape(30, 38, 1)], axis=2)
    pixels = np.round(rgba * 65535).astype(np.uint16)
    restorer = FaceRestorer(
        "gpen-offline-128", detector=_NoFaces(), upscale=3, background=network, tile_size=16
    )
    result = restorer.restore(pixels)
    assert result.image.dtype == np.uint16 and result.image.shape == (90, 114, 4)
    # 16-bit precision survives: far more distinct values than 8 bits could hold.
    assert len(np.unique(result.image[..., :3])) > 256 * 4
    alpha = result.image[..., 3].astype(np.float64) / 65535
    assert abs(alpha.mean() - 0.5) < 0.02 and alpha[0].mean() < alpha[-1].mean()


def test_background_falls_back_to_lanczos_when_weights_are_unavailable():
    assert zoo_name_for(1) == "realesrnet-x1"
    assert zoo_name_for(2) == "realesrnet-x2" and zoo_name_for(1.5) == "realesrnet-x2"
    assert zoo_name_for(3) == "realesrnet-x4" and zoo_name_for(8) == "realesrnet-x4"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restorer = FaceRestorer(
            "gpen-offline-128",
            detector=_NoFaces(),
            upscale=2,
            background="realesrnet",
            offline=True,
        )
    assert any(issubclass(w.category, BackgroundFallbackWarning) for w in caught)
    assert restorer.background is None
    assert restorer.background_name == "lanczos (fallback: realesrnet-x2 unavailable)"


def test_a_missing_file_or_a_non_sr_network_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_background(str(tmp_path / "missing.pth"), 2)
    with pytest.raises(ValueError, match="RRDBNet"):
        load_background("gpen-offline-128", 2)
    with pytest.raises(ValueError, match="tile_size"):
        BackgroundUpsampler(_network("x2"), tile_size=-1)


def test_restore_command_takes_background_and_tile_size(tmp_path):
    from faceprior.cli import main

    checkpoint = _checkpoint(tmp_path, "x2")
    source = tmp_path / "corner.png"
    cv2.imwrite(str(source), np.round(_photo(24, 30)[..., ::-1] * 255).astype(np.uint8))
    out = tmp_path / "out"
    detector = shared_path("data/weights/retinaface_mobilenet0.25_Final.pth")
    arguments = [str(source), "-o", str(out), "--upscale", "2", "--quiet"]
    arguments += ["--model", "gpen-offline-128", "--detector-weights", str(detector)]
    code = main(["restore", *arguments, "--background", str(checkpoint), "--tile-size", "10"])
    assert code == 0
    written = cv2.imread(str(out / "corner.png"))
    assert written.shape == (48, 60, 3)
    assert "realesrnet_x2.pth" in (out / "faceprior-report.json").read_text()
