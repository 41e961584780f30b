"""Panini-Net checkpoints as released (Panini-Net README).

The authors host the files on Google Drive: the README's links come first, the copies the
Colab notebook downloads second. The ``drive.usercontent`` form skips Drive's virus-scan
page, which would otherwise be saved in place of the 1.5 GB files; the recorded sizes reject
any such page. The Panini files are whole MMEditing training checkpoints (generator,
discriminator, VGG16, optimiser state); faceprior reads only the generator.
"""

from ..zoo import ZooEntry

_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="
_LICENCE = (
    "no licence file in the official repository (research use); see github.com/jianzhangcs/panini"
)

ENTRIES = [
    ZooEntry(
        name="panini-mfr",
        architecture="panini-mfr",
        filename="panini_mfr_latest.pth",
        urls=(
            _DRIVE + "1gGxbIi6oGScxvHjJvmlE4uGPKusq746F",
            _DRIVE + "1iwiWoAxNTyp3NKHQfCj0FCEX9uwX27CQ",
        ),
        licence=_LICENCE,
        description="Panini-Net multi-degradation face restoration, 512 px in, 1024 px out "
        "(synthetic degradations; weak on real photos, see docs/panini.md)",
        arguments=dict(
            in_size=512, out_size=1024, style_channels=512, rrdb_channels=8, num_rrdbs=2
        ),
        size_bytes=1_504_266_704,
        parameters=94_339_836,
        input_size=512,
        output_size=1024,
        template="ffhq",
    ),
    ZooEntry(
        name="panini-sr16x",
        architecture="panini-sr",
        filename="panini_sr_latest.pth",
        urls=(
            _DRIVE + "1o3IrG31-9tcDChL3-FTduBnrduPnKZQA",
            _DRIVE + "1ewSBfxXJmDMioGx95lLvD95l8lhgPaGU",
        ),
        licence=_LICENCE,
        description="Panini-Net 16x face super-resolution, 64 px in, 1024 px out",
        arguments=dict(
            in_size=64, out_size=1024, style_channels=512, rrdb_channels=64, num_rrdbs=23
        ),
        size_bytes=1_679_679_195,
        parameters=108_847_096,
        input_size=64,
        output_size=1024,
        template="ffhq",
    ),
    ZooEntry(
        name="panini-degradation-encoder",
        architecture="panini-degradation-encoder",
        filename="moco_checkpoint_0199.pth.tar",
        urls=(_DRIVE + "1VqFRXJGlDcn1zbT0eT7tAuclh6tgvvHA",),
        licence=_LICENCE,
        description="Panini-Net degradation representation encoder (UDRL / MoCo, epoch 200); "
        "already contained in panini-mfr",
        size_bytes=23_769_682,
        parameters=1_278_784,
        input_size=256,
    ),
]
