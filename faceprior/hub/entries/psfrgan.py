"""PSFR-GAN checkpoints as released (PSFR-GAN README), GitHub release v0.1.0."""

from ..zoo import ZooEntry

_RELEASE = "https://github.com/chaofengc/PSFRGAN/releases/download/v0.1.0/"
_LICENCE = (
    "CC BY-NC-SA 4.0 (non-commercial research use) as stated by the authors; "
    "see github.com/chaofengc/PSFRGAN"
)

ENTRIES = [
    ZooEntry(
        name="psfrgan",
        architecture="psfrgan",
        filename="psfrgan_epoch15_net_G.pth",
        urls=(_RELEASE + "psfrgan_epoch15_net_G.pth",),
        licence=_LICENCE,
        description="PSFR-GAN blind face restoration, 512 px (uses the psfrgan-parsenet parser)",
        arguments=dict(out_size=512, min_feat_size=16, parse_ch=19, ch_range=[32, 1024]),
        parameters=45_956_995,
        input_size=512,
        output_size=512,
        template="ffhq",
    ),
    ZooEntry(
        name="psfrgan-parsenet",
        architecture="psfrgan-parsenet",
        filename="parse_multi_iter_90000.pth",
        urls=(_RELEASE + "parse_multi_iter_90000.pth",),
        licence=_LICENCE,
        description="PSFR-GAN ParseNet face parser, 19 CelebAMask-HQ classes, 512 px",
        arguments=dict(
            in_size=512,
            out_size=512,
            min_feat_size=32,
            base_ch=64,
            parsing_ch=19,
            res_depth=10,
            relu_type="LeakyReLU",
            norm_type="bn",
            ch_range=[32, 256],
        ),
        parameters=21_303_254,
        input_size=512,
        output_size=512,
        template="ffhq",
    ),
]
