"""The network contract, checked for every registered architecture (docs/contributing.md).

Each architecture declares a tiny ``example`` instance in the registry. From it: the network
records its constructor arguments and names its architecture; ``detect`` recognises the state
dict and gives arguments that rebuild the same network; a safetensors round trip through
``save_model``/``load_model`` keeps every tensor; the forward pass takes the declared inputs
and returns the declared outputs. A new architecture is covered by adding its registry entry.
Zoo entries are checked against the networks their arguments build.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from faceprior.errors import ArgumentError
from faceprior.hub.zoo import entries
from faceprior.models.loading import load_model, save_model
from faceprior.models.registry import architectures, detect_architecture, get_architecture
from faceprior.models.restorer import MethodOptions, RestorationModel, RestorerOptions

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHITECTURES = [arch.name for arch in architectures()]
# Layouts whose weights cannot tell their arguments: their files must store them (safetensors).
UNDETECTABLE = {"unet": "channel widths and template are not in the tensor shapes"}


def _example(name: str) -> torch.nn.Module:
    arch = get_architecture(name)
    assert arch.example is not None, f"{name}: declare Architecture.example in its registry entry"
    torch.manual_seed(0)
    return arch.build(**arch.example).eval()


def _inputs(network: torch.nn.Module, batch: int) -> tuple[torch.Tensor, ...]:
    """Random inputs for ``forward`` as the network's conventions describe them."""
    conventions = network.conventions
    size = conventions.input_size or 32
    low, high = conventions.value_range
    generator = torch.Generator().manual_seed(batch)

    def image(channels: int) -> torch.Tensor:
        unit = torch.rand(batch, channels, size, size, generator=generator)
        return low + (high - low) * unit

    inputs = []
    for name in conventions.inputs:
        if name == "image":
            inputs.append(image(network.arguments.get("num_in_ch", 3)))
        elif name == "parse":
            inputs.append(image(network.arguments["parse_ch"]))
        elif name == "image_and_parse":
            inputs.append(image(network.arguments["in_channels"]))
        elif name == "noise":
            break  # optional: None draws fresh noise
        else:
            raise AssertionError(f"{conventions.architecture}: no example input for {name!r}")
    return tuple(inputs)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_network_names_its_architecture_and_records_its_arguments(name):
    network = _example(name)
    assert network.conventions.architecture == name
    rebuilt = get_architecture(name).build(**network.arguments)
    assert rebuilt.arguments == network.arguments
    assert network.conventions == rebuilt.conventions


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_detect_recognises_the_state_dict_with_the_same_arguments(name):
    arch = get_architecture(name)
    network = _example(name)
    state_dict = network.state_dict()
    found = [arch.detect(candidate) for _, candidate in arch.candidates(state_dict)]
    detected = next((arguments for arguments in found if arguments is not None), None)
    if name in UNDETECTABLE:
        assert detected is None
        return
    assert detected is not None, f"{name}: detect does not recognise its own state dict"
    # Every tensor shape follows from the detected arguments; those the shapes cannot tell
    # (e.g. Panini's degradation_size) are left out, never contradicted.
    shapes = {key: value.shape for key, value in network.state_dict().items()}
    assert {k: v.shape for k, v in arch.build(**detected).state_dict().items()} == shapes
    assert arch.build(**{**network.arguments, **detected}).arguments == network.arguments
    # Detection tries the registry in order (specific layouts first): this one must win.
    assert detect_architecture(state_dict)[0].name == name


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_safetensors_round_trip_keeps_every_tensor(name, tmp_path):
    network = _example(name)
    path = save_model(network, tmp_path / f"{name}.safetensors")
    loaded = load_model(path)
    assert type(loaded) is type(network)
    assert loaded.arguments == network.arguments
    assert loaded.conventions == network.conventions
    expected = network.state_dict()
    got = loaded.state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_forward_takes_the_declared_inputs_and_sizes(name):
    network = _example(name)
    conventions = network.conventions
    inputs = _inputs(network, batch=2)
    with torch.no_grad():
        outputs = network(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    declared = conventions.outputs
    assert len(outputs) == len(declared), f"{name}: {len(outputs)} outputs, declared {declared}"
    first = outputs[0]
    if declared[0] == "image":
        assert first.shape[:2] == (2, 3)
        if conventions.input_size and conventions.output_size:
            size = conventions.output_size
            assert first.shape[-2:] == (size, size)
    for output, label in zip(outputs, declared, strict=True):
        if label is None:
            assert output is None, f"{name}: an output declared empty is not None"


ZOO = sorted(
    (entry.name for entry in entries().values() if entry.architecture in ARCHITECTURES),
)


@pytest.mark.parametrize("name", ZOO)
def test_zoo_entry_agrees_with_the_network_it_builds(name):
    """A zoo entry's conventions are those of the network its arguments build (meta device)."""
    entry = entries()[name]
    arch = get_architecture(entry.architecture)
    with torch.device("meta"):
        network = arch.build(**entry.arguments)
    conventions = network.conventions
    assert conventions.architecture == entry.architecture
    assert conventions.color_order == entry.color_order
    assert tuple(conventions.value_range) == tuple(entry.value_range)
    if entry.input_size is not None:
        assert conventions.input_size == entry.input_size
    if entry.output_size is not None:
        assert conventions.output_size == entry.output_size
    if entry.template is not None:
        assert conventions.template == entry.template
    if entry.parameters is not None:
        assert sum(p.numel() for p in network.parameters()) == entry.parameters


def test_a_network_in_another_range_gets_its_faces_converted_by_the_restorer():
    """GPEN-Seg2face works in [0, 1]: the restorer converts the pipeline's [-1, 1] for it."""
    arch = get_architecture("gpen")
    network = arch.build(**arch.example, value_range=(0.0, 1.0)).eval()
    assert network.conventions.value_range == (0.0, 1.0)
    restorer = arch.restorer(network, RestorerOptions())
    faces = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        torch.manual_seed(1)
        got = restorer(faces)
        torch.manual_seed(1)
        direct = network((faces + 1) / 2)[0] * 2 - 1
    torch.testing.assert_close(got, direct)
    default = arch.build(**arch.example).eval()
    default.load_state_dict(network.state_dict())
    with torch.no_grad():
        torch.manual_seed(1)
        assert not torch.allclose(arch.restorer(default, RestorerOptions())(faces), got)


def test_a_zoo_name_fills_in_what_the_weights_cannot_tell(tmp_path, monkeypatch):
    """An official file loaded by zoo name gets the entry's stated arguments (value range)."""
    from faceprior.models import loading

    arch = get_architecture("gpen")
    network = arch.build(**arch.example)
    path = tmp_path / "official.pth"
    torch.save(network.state_dict(), path)
    monkeypatch.setattr(loading, "resolve_weights", lambda name, download=True: path)
    monkeypatch.setattr(loading, "_zoo_arguments", lambda name: {"value_range": (0.0, 1.0)})
    assert load_model("gpen-seg2face-512").conventions.value_range == (0.0, 1.0)
    monkeypatch.setattr(loading, "_zoo_arguments", lambda name: {})
    assert load_model(path).conventions.value_range == (-1.0, 1.0)


def test_no_section_references_to_unshipped_specs():
    """Comments cite the official code, papers or docs/ pages, not sections of spec files
    that do not ship with faceprior."""
    import faceprior

    root = Path(faceprior.__file__).parent
    files = [p for p in root.rglob("*") if p.suffix in (".py", ".yaml", ".md")]
    assert files
    citing = [str(p.relative_to(root)) for p in files if "§" in p.read_text(encoding="utf-8")]
    assert not citing, f"§ references in {citing}"


def test_every_top_level_module_has_a_layer():
    """A new top-level module or package must be placed in the layers `lint-imports` checks
    (.importlinter), or nothing would stop it from importing anything."""
    import pkgutil
    import re

    import faceprior

    config = (Path(__file__).parents[1] / ".importlinter").read_text(encoding="utf-8")
    layers = config.split("layers =", 1)[1].split("[", 1)[0]
    placed = set(re.findall(r"faceprior\.(\w+)", layers))
    top_level = {info.name for info in pkgutil.iter_modules(faceprior.__path__)}
    assert top_level - placed == set()


# --- Method options: every restoration method owns one dataclass of load-time knobs ---------

RESTORERS = [arch.name for arch in architectures() if arch.restorer is not None]
# Options that a method's example cannot build with their defaults alone (offline, no zoo).
_NEEDS = {"psfrgan": ("parsing_model", "psfrgan-parsenet")}


def _restorer_class(name: str) -> type[RestorationModel]:
    """The registry's ``restorer`` is ``YourRestorer.for_network`` (docs/contributing.md)."""
    factory = get_architecture(name).restorer
    owner = getattr(factory, "__self__", None)
    assert isinstance(owner, type) and issubclass(owner, RestorationModel), (
        f"{name}: register restorer=<RestorationModel subclass>.for_network"
    )
    return owner


def _requested_defaults(name: str, tmp_path: Path) -> RestorerOptions:
    if name not in _NEEDS:
        return RestorerOptions()
    knob, helper = _NEEDS[name]
    path = save_model(_example(helper), tmp_path / f"{helper}.safetensors")
    return RestorerOptions(**{knob: str(path)})


def _all_knobs() -> set[str]:
    return {f.name for name in RESTORERS for f in dataclasses.fields(_restorer_class(name).Options)}


@pytest.mark.parametrize("name", RESTORERS)
def test_method_options_are_a_frozen_dataclass_whose_defaults_build(name):
    options_type = _restorer_class(name).Options
    assert issubclass(options_type, MethodOptions) and dataclasses.is_dataclass(options_type)
    assert options_type.__dataclass_params__.frozen
    options = options_type()
    for field in dataclasses.fields(options_type):
        assert getattr(options, field.name) is None, f"{field.name}: None means 'not given'"
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(options, field.name, None)


@pytest.mark.parametrize("name", RESTORERS)
def test_method_options_refuse_a_bad_value_naming_the_knob(name):
    """Wrong types (and Panini-Net's out-of-range fidelity) fail when the options are built."""
    options_type = _restorer_class(name).Options
    for field in dataclasses.fields(options_type):
        for bad in (object(), True, [0.5]):
            with pytest.raises(ArgumentError) as raised:
                options_type(**{field.name: bad})
            assert raised.value.parameter == field.name
    if name.startswith("panini"):
        for bad in (-0.1, 1.5, float("nan")):
            with pytest.raises(ArgumentError, match=r"fidelity must lie in \[0, 1\]"):
                options_type(fidelity=bad)


@pytest.mark.parametrize("name", RESTORERS)
def test_a_knob_of_another_method_is_refused_at_load(name):
    network = _example(name)
    own = {f.name for f in dataclasses.fields(_restorer_class(name).Options)}
    for knob in sorted(_all_knobs() - own) + ["no_such_knob"]:
        with pytest.raises(ArgumentError, match=f"{knob} is not supported by {name}") as raised:
            get_architecture(name).restorer(network, RestorerOptions(**{knob: "x"}))
        assert raised.value.parameter == knob


@pytest.mark.parametrize("name", RESTORERS)
def test_baked_options_round_trip_through_json(name, tmp_path):
    """What export records (``faceprior.options``) survives JSON; the method's own knobs in it
    rebuild the options the model was loaded with."""
    restorer = get_architecture(name).restorer(_example(name), _requested_defaults(name, tmp_path))
    assert isinstance(restorer.options, _restorer_class(name).Options)
    recorded = json.loads(json.dumps(restorer.baked_options()))
    own = {f.name for f in dataclasses.fields(restorer.options)}
    recorded = {k: v for k, v in recorded.items() if k in own}
    assert dataclasses.replace(restorer.options, **recorded) == restorer.options


def test_panini_fidelity_is_validated_once_and_baked_as_given():
    network = _example("panini-sr")
    restorer = get_architecture("panini-sr").restorer(network, RestorerOptions(fidelity=1))
    assert restorer.options.fidelity == 1.0 and isinstance(restorer.options.fidelity, float)
    assert json.loads(json.dumps(restorer.baked_options())) == {"fidelity": 1.0}
    with pytest.raises(ArgumentError, match="fidelity"):
        get_architecture("panini-sr").restorer(network, RestorerOptions(fidelity=2.0))
