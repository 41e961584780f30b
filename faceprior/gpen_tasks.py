"""GPEN's other released tasks: colourise, inpaint and draw a face from a parsing map.

Each task is a :class:`~faceprior.models.restorer.RestorationModel` that wraps a GPEN
``FullGenerator`` with the official task's pre- and post-processing (the official
demo.py), so the photo pipeline (:class:`~faceprior.pipeline.FaceRestorer`: detect, align,
paste back) runs it on whole photos as it runs restoration; ``aligned=True`` takes the input
as one aligned face, as the official demo does.

* colourise (GPEN-Colorization-1024, which its authors call "not well trained"): the face is
  turned grey (BT.601 luma, as ``cv2.COLOR_BGR2GRAY``) before the network, and the output
  keeps the input's luminance, taking only the colour (YUV chroma) from the network, as the
  official code does whenever the sizes differ. On whole photos only the faces get colour.
* inpaint (GPEN-Inpainting-1024): missing parts are white (the official demo paints white
  brush strokes). With a ``mask`` (white = missing) those pixels are painted white first and
  the result keeps the input outside the (slightly grown, feathered) mask.
* seg2face (GPEN-Seg2face-512, ``is_norm=False``): the network takes and returns [0, 1], not
  [-1, 1]. Input is a colour-coded 19-class parsing map (:data:`MASK_COLORMAP`, RGB), a label
  map (values 0..18), or with ``parse=True`` a face photo parsed first by ParseNet.

Every task wraps the network in :class:`~faceprior.models.restorer.FirstOutputRestorer`, the
one place that converts faces to the network's value range (its ``conventions``) and back; the
tasks add only their own steps before it. The range itself is stated once, by the zoo entry of
the task's released model (:data:`TASK_MODELS`): a network loaded from a file, whose weights
cannot tell their range, is given that one (:func:`task_network`).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch import nn

from .errors import ArgumentError
from .hub.entries.gpen import TASK_MODELS
from .hub.zoo import get_entry
from .io.images import LoadedImage, join_pixels, read_image, split_pixels
from .models.psfrgan.parsing import MASK_COLORMAP, parse_labels
from .models.restorer import FirstOutputRestorer, RestorationModel, from_unit
from .pipeline import DEFAULT_DETECTOR, FaceRestorer, FaceResult, Result

TASKS = ("colorize", "inpaint", "seg2face")
# BT.601 luma, the weights of cv2.COLOR_BGR2GRAY (RGB order here).
LUMA = (0.299, 0.587, 0.114)
NUM_CLASSES = len(MASK_COLORMAP)

MaskInput = str | os.PathLike | np.ndarray


class ColorizationModel(FirstOutputRestorer):
    """Grey faces in, colour faces out: the face is made grey first, whatever its colours."""

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return super().forward(to_grey(faces))


class Seg2FaceModel(FirstOutputRestorer):
    """Colour-coded parsing maps (or photos, with a ``parser``) -> faces, both in the
    pipeline's [-1, 1]; the network's own [0, 1] (``is_norm=False``, in its conventions) is
    :class:`FirstOutputRestorer`'s to convert to."""

    def __init__(self, network: nn.Module, parser: nn.Module | None = None) -> None:
        super().__init__(network, network.conventions)
        self.parser = parser
        palette = torch.tensor(MASK_COLORMAP, dtype=torch.float32) / 255
        self.register_buffer("palette", from_unit(palette))  # class colours in [-1, 1]

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        if self.parser is not None:
            labels = parse_labels(self.parser, faces.float())
            faces = self.palette[labels].permute(0, 3, 1, 2).to(faces.dtype)
        return super().forward(faces)


