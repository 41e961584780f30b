"""Whole-photo super-resolution for the background the restored faces are pasted onto.

GPEN's ``--use_sr`` runs a Real-ESRNet (:class:`~faceprior.models.realesrnet.RRDBNet`) on the
photo instead of resizing it (official real_esrnet.py). :class:`BackgroundUpsampler` does
what the official ``RealESRNet.process`` does (reflect padding at the bottom/right to the
network's input multiple, the network, crop, clamp) on float32 RGB in [0, 1], so 16-bit
photos keep their precision.

Large photos are cut into tiles so that memory stays bounded. The official tiling gives each
tile 10 px of context and pastes them edge to edge, which leaves seams (up to 0.02 off the
untiled result) and fails outright for many tile sizes of the x1/x2 networks. Here every tile
window is aligned to the input multiple, gets ``tile_pad`` px of context on each inner side,
and neighbouring tiles are cross-faded over ``tile_pad`` px around their boundary, so the
tiled result stays within a grey level or two of the untiled one for any tile size.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np

from ..errors import ArgumentError

# Tile side (input pixels) above which a photo is cut into tiles: a 512 x 512 x2 tile with its
# context needs about 1 GB in fp32 (benchmarks/background_sr.md); 0 never tiles.
DEFAULT_TILE_SIZE = 512
# Context around each tile in trunk pixels (input pixels / the network's unshuffle factor: the
# trunk of x1 runs at a quarter of the input resolution, x2 at half). 16 keeps tiled within a
# grey level or two of untiled (tests/test_realesrnet_background.py); the official code gives
# 10 input pixels, i.e. 2.5 trunk pixels for x1.
DEFAULT_TRUNK_CONTEXT = 16
BACKGROUNDS = ("lanczos", "realesrnet")
ZOO_SCALES = (1, 2, 4)


class BackgroundFallbackWarning(UserWarning):
    """The super-resolution weights were unavailable: the background was resized with Lanczos."""


class BackgroundUpsampler:
    """Runs an RRDBNet over whole photos, untiled or in blended tiles.

    ``tile_size``: tiles of at most this many input pixels per side (rounded up to the
    network's input multiple); 0 runs the whole photo at once. ``tile_pad``: context on each
    side of a tile in input pixels, also the width of the cross-fade between tiles (default:
    16 trunk pixels: 64 for x1, 32 for x2, 16 for x4). ``precision``:
    ``fp32`` or ``bf16``/``fp16`` autocast (see :func:`faceprior.runtime.autocast`).
    """

    def __init__(
        self,
        network,
        tile_size: int = DEFAULT_TILE_SIZE,
        tile_pad: int | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        name: str = "",
    ) -> None:
        from ..models.realesrnet import RRDBNet
        from ..runtime import check_precision

        if not isinstance(network, RRDBNet):
            raise ArgumentError(
                "background", f"must be a super-resolution RRDBNet, got {type(network).__name__}"
            )
        if tile_size < 0:
            raise ArgumentError("tile_size", f"must be >= 0 (0: no tiles), got {tile_size}")
        if tile_pad is None:
            tile_pad = DEFAULT_TRUNK_CONTEXT * network.input_multiple
        if tile_pad < 0:
            raise ArgumentError("tile_pad", f"must be >= 0, got {tile_pad}")
        check_precision(precision, device)
        self.network = network.eval().to(device)
        self.tile_size = int(tile_size)
        self.tile_pad = int(tile_pad)
        self.device = device
        self.precision = precision
        self.name = name or f"realesrnet-x{network.scale}"

    @property
    def scale(self) -> int:
        return self.network.scale

    def upsample(self, rgb: np.ndarray, official_size: bool = False) -> np.ndarray:
        """(H, W, 3) float32 RGB in [0, 1] -> (scale*H, scale*W, 3), clamped to [0, 1].

        ``official_size``: crop as the official ``process()`` does, which for x2 keeps one row
        (column) of the mirrored padding when H (W) is odd, giving 2H+1; by default the output
        is exactly ``scale`` times the input, the geometry paste-back relies on.
        """
        output = self.network_output(rgb)
        height, width = rgb.shape[:2]
        multiple, scale = self.network.input_multiple, self.scale
        if official_size:
            height_pad, width_pad = (-height) % multiple, (-width) % multiple
            rows, columns = output.shape[0] - height_pad, output.shape[1] - width_pad
        else:
            rows, columns = scale * height, scale * width
        return np.clip(output[:rows, :columns], 0.0, 1.0)

    def network_output(self, rgb: np.ndarray) -> np.ndarray:
        """The network's unclamped output on the reflect-padded photo, (sHp, sWp, 3) float32."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ArgumentError("image", f"must be (H, W, 3) RGB, got shape {rgb.shape}")
        padded = pad_to_multiple(np.asarray(rgb, np.float32), self.network.input_multiple)
        height, width = padded.shape[:2]
        tile = self._tile_side()
        if tile == 0 or (height <= tile and width <= tile):
            return self._run(padded)
        return self._tiled(padded, tile)

    def _tile_side(self) -> int:
        multiple = self.network.input_multiple
        return math.ceil(self.tile_size / multiple) * multiple

    def _run(self, window: np.ndarray) -> np.ndarray:
        import torch

        from ..runtime import autocast

        tensor = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1)))[None]
        with torch.inference_mode(), autocast(self.precision, self.device):
            output = self.network(tensor.to(self.device))
        return output[0].float().permute(1, 2, 0).cpu().numpy()

    def _tiled(self, padded: np.ndarray, tile: int) -> np.ndarray:
        multiple, scale = self.network.input_multiple, self.scale
        pad = math.ceil(self.tile_pad / multiple) * multiple
        height, width = padded.shape[:2]
        rows = [_window(start, tile, pad, height) for start in range(0, height, tile)]
        columns = [_window(start, tile, pad, width) for start in range(0, width, tile)]
        row_weights = [_ramp(a, b, pad, height, scale) for a, b in rows]
        column_weights = [_ramp(a, b, pad, width, scale) for a, b in columns]
        output = np.zeros((height * scale, width * scale, 3), np.float32)
        for (top, bottom), row_weight in zip(rows, row_weights, strict=True):
            for (left, right), column_weight in zip(columns, column_weights, strict=True):
                result = self._run(padded[top:bottom, left:right])
                weight = row_weight[:, None, None] * column_weight[None, :, None]
                rows_out = slice(top * scale, bottom * scale)
                output[rows_out, left * scale : right * scale] += result * weight
        # Each tile's weight is a row ramp times a column ramp, so the total is separable too.
        total_rows = _total(rows, row_weights, height * scale, scale)
        total_columns = _total(columns, column_weights, width * scale, scale)
        output /= total_rows[:, None, None] * total_columns[None, :, None]
        return output


