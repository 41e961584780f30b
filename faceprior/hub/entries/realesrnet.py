"""GPEN's background super-resolution networks as released (GPEN README, real_esrnet.py)."""

from ..zoo import ZooEntry

_OSS = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models/"
_LICENCE = "no licence stated by the authors (research use); see github.com/yangxy/GPEN"
_PARAMETERS = {1: 9_601_315, 2: 9_590_947, 4: 9_588_355}


def _entry(scale: int) -> ZooEntry:
    return ZooEntry(
        name=f"realesrnet-x{scale}",
        architecture="realesrnet",
        filename=f"realesrnet_x{scale}.pth",
        urls=(_OSS + f"realesrnet_x{scale}.pth",),
        licence=_LICENCE,
        description=(
            f"Real-ESRNet x{scale} from GPEN's release: whole-photo background "
            + ("clean-up at the same size" if scale == 1 else f"super-resolution x{scale}")
        ),
        arguments=dict(scale=scale, num_feat=32, num_block=23, num_grow_ch=32),
        parameters=_PARAMETERS[scale],
        value_range=(0.0, 1.0),
    )


ENTRIES = [_entry(scale) for scale in (1, 2, 4)]
