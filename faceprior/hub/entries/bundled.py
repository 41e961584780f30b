"""Models trained by faceprior itself and shipped inside the package (no download).

Each has a model card in docs/ with its recipe, data, training time and measured results
(benchmarks/offline_model.py). All were trained on CelebA faces, so they share CelebA's terms.
"""

from ..zoo import ZooEntry

_CELEBA_TERMS = (
    "trained by faceprior on CelebA faces: non-commercial research use only (CelebA terms); "
    "see docs/{card}"
)
# The shared width of the bundled networks: 64 channels at 4-32 px, 32 at 64 px, 16 at 128 px.
_SMALL_GPEN = dict(size=128, style_dim=256, n_mlp=4, channel_multiplier=1, narrow=0.125)
# That GPEN followed by the fusion head of v4 and v5.
_SMALL_GPEN_FUSION = {**_SMALL_GPEN, "head_channels": 64, "head_blocks": 6}


def _bundled(name: str, architecture: str, description: str, arguments: dict, **pins) -> ZooEntry:
    card = f"model-card-{name}.md"
    return ZooEntry(
        name=name,
        architecture=architecture,
        filename=f"{name}.safetensors",
        urls=(),
        licence=_CELEBA_TERMS.format(card=card),
        description=description,
        arguments={**arguments, "template": "celeba"},
        input_size=128,
        output_size=128,
        template="celeba",
        bundled=True,
        **pins,
    )


ENTRIES = [
    _bundled(
        "gpen-offline-128-v5",
        "gpen-fusion",
        "v4 with its head retrained for identity and faces of every size (128 px, CelebA)",
        _SMALL_GPEN_FUSION,
        parameters=2_191_389,
        size_bytes=8_781_284,
        sha256="ce72abd30d6fa72d9a7db8b9755131c96f9a4b3d290ef8144d7e2449af6f70d9",
    ),
    _bundled(
        "gpen-offline-128-v4",
        "gpen-fusion",
        "v5's starting point: v3 with a fusion head that keeps the input's good pixels (128 px)",
        _SMALL_GPEN_FUSION,
        parameters=2_191_389,
        size_bytes=8_781_284,
        sha256="7dd6f72fc6318d5222bb5700b2d162460330676214e1997ab081e38cfdcd25c6",
    ),
    _bundled(
        "gpen-offline-128-v3",
        "gpen",
        "v4's GPEN: small GPEN fine-tuned on photo degradations, annealed (128 px, CelebA)",
        _SMALL_GPEN,
        parameters=1_655_965,
        size_bytes=6_636_412,
        sha256="660924995d9baed26c0765efd19367a89ff6885d1edc84cbda12a3c1bd231094",
    ),
    _bundled(
        "gpen-offline-128-v2",
        "gpen",
        "v3's starting point: GPEN fine-tuned on photo degradations, constant rate (128 px)",
        _SMALL_GPEN,
        parameters=1_655_965,
        size_bytes=6_636_412,
        sha256="83d9f270c798e860a6a74c42b7e784170355bb2a3949a7085d19d2c2f6ea2182",
    ),
    _bundled(
        "mmrb-offline-128",
        "gpen-mmrb",
        "MMRB-GAN (GPEN with MMRB encoder stages) trained by faceprior (128 px, CelebA)",
        {**_SMALL_GPEN, "mmrb_blocks": 1},
        parameters=1_933_358,
        size_bytes=7_755_512,
        sha256="c7660e28d9c1d4cc6578a2734f343793436e5f7b1bb30374665beb74ccde6f47",
    ),
    _bundled(
        "gpen-offline-128",
        "gpen",
        "the first bundled GPEN (GPEN's heavy training degradations; superseded by -v2)",
        _SMALL_GPEN,
        parameters=1_655_965,
        size_bytes=6_636_412,
        sha256="6551d7abbfa662a3143e9acc667589c2d7c443faeadc50aaceb1ac0ed1c55fa1",
    ),
]