def _window(start: int, tile: int, pad: int, length: int) -> tuple[int, int]:
    """Input span of the tile starting at ``start`` with ``pad`` px of context on each side."""
    return max(start - pad, 0), min(start + tile + pad, length)


def _ramp(first: int, last: int, pad: int, length: int, scale: int) -> np.ndarray:
    """Per output pixel weight of a window: 0 near its inner edges, 1 in its core.

    The core (``pad`` px inside each inner edge) meets the neighbouring core there; the two
    tiles cross-fade linearly over ``pad`` px centred on that boundary, so their weights sum
    to one and no pixel that counts has less than ``pad / 2`` px of context. Edges on the
    photo's border need no fade: the untiled run has no context there either.
    """
    position = (np.arange((last - first) * scale, dtype=np.float64) + 0.5) / scale
    weight = np.ones_like(position)
    if pad > 0 and first > 0:
        weight = np.minimum(weight, np.clip((position - pad / 2) / pad, 0.0, 1.0))
    if pad > 0 and last < length:
        weight = np.minimum(weight, np.clip((last - first - pad / 2 - position) / pad, 0.0, 1.0))
    return weight.astype(np.float32)


def _total(windows, weights, size: int, scale: int) -> np.ndarray:
    total = np.zeros(size, np.float32)
    for (first, last), weight in zip(windows, weights, strict=True):
        total[first * scale : last * scale] += weight
    return total


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Mirror the bottom rows and right columns (without repeating the edge) up to a multiple.

    The official ``F.pad(..., "reflect")``; numpy's ``reflect`` also covers images smaller than
    the padding, where torch refuses.
    """
    height_pad, width_pad = (-image.shape[0]) % multiple, (-image.shape[1]) % multiple
    if not (height_pad or width_pad):
        return image
    return np.pad(image, ((0, height_pad), (0, width_pad), (0, 0)), mode="reflect")


def upscale_photo(
    rgb: np.ndarray, size: tuple[int, int], upsampler: BackgroundUpsampler | None
) -> np.ndarray:
    """The photo at ``size`` (width, height): by the network then resized if its scale differs,
    or by Lanczos alone without an upsampler. Float32 RGB in [0, 1] in and out."""
    import cv2

    if upsampler is not None:
        rgb = upsampler.upsample(rgb)
    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    shrink = size[0] < rgb.shape[1] and size[1] < rgb.shape[0]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4
    return np.clip(cv2.resize(rgb, size, interpolation=interpolation), 0.0, 1.0)


def zoo_name_for(upscale: float) -> str:
    """The released Real-ESRNet for a photo upscale: the smallest scale >= it (x4 at most)."""
    scale = next((s for s in ZOO_SCALES if s >= upscale), ZOO_SCALES[-1])
    return f"realesrnet-x{scale}"


def load_background(
    background,
    upscale: float,
    tile_size: int = DEFAULT_TILE_SIZE,
    device: str = "cpu",
    precision: str = "fp32",
) -> tuple[BackgroundUpsampler | None, str]:
    """``(upsampler or None for Lanczos, what the report calls the background)``.

    ``background``: ``"lanczos"``; ``"realesrnet"`` (the released network for ``upscale``,
    see :func:`zoo_name_for`); a zoo name or checkpoint path of an RRDBNet; a loaded
    ``RRDBNet`` or :class:`BackgroundUpsampler`. When the weights of a zoo network cannot be
    had (offline, download failed), the photo is resized with Lanczos and a
    :class:`BackgroundFallbackWarning` says so; a missing or wrong local file is an error.
    """
    from torch import nn

    if isinstance(background, BackgroundUpsampler):
        return background, background.name
    if isinstance(background, nn.Module):
        upsampler = BackgroundUpsampler(background, tile_size, device=device, precision=precision)
        return upsampler, upsampler.name
    spec = str(background)
    if spec == "lanczos":
        return None, "lanczos"
    name = zoo_name_for(upscale) if spec == "realesrnet" else spec
    network = _load_network(name, device)
    if network is None:
        return None, f"lanczos (fallback: {name} unavailable)"
    upsampler = BackgroundUpsampler(network, tile_size, device=device, precision=precision)
    upsampler.name = name if _is_zoo_name(name) else os.path.basename(name)
    return upsampler, upsampler.name


def _is_zoo_name(name: str) -> bool:
    from ..hub.zoo import entries

    return name in entries()


def _load_network(name: str, device: str):
    """The RRDBNet of a zoo name or file; ``None`` (with a warning) when a zoo download fails."""
    from ..errors import DownloadError
    from ..models.loading import load_model
    from ..models.realesrnet import RRDBNet

    try:
        network = load_model(name, device=device)
    except (DownloadError, OSError) as error:
        if not _is_zoo_name(name) or os.path.exists(name):
            raise
        reason = " ".join(line.strip() for line in str(error).splitlines()[:2])
        warnings.warn(
            f"background {name} is unavailable ({reason}); the photo is upscaled with Lanczos",
            BackgroundFallbackWarning,
            stacklevel=3,
        )
        return None
    if not isinstance(network, RRDBNet):
        raise ArgumentError(
            "background",
            f"{name}: expected a super-resolution RRDBNet (Real-ESRNet), found "
            f"{network.conventions.architecture}",
        )
    return network