def to_grey(faces: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> the same with R = G = B = BT.601 luma (range kept)."""
    weights = torch.tensor(LUMA, dtype=faces.dtype, device=faces.device).view(1, 3, 1, 1)
    return (faces * weights).sum(1, keepdim=True).expand(-1, 3, -1, -1)


def keep_luminance(colour: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """``colour``'s chroma with ``grey``'s luminance (YUV, as the official colouriser)."""
    import cv2

    yuv = cv2.cvtColor(np.ascontiguousarray(colour, np.float32), cv2.COLOR_RGB2YUV)
    yuv[..., 0] = cv2.cvtColor(np.ascontiguousarray(grey, np.float32), cv2.COLOR_RGB2YUV)[..., 0]
    return np.clip(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB), 0.0, 1.0)


def labels_from_map(rgb: np.ndarray) -> np.ndarray:
    """(H, W) class indices of a parsing map: a label map (grey values 0..18) or the nearest
    official colour of each pixel (robust to JPEG noise). ``rgb`` float32 in [0, 1]."""
    values = np.rint(rgb * 255).astype(np.int32)
    grey = (values[..., 0] == values[..., 1]).all() and (values[..., 1] == values[..., 2]).all()
    if grey and values.max() < NUM_CLASSES:
        return values[..., 0].astype(np.int64)
    palette = np.asarray(MASK_COLORMAP, np.int32)
    distance = ((values[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
    return distance.argmin(-1).astype(np.int64)


def colour_map(labels: np.ndarray) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) float32 RGB in [0, 1], the official class colours."""
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ArgumentError("labels", f"must be in 0..{NUM_CLASSES - 1}")
    return np.asarray(MASK_COLORMAP, np.float32)[labels] / 255


def read_mask(mask: MaskInput, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 in {0, 1}: 1 where the mask image is white (missing), at ``size`` (w, h)."""
    import cv2

    if not isinstance(mask, np.ndarray):
        mask = read_image(mask).pixels
    rgb, _, _ = split_pixels(mask) if mask.dtype in (np.uint8, np.uint16) else (mask, None, None)
    values = np.asarray(rgb, np.float32)
    values = values.mean(axis=2) if values.ndim == 3 else values
    if (values.shape[1], values.shape[0]) != tuple(size):
        values = cv2.resize(values, tuple(size), interpolation=cv2.INTER_NEAREST)
    return (values > 0.5).astype(np.float32)


def feathered(mask: np.ndarray) -> np.ndarray:
    """The mask grown by about 1 % of the image side and softened, for blending the fill in."""
    import cv2

    grow = max(2, round(min(mask.shape) / 100))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    grown = cv2.dilate(mask, kernel)
    return np.clip(cv2.GaussianBlur(grown, (0, 0), grow / 2), 0.0, 1.0)


class GPENTask:
    """One GPEN task with its model loaded, run on photos (or aligned faces) one at a time.

    ``task``: one of :data:`TASKS`. ``model``: zoo name, checkpoint or loaded GPEN network
    (default: the released model of the task, :data:`TASK_MODELS`). ``aligned``: inputs are
    aligned faces (the official demo's mode) instead of photos to detect faces in.
    ``upscale``: whole photos only, Lanczos. ``parse`` (seg2face): inputs are face photos,
    parsed by ``parser`` (ParseNet zoo name or file; default the PSFR-GAN parser) into the map.
    ``detector``, ``device``, ``precision``, ``offline``: as for :class:`FaceRestorer`.
    """

    def __init__(
        self,
        task: str,
        model: str | os.PathLike | nn.Module | None = None,
        aligned: bool = False,
        upscale: float = 1.0,
        parse: bool = False,
        parser: str | os.PathLike | None = None,
        detector: str | object = DEFAULT_DETECTOR,
        device: str = "cpu",
        precision: str = "fp32",
        offline: bool = False,
    ) -> None:
        if task not in TASKS:
            raise ArgumentError("task", f"must be one of {TASKS}, got {task!r}")
        if parse and task != "seg2face":
            raise ArgumentError("parse", "applies to seg2face only")
        if task == "seg2face" and not (aligned or parse):
            raise ArgumentError(
                "aligned", "must be set for seg2face on parsing maps (a map has no face to detect)"
            )
        from .checks import resolve_device
        from .hub.download import offline as offline_scope
        from .models.psfrgan.parsing import load_parser

        device = resolve_device(device)
        self.task = task
        self.aligned = aligned
        self.device = device
        with offline_scope(offline):
            network, self.model_name = _load_network(model or TASK_MODELS[task], device)
            network = task_network(task, network)
            parser_network = load_parser(parser, device=device) if parse else None
        self.model = _wrap(task, network, parser_network).eval().to(device)
        self.restorer = FaceRestorer(
            self.model,
            detector=detector,
            device=device,
            upscale=upscale,
            precision=precision,
            color_match="none",  # the input's colours are what the task replaces
            keep_grey=False,
            keep_detail=False,  # the input's detail would bring strokes/greyness back
            offline=offline,
        )
        self.restorer.model_name = self.model_name

    def run(self, image: str | os.PathLike | np.ndarray | LoadedImage, mask=None) -> Result:
        """The task on one photo or aligned face; ``mask`` (inpaint only): white = missing."""
        if mask is not None and self.task != "inpaint":
            raise ArgumentError("mask", "applies to inpaint only")
        loaded = image if isinstance(image, LoadedImage) else None
        if loaded is None:
            is_array = isinstance(image, np.ndarray)
            loaded = LoadedImage(image) if is_array else read_image(image)
        pixels = loaded.pixels
        if self.task in ("colorize", "seg2face"):  # outputs in colour whatever the input
            pixels = _as_colour_layout(pixels)
        rgb, alpha, layout = split_pixels(pixels)
        source, missing = rgb, None
        if mask is not None:
            missing = read_mask(mask, (rgb.shape[1], rgb.shape[0]))
            rgb = np.maximum(rgb, missing[..., None])  # paint the missing pixels white
            pixels = join_pixels(rgb, alpha, layout)
        start = time.perf_counter()
        if self.aligned:
            result = self._aligned(rgb, alpha, layout, loaded)
        else:
            result = self.restorer.restore(LoadedImage(pixels, loaded.metadata))
        out_rgb, out_alpha, out_layout = split_pixels(result.image)
        size = (out_rgb.shape[1], out_rgb.shape[0])
        original = _resized(source, size)
        if self.task == "colorize":
            out_rgb = keep_luminance(out_rgb, original)
        if missing is not None:
            import cv2

            blend = feathered(cv2.resize(missing, size, interpolation=cv2.INTER_NEAREST))
            out_rgb = original + blend[..., None] * (out_rgb - original)
        result.image = join_pixels(out_rgb, out_alpha, out_layout)
        result.timings["task"] = time.perf_counter() - start
        return result

    def _aligned(self, rgb, alpha, layout, loaded: LoadedImage) -> Result:
        """The official demo's path: the whole input is one face, resized to the model.

        The one face reported spans the whole input (as :meth:`FaceRestorer.restore_aligned`
        reports it), so that a report never says "no faces found" of an aligned face.
        """
        from .face.paste import resize_matrix
        from .face.stages import resize_plane, restore_batches

        size = self.model.conventions.input_size
        if self.task == "seg2face" and self.model.parser is None:
            import cv2

            labels = labels_from_map(rgb).astype(np.uint8)
            labels = cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)
            crop = colour_map(labels.astype(np.int64))
        else:
            crop = resize_plane(rgb, size)
        face = restore_batches(self.model, crop[None], 1, self.device)[0]
        height, width = rgb.shape[:2]
        if alpha is not None:
            alpha = resize_plane(alpha, face.shape[0])
        whole = FaceResult(
            np.array([0.0, 0.0, width, height]),
            None,
            np.zeros((0, 2)),
            resize_matrix(size / width, size / height),
            model=self.model_name,
        )
        return Result(
            join_pixels(face, alpha, layout), [whole], loaded.metadata, {}, (width, height), 1.0
        )


def run_task(
    task: str,
    image: str | os.PathLike | np.ndarray,
    model: str | os.PathLike | nn.Module | None = None,
    aligned: bool = False,
    mask: MaskInput | None = None,
    parse: bool = False,
    device: str = "cpu",
) -> Result:
    """One-call form of :class:`GPENTask` (loads the model every call)."""
    return GPENTask(task, model, aligned=aligned, parse=parse, device=device).run(image, mask)


def colorize(image, model=None, aligned: bool = False, device: str = "cpu") -> Result:
    """Colour the faces of a grey photo (or an aligned grey face); see :class:`GPENTask`."""
    return run_task("colorize", image, model, aligned, device=device)


def inpaint(
    image, mask: MaskInput | None = None, model=None, aligned: bool = False, device: str = "cpu"
) -> Result:
    """Fill the white (or ``mask``-ed) parts of faces; see :class:`GPENTask`."""
    return run_task("inpaint", image, model, aligned, mask=mask, device=device)


def seg2face(
    image, model=None, parse: bool = False, aligned: bool = True, device: str = "cpu"
) -> Result:
    """Draw a face from a parsing map (or, ``parse=True``, from a photo's own parsing)."""
    return run_task("seg2face", image, model, aligned, parse=parse, device=device)


def _wrap(task: str, network: nn.Module, parser: nn.Module | None) -> RestorationModel:
    if task == "colorize":
        return ColorizationModel(network, network.conventions)
    if task == "inpaint":  # faces with white holes in, filled faces out: the plain wrapper
        return FirstOutputRestorer(network, network.conventions)
    return Seg2FaceModel(network, parser)


def task_network(task: str, network: nn.Module) -> nn.Module:
    """``network`` in the value range of the task's released model (seg2face: [0, 1], the
    official ``is_norm=False``), rebuilt with it when it says otherwise: an official ``.pth``
    loaded by path cannot tell its range and comes in the default [-1, 1]."""
    released = get_entry(TASK_MODELS[task]).arguments.get("value_range", (-1.0, 1.0))
    value_range = (float(released[0]), float(released[1]))
    if network.conventions.value_range == value_range:
        return network
    rebuilt = type(network)(**{**network.arguments, "value_range": value_range})
    rebuilt.load_state_dict(network.state_dict())
    parameter = next(network.parameters())
    return rebuilt.to(device=parameter.device, dtype=parameter.dtype).eval()


def _load_network(model, device: str) -> tuple[nn.Module, str]:
    from .models.gpen import FullGenerator
    from .models.loading import load_model

    if isinstance(model, nn.Module):
        network, name = model, type(model).__name__
    else:
        network, name = load_model(model, device=device), os.path.basename(str(model))
    if not isinstance(network, FullGenerator):
        raise ArgumentError("model", f"{name}: the GPEN tasks need a GPEN FullGenerator")
    return network.eval().to(device), name


def _as_colour_layout(pixels: np.ndarray) -> np.ndarray:
    """Grey (and grey + alpha) pixels as RGB (RGBA), so that the output may hold colour."""
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if pixels.shape[2] in (1, 2):
        grey = np.repeat(pixels[..., :1], 3, axis=2)
        return grey if pixels.shape[2] == 1 else np.concatenate([grey, pixels[..., 1:]], axis=2)
    return pixels


def _resized(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return np.clip(cv2.resize(rgb, tuple(size), interpolation=cv2.INTER_LANCZOS4), 0.0, 1.0)
