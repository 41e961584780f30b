"""Which metrics exist, what each needs, and building the ones whose weights can be found.

Weights come from faceprior itself, the ``metrics`` extra's packages or a verified download
(:mod:`faceprior.metrics.weights`); a metric whose file no source has (or that needs a file
only the user can supply) is reported as missing with the reason; it is never computed with
random weights. A file that is present but not the pinned one is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..face.types import DEFAULT_DETECTOR

# name -> (needs ground truth, columns it produces, one-line description)
METRICS: dict[str, tuple[bool, tuple[str, ...], str]] = {
    "psnr": (True, ("psnr", "psnr_y"), "PSNR in dB, RGB and BT.601 Y (higher is better)"),
    "ssim": (True, ("ssim", "ssim_y"), "SSIM, RGB mean over channels and Y (higher is better)"),
    "lpips_alex": (True, ("lpips_alex",), "LPIPS v0.1, AlexNet (lower is better)"),
    "lpips_vgg": (True, ("lpips_vgg",), "LPIPS v0.1, VGG16 (lower is better)"),
    "stlpips_alex": (True, ("stlpips_alex",), "ShiftTolerant-LPIPS, AlexNet (lower is better)"),
    "stlpips_vgg": (True, ("stlpips_vgg",), "ShiftTolerant-LPIPS, VGG16 (lower is better)"),
    "identity": (
        True,
        ("ids", "id_angle"),
        "MobileFaceNet cosine (higher) / angle in degrees (lower is better)",
    ),
    "identity_dlib": (
        True,
        ("ids_dlib", "id_dist_dlib"),
        "dlib ResNet descriptor cosine (higher) / distance (lower; < 0.6: same person)",
    ),
    "landmarks": (True, ("lmd",), "5-point landmark distance in GT pixels (lower is better)"),
    "niqe": (False, ("niqe",), "NIQE, MATLAB features and pristine model (lower is better)"),
    "fid": (False, ("fid",), "FID, TF Inception 2015-12-05, whole set (lower is better)"),
}
DEFAULT_METRICS = tuple(METRICS)


@dataclass(frozen=True)
class MetricOptions:
    """Settings and user-supplied files for the metrics (``None``: not supplied)."""

    crop_border: int = 0
    device: str = "cpu"
    lpips_alex_backbone: Path | None = None
    lpips_alex_linear: Path | None = None
    lpips_vgg_backbone: Path | None = None
    lpips_vgg_linear: Path | None = None
    identity_weights: Path | None = None
    inception_weights: Path | None = None
    niqe_model: Path | None = None
    niqe_pristine: Path | None = None
    detector: str = DEFAULT_DETECTOR
    detector_weights: Path | None = None
    offline: bool = False  # never download metric weights (packages and cache only)


class PsnrScorer:
    columns = METRICS["psnr"][1]

    def __init__(self, crop_border: int):
        self.crop_border = crop_border

    def score(self, restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        from .psnr_ssim import psnr

        return {
            "psnr": psnr(restored, gt, self.crop_border),
            "psnr_y": psnr(restored, gt, self.crop_border, y_channel=True),
        }


class SsimScorer(PsnrScorer):
    columns = METRICS["ssim"][1]

    def score(self, restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        from .psnr_ssim import ssim

        return {
            "ssim": ssim(restored, gt, self.crop_border),
            "ssim_y": ssim(restored, gt, self.crop_border, y_channel=True),
        }


class LpipsScorer:
    def __init__(self, model, name: str, device: str):
        self.model = model.to(device)
        self.columns = (name,)
        self.device = device

    def score(self, restored: np.ndarray, gt: np.ndarray) -> dict[str, float]:
        import torch

        def tensor(image: np.ndarray):
            t = torch.as_tensor(np.asarray(image, np.float32) / 127.5 - 1.0).permute(2, 0, 1)
            return t[None].to(self.device)

        with torch.no_grad():
            return {self.columns[0]: float(self.model(tensor(restored), tensor(gt))[0])}


class NiqeScorer:
    columns = METRICS["niqe"][1]

    def __init__(self, model):
        self.model = model

    def score(self, restored: np.ndarray) -> dict[str, float]:
        from .niqe import niqe

        return {"niqe": niqe(restored, self.model)}


def _lpips(options: MetricOptions, net: str):
    backbone = getattr(options, f"lpips_{net}_backbone")
    linear = getattr(options, f"lpips_{net}_linear")
    if backbone is None:
        name = "AlexNet" if net == "alex" else "VGG16"
        return None, (
            f"needs --lpips-{net}-backbone (torchvision-layout {name} ImageNet weights; the "
            f"LPIPS v0.1 linear layers ship with faceprior)"
        )
    from .lpips import load_lpips

    return LpipsScorer(load_lpips(net, backbone, linear), f"lpips_{net}", options.device), None


def _stlpips(options: MetricOptions, net: str):
    from .lpips import load_stlpips
    from .weights import MetricWeightsMissing, locate

    try:
        path = locate(f"stlpips-{net}")
    except MetricWeightsMissing as missing:
        return None, str(missing)
    return LpipsScorer(load_stlpips(net, path), f"stlpips_{net}", options.device), None


def _identity_dlib():
    from .identity_dlib import DlibIdentityScorer, missing_reason
    from .weights import MetricWeightsMissing, locate

    reason = missing_reason()
    if reason is not None:
        return None, reason
    try:
        files = locate("dlib-resnet"), locate("dlib-landmarks5")
    except MetricWeightsMissing as missing:
        return None, str(missing)
    return DlibIdentityScorer(*files), None


def _identity(options: MetricOptions):
    if options.identity_weights is None:
        return None, "needs --identity-weights (MobileFaceNet checkpoint)"
    from ..models.mobilefacenet import load_mobilefacenet
    from .identity import IdentityScorer

    return IdentityScorer(load_mobilefacenet(options.identity_weights), options.device), None


def _landmarks(options: MetricOptions):
    from .landmarks import LandmarkScorer, missing_reason

    reason = missing_reason()
    if reason is not None:
        return None, reason
    from ..face.detection import load_detector

    if options.detector_weights is None:
        return None, "needs --detector-weights (e.g. retinaface_mobilenet0.25_Final.pth)"
    detector = load_detector(
        options.detector, weights=options.detector_weights, device=options.device
    )
    return LandmarkScorer(detector), None


def _niqe(options: MetricOptions, pristine_images):
    from .niqe import PristineModel, fit_pristine, matlab_model
    from .weights import MetricWeightsMissing

    if options.niqe_model is not None:
        return NiqeScorer(PristineModel.load(options.niqe_model)), None
    if options.niqe_pristine is not None:
        return NiqeScorer(fit_pristine(pristine_images(options.niqe_pristine))), None
    try:
        return NiqeScorer(matlab_model()), None
    except MetricWeightsMissing as missing:
        return None, str(missing)


def build_scorers(options: MetricOptions, names, pristine_images) -> tuple[dict, dict[str, str]]:
    """``({name: scorer}, {name: reason missing})`` for the per-image metrics in ``names``.

    ``pristine_images(folder)`` yields RGB arrays for fitting NIQE. Reading errors of a
    supplied or found weight file propagate: a file that is there but broken (or not the
    pinned one) is an error, not a silently missing metric. ``options.offline`` forbids
    downloads while the scorers are built.
    """
    from ..hub.download import offline

    builders = {
        "psnr": lambda: (PsnrScorer(options.crop_border), None),
        "ssim": lambda: (SsimScorer(options.crop_border), None),
        "lpips_alex": lambda: _lpips(options, "alex"),
        "lpips_vgg": lambda: _lpips(options, "vgg"),
        "stlpips_alex": lambda: _stlpips(options, "alex"),
        "stlpips_vgg": lambda: _stlpips(options, "vgg"),
        "identity": lambda: _identity(options),
        "identity_dlib": _identity_dlib,
        "landmarks": lambda: _landmarks(options),
        "niqe": lambda: _niqe(options, pristine_images),
    }
    scorers, missing = {}, {}
    for name in names:
        if name not in builders:
            continue
        with offline(options.offline):
            scorer, reason = builders[name]()
        if scorer is None:
            missing[name] = reason
        else:
            scorers[name] = scorer
    return scorers, missing
