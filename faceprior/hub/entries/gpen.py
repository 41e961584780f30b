"""GPEN checkpoints as released (GPEN README)."""

from ..zoo import ZooEntry

_OSS = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/"
_MODELSCOPE = (
    "https://www.modelscope.cn/api/v1/models/damo/cv_gpen_image-portrait-enhancement-hires"
    "/repo?Revision=master&FilePath="
)
_LICENCE = "no licence stated by the authors (research use); see github.com/yangxy/GPEN"

# The released model of each GPEN task besides restoration (faceprior.gpen_tasks); here, with
# the entries, so that the task commands can show their defaults without importing torch.
TASK_MODELS = {
    "colorize": "gpen-colorization-1024",
    "inpaint": "gpen-inpainting-1024",
    "seg2face": "gpen-seg2face-512",
}


def _bfr(name, filename, urls, size, cm, narrow, params, description, template="gpen"):
    return ZooEntry(
        name=name,
        architecture="gpen",
        filename=filename,
        urls=urls,
        licence=_LICENCE,
        description=description,
        arguments=dict(size=size, channel_multiplier=cm, narrow=narrow),
        parameters=params,
        input_size=size,
        output_size=size,
        template=template,
    )


ENTRIES = [
    _bfr(
        "gpen-bfr-512",
        "GPEN-BFR-512.pth",
        (_OSS + "GPEN-BFR-512.pth",),
        512,
        2,
        1.0,
        71_005_223,
        "GPEN blind face restoration, 512 px (the official default)",
    ),
    _bfr(
        "gpen-bfr-256",
        "GPEN-BFR-256.pth",
        (_OSS + "GPEN-BFR-256.pth",),
        256,
        1,
        0.5,
        18_879_010,
        "GPEN blind face restoration, 256 px (lighter and faster)",
    ),
    _bfr(
        "gpen-bfr-1024",
        "GPEN-BFR-1024.pt",
        (_MODELSCOPE + "pytorch_model.pt",),
        1024,
        2,
        1.0,
        71_210_540,
        "GPEN blind face restoration, 1024 px (ModelScope 'hires' release)",
    ),
    _bfr(
        "gpen-bfr-2048",
        "GPEN-BFR-2048.pt",
        (_MODELSCOPE + "pytorch_model-2048.pt",),
        2048,
        2,
        1.0,
        71_294_769,
        "GPEN blind face restoration, 2048 px (ModelScope 'hires' release)",
    ),
    _bfr(
        "gpen-colorization-1024",
        "GPEN-Colorization-1024.pth",
        (_OSS + "GPEN-Colorization-1024.pth",),
        1024,
        2,
        1.0,
        71_210_540,
        "GPEN face colorization, 1024 px (aligned grayscale face in)",
    ),
    _bfr(
        "gpen-inpainting-1024",
        "GPEN-Inpainting-1024.pth",
        (_OSS + "GPEN-Inpainting-1024.pth",),
        1024,
        2,
        1.0,
        71_210_540,
        "GPEN face inpainting, 1024 px (aligned face with white strokes in)",
    ),
    ZooEntry(
        name="gpen-seg2face-512",
        architecture="gpen",
        filename="GPEN-Seg2face-512.pth",
        urls=(_OSS + "GPEN-Seg2face-512.pth",),
        licence=_LICENCE,
        description="GPEN segmentation-to-face, 512 px (colour-coded parsing map in, [0, 1])",
        # is_norm=False in the official demo: the weights cannot tell, so the entry does.
        arguments=dict(size=512, channel_multiplier=2, narrow=1.0, value_range=(0.0, 1.0)),
        parameters=71_005_223,
        input_size=512,
        output_size=512,
        value_range=(0.0, 1.0),
    ),
    ZooEntry(
        name="gpen-bfr-512-discriminator",
        architecture="gpen-discriminator",
        filename="GPEN-BFR-512-D.pth",
        urls=(_OSS + "GPEN-BFR-512-D.pth",),
        licence=_LICENCE,
        description="GPEN discriminator for fine-tuning GPEN-BFR-512 (training only)",
        arguments=dict(size=512, channel_multiplier=2, narrow=1.0),
        parameters=28_982_849,
        input_size=512,
    ),
    ZooEntry(
        name="gpen-bfr-256-discriminator",
        architecture="gpen-discriminator",
        filename="GPEN-BFR-256-D.pth",
        urls=(_OSS + "GPEN-BFR-256-D.pth",),
        licence=_LICENCE,
        description="GPEN discriminator for fine-tuning GPEN-BFR-256 (training only)",
        arguments=dict(size=256, channel_multiplier=1, narrow=0.5),
        parameters=6_002_977,
        input_size=256,
    ),
]
