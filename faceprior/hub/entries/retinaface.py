"""Face detectors: RetinaFace (MobileNet-0.25, ResNet-50) and YuNet (see docs/detection.md).

RetinaFace weights are the biubug6/Pytorch_Retinaface release (MIT), mirrored as GitHub release
assets by facexlib (MIT) and, for ResNet-50, by GPEN. The MobileNet file's hash was checked on
the official bytes; the ResNet-50 files are pinned by the hash seen at first download.
"""

from ..zoo import ZooEntry

_FACEXLIB = "https://github.com/xinntao/facexlib/releases/download/v0.1.0/"
_GPEN_OSS = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/"
_LICENCE = "MIT (RetinaFace PyTorch release, biubug6/Pytorch_Retinaface)"


def _retinaface(
    name, architecture, filename, urls, description, size=None, sha256=None, bundled=False
):
    return ZooEntry(
        name=name,
        architecture=architecture,
        filename=filename,
        urls=urls,
        licence=_LICENCE,
        description=description,
        size_bytes=size,
        sha256=sha256,
        arguments=dict(backbone=architecture.removeprefix("retinaface-")),
        color_order="BGR",
        value_range=(0.0, 255.0),
        bundled=bundled,
    )


ENTRIES = [
    _retinaface(
        "retinaface-mobilenet0.25",
        "retinaface-mobilenet0.25",
        "detection_mobilenet0.25_Final.pth",
        (_FACEXLIB + "detection_mobilenet0.25_Final.pth",),
        "RetinaFace MobileNet-0.25 face detector with 5 landmarks (1.7 MB, fast on CPU)",
        size=1_789_735,
        sha256="2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
        # Shipped in faceprior/weights/ (with its MIT licence) so detection works offline.
        bundled=True,
    ),
    _retinaface(
        "retinaface-resnet50",
        "retinaface-resnet50",
        "detection_Resnet50_Final.pth",
        (_FACEXLIB + "detection_Resnet50_Final.pth",),
        "RetinaFace ResNet-50 face detector with 5 landmarks (more accurate, slower)",
    ),
    _retinaface(
        "retinaface-resnet50-gpen",
        "retinaface-resnet50",
        "RetinaFace-R50.pth",
        (_GPEN_OSS + "RetinaFace-R50.pth",),
        "RetinaFace ResNet-50 as shipped with GPEN (the detector of the official GPEN demo)",
    ),
    ZooEntry(
        name="yunet",
        architecture="yunet",
        filename="face_detection_yunet_2023mar.onnx",
        urls=(
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx",
        ),
        licence="MIT (OpenCV Zoo YuNet)",
        description="YuNet face detector run by OpenCV (0.2 MB ONNX, no torch needed)",
        size_bytes=232_589,
        sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        color_order="BGR",
        value_range=(0.0, 255.0),
    ),
]
