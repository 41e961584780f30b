"""The method-agnostic training-task interface and the registry of tasks.

A task owns what differs between methods: its networks, losses, optimisers and the order of
the optimisation phases inside one step (e.g. discriminator, then generator, with lazy
regularisation every N steps). The trainer owns what is the same for all of them: data order,
processes, precision, EMA updates, checkpoints and logs.

Writing a task (``faceprior/train/tasks/<name>.py``, then one line in :data:`TASKS`)::

    @dataclass
    class Options:                       # every knob, typed; the YAML ``options:`` section
        lr: float = 0.002

    class MyTask(TrainingTask):
        Options = Options
        def build(self):                 # create networks / optimisers / EMAs
            self.add_network("generator", Net().to(self.device))
            self.add_optimizer("generator", torch.optim.Adam(...), ["generator"])
            self.add_ema("generator", decay=0.999)
        def train_step(self, micro_batches, step):
            logs = self.accumulate("generator", micro_batches, self.generator_loss)
            self.optimizer_step("generator")
            return logs
        def sample(self, batch):         # images in [-1, 1] for the grids
            return {"lq": batch["lq"], "out": self.ema_network("generator")(batch["lq"])}

``micro_batches`` holds ``train.accumulate`` batches of ``train.batch_size`` samples each
(this process' share); :meth:`TrainingTask.accumulate` scales each loss by
``1 / len(micro_batches)`` so that the update equals one step on the whole global batch, and
:meth:`TrainingTask.optimizer_step` averages gradients over processes before stepping.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..runtime import PRECISIONS
from .distributed import Distributed, average_gradients
from .ema import EMA

# Task name -> "module:Class". Other methods add one line each.
TASKS: dict[str, str] = {
    "gpen_prior": "faceprior.train.tasks.gpen:GPENPriorTask",
    "gpen_bfr": "faceprior.train.tasks.gpen:GPENBFRTask",
    "gpen_fusion": "faceprior.train.tasks.gpen_fusion:GPENFusionTask",
    "mmrb_stage1": "faceprior.train.tasks.mmrb:MMRBStage1Task",
    "mmrb_stage2": "faceprior.train.tasks.mmrb:MMRBStage2Task",
    "udrl": "faceprior.train.tasks.udrl:UDRLTask",
    "panini_mfr": "faceprior.train.tasks.panini:PaniniMFRTask",
    "panini_sr": "faceprior.train.tasks.panini:PaniniSRTask",
    "unet_bfr": "faceprior.train.tasks.unet:UNetBFRTask",
    "psfrgan": "faceprior.train.tasks.psfrgan:PSFRGANTask",
}

Batch = dict[str, Any]
LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class NoOptions:
    """For tasks without options."""


@dataclass(frozen=True)
class TaskContext:
    """What a task needs to know about the run it is part of."""

    device: torch.device
    distributed: Distributed
    precision: str = "fp32"
    seed: int = 0


class TrainingTask:
    """Base class of every method's training logic (see the module docstring)."""

    Options: type = NoOptions

    def __init__(self, options: Any, context: TaskContext):
        if context.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {context.precision!r}")
        self.options = options
        self.context = context
        self.device = context.device
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._optimizer_networks: dict[str, list[str]] = {}
        self.emas: dict[str, EMA] = {}
        use_scaler = context.precision == "fp16" and context.device.type == "cuda"
        self._scaler_enabled = use_scaler
        self.scalers: dict[str, torch.amp.GradScaler] = {}

    # -- to implement -------------------------------------------------------------------------
    def build(self) -> None:
        """Create networks, optimisers and EMAs with the ``add_*`` helpers."""
        raise NotImplementedError

    def train_step(self, micro_batches: Sequence[Batch], step: int) -> dict[str, float]:
        """One optimisation step (all phases) on this process' share of the global batch.

        ``step`` counts completed steps (0 for the first), for lazy-regularisation schedules.
        Returns scalars to log (averaged over processes by the trainer).
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named (B, 3, H, W) images in [-1, 1] for the image grids (EMA network if any)."""
        raise NotImplementedError

    def extra_state(self) -> dict[str, Any]:
        """Task state beyond networks/optimisers/EMA (e.g. the path-length running mean)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def export_networks(self) -> dict[str, nn.Module]:
        """Networks worth exporting for inference: the EMA copy when one exists."""
        return {name: self.ema_network(name) for name in self.networks}

    # -- helpers for build() --------------------------------------------------------------------
    def add_network(self, name: str, module: nn.Module) -> nn.Module:
        if name in self.networks:
            raise ValueError(f"network {name!r} added twice")
        self.networks[name] = module.to(self.device)
        return module

    def add_optimizer(
        self, name: str, optimizer: torch.optim.Optimizer, networks: Sequence[str]
    ) -> None:
        """Register ``optimizer``; ``networks`` are those whose gradients it steps."""
        missing = [n for n in networks if n not in self.networks]
        if missing:
            raise ValueError(f"optimizer {name!r} refers to unknown networks {missing}")
        self.optimizers[name] = optimizer
        self._optimizer_networks[name] = list(networks)
        self.scalers[name] = torch.amp.GradScaler("cuda", enabled=self._scaler_enabled)

    def add_ema(self, network: str, decay: float) -> None:
        self.emas[network] = EMA(self.networks[network], decay)

    def ema_network(self, name: str) -> nn.Module:
        """The averaged copy of ``name`` when it has one, else the network itself."""
        return self.emas[name].average if name in self.emas else self.networks[name]

    # -- helpers for train_step() ---------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for forward passes (a no-op in fp32 and on CPU)."""
        if self.context.precision == "fp32" or self.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.context.precision == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def accumulate(
        self, optimizer: str, micro_batches: Sequence[Batch], loss_fn: LossFn
    ) -> dict[str, float]:
        """Backward ``loss_fn`` over all micro-batches into ``optimizer``'s gradients.

        Returns the logged values averaged over the micro-batches.
        """
        count = len(micro_batches)
        totals: dict[str, float] = {}
        for batch in micro_batches:
            loss, logs = loss_fn(batch)
            self.scalers[optimizer].scale(loss / count).backward()
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + float(value) / count
        return totals

    def optimizer_step(self, name: str) -> None:
        """Average gradients over processes, step, and clear gradients."""
        optimizer = self.optimizers[name]
        average_gradients(self.parameters_of(name), self.context.distributed)
        scaler = self.scalers[name]
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    def parameters_of(self, optimizer: str) -> Iterator[nn.Parameter]:
        for network in self._optimizer_networks[optimizer]:
            yield from self.networks[network].parameters()

    def zero_grad(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def requires_grad(module: nn.Module, flag: bool) -> None:
        for param in module.parameters():
            param.requires_grad_(flag)

    # -- called by the trainer ------------------------------------------------------------------
    def after_step(self) -> None:
        """Runs after every :meth:`train_step`: updates the EMAs."""
        for ema in self.emas.values():
            ema.update()

    def train(self, mode: bool = True) -> None:
        for module in self.networks.values():
            module.train(mode)

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {k: v.state_dict() for k, v in self.networks.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
            "ema": {k: v.state_dict() for k, v in self.emas.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for group, own in (("networks", self.networks), ("ema", self.emas)):
            _check_names(group, state[group], own)
            for name, value in state[group].items():
                own[name].load_state_dict(value)
        _check_names("optimizers", state["optimizers"], self.optimizers)
        for name, value in state["optimizers"].items():
            self.optimizers[name].load_state_dict(value)
        for name, value in state.get("scalers", {}).items():
            if name in self.scalers and value:
                self.scalers[name].load_state_dict(value)
        self.load_extra_state(state.get("extra", {}))


def _check_names(group: str, stored: dict, own: dict) -> None:
    if set(stored) != set(own):
        raise ValueError(
            f"checkpoint {group} {sorted(stored)} do not match this task's {sorted(own)}"
        )


def task_class(name: str) -> type[TrainingTask]:
    """Resolve a registered task name, or a ``module:Class`` path for out-of-tree tasks."""
    target = TASKS.get(name, name)
    if ":" not in target:
        raise ValueError(f"unknown task {name!r}; registered: {sorted(TASKS)} (or 'module:Class')")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ValueError(f"task {name!r}: cannot import {module_name!r}: {error}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, TrainingTask)):
        raise ValueError(f"task {name!r}: {target!r} is not a TrainingTask subclass")
    return cls
