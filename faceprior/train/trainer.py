"""The training loop shared by every method.

Per step: ``accumulate`` micro-batches of this process' share of the global batch go to
``task.train_step``; the EMA is updated; scalars, image grids and checkpoints follow their
schedules. SIGINT/SIGTERM (or ``train.stop_after``) ends the run after the current step with a
checkpoint; ``train.resume: auto`` continues from the newest checkpoint of ``output`` and,
because the data order and all random generators are restored, reproduces the weights of
an uninterrupted run exactly (on CPU; GPU kernels may be non-deterministic).
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError, FacepriorError
from .checkpointing import latest_checkpoint, load_checkpoint, load_rng, save_checkpoint, select
from .checkpointing import set_rng_state as restore_rng
from .config import RunConfig, to_dict
from .data import StepSampler, build_dataset, collate, sample_batch
from .distributed import (
    Distributed,
    any_flag,
    average_scalars,
    broadcast_modules,
    init_distributed,
    shutdown,
)
from .logging import RunLogger
from .schedule import apply_lr_factor, lr_factor
from .task import TaskContext, TrainingTask, task_class


@dataclass
class TrainResult:
    step: int  # completed steps
    interrupted: bool  # stopped early (signal or stop_after); a checkpoint was written
    signal: int | None  # the signal number that stopped the run, if any
    checkpoint: Path | None  # the last checkpoint written
    task: TrainingTask


class _StopFlag:
    """Records SIGINT/SIGTERM instead of dying mid-step; restores the old handlers after."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopFlag:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum
        print(f"\nsignal {signum}: finishing this step, saving a checkpoint", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def pick_device(name: str, context: Distributed) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device is cuda but no CUDA device is available")
        return torch.device("cuda", context.local_rank)
    return torch.device("cpu")


def train(config: RunConfig, dataset=None) -> TrainResult:
    """Run (or resume) ``config``; ``dataset`` replaces the one ``config.data`` describes."""
    device_type = "cuda" if config.train.device != "cpu" and torch.cuda.is_available() else "cpu"
    context = init_distributed(device_type)
    try:
        return _train(config, context, dataset)
    finally:
        shutdown(context)


def _train(config: RunConfig, context: Distributed, dataset) -> TrainResult:
    cfg = config.train
    device = pick_device(cfg.device, context)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    precision = cfg.precision if device.type == "cuda" else "fp32"
    # Same seed on every rank: identical initial weights (also broadcast below).
    torch.manual_seed(config.seed)
    task = task_class(config.task)(
        config.options, TaskContext(device, context, precision, config.seed)
    )
    task.build()
    if dataset is None:
        dataset = _dataset(config)

    start_step = 0
    resume_from = _resume_path(config)
    if resume_from is not None:
        start_step = _resume(task, resume_from)
    else:
        initialise_from_config(task, config)
        _seed_per_rank(config.seed, context)
    broadcast_modules(list(task.networks.values()), context)
    if resume_from is not None:
        rng = load_rng(resume_from, context.rank)
        if rng is None:
            print(f"{resume_from}: no RNG state for rank {context.rank}", file=sys.stderr)
            _seed_per_rank(config.seed + start_step, context)
        else:
            restore_rng(rng)

    logger = RunLogger(config.output, context.is_main)
    sampler = StepSampler(
        len(dataset), start_step, cfg.steps, cfg.batch_size, cfg.accumulate, context
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=max(0, config.data.num_workers),
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        # Its own generator: the loader must not draw from the global RNG, whose restored
        # state has to reach the task untouched for an exact resume.
        generator=torch.Generator().manual_seed(config.seed),
    )
    preview = sample_batch(dataset, cfg.sample_count) if cfg.sample_every else None
    if context.is_main:
        print(
            f"task {config.task}: {len(dataset)} training samples, global batch "
            f"{cfg.batch_size * cfg.accumulate * context.world_size} "
            f"({context.world_size} process(es) x {cfg.accumulate} x {cfg.batch_size}), "
            f"steps {start_step}->{cfg.steps}, output {config.output}",
            file=sys.stderr,
        )
    progress = _progress(cfg, start_step, context)
    step = start_step
    checkpoint = None
    stopped_by = None
    interrupted = False
    batches = iter(loader)
    with _StopFlag() as stop:
        task.train(True)
        while step < cfg.steps:
            started = time.perf_counter()
            micro_batches = [next(batches) for _ in range(cfg.accumulate)]
            factor = lr_factor(cfg.lr_schedule, step, cfg.steps, cfg.lr_final)
            apply_lr_factor(task.optimizers.values(), factor)
            logs = task.train_step(micro_batches, step)
            task.after_step()
            step += 1
            if progress is not None:
                progress.update(1)
            asked = stop.signal is not None or (
                cfg.stop_after is not None and step - start_step >= cfg.stop_after
            )
            interrupted = any_flag(asked, context)
            if step % cfg.log_every == 0 or step == cfg.steps:
                logs = average_scalars(logs, context)
                logs["seconds_per_step"] = time.perf_counter() - started
                if cfg.lr_schedule != "constant":
                    logs["lr_factor"] = factor
                logger.scalars(step, logs)
                if progress is not None:
                    progress.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]})
            if preview is not None and (step % cfg.sample_every == 0 or step == cfg.steps):
                task.train(False)
                logger.images(step, task.sample(preview), cfg.sample_count)
                task.train(True)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or interrupted:
                checkpoint = save_checkpoint(
                    config.output,
                    step,
                    {"task": task.state_dict(), "step": step, "config": to_dict(config)},
                    context,
                    cfg.keep_checkpoints,
                )
            if interrupted:
                stopped_by = stop.signal
                break
    if progress is not None:
        progress.close()
    if step == cfg.steps and context.is_main:
        export(task, Path(config.output) / "export")
    logger.close()
    return TrainResult(step, interrupted, stopped_by, checkpoint, task)


def _progress(cfg, start_step: int, context: Distributed):
    if not (cfg.progress and context.is_main):
        return None
    from tqdm import tqdm

    return tqdm(total=cfg.steps, initial=start_step, unit="step", dynamic_ncols=True)


def _seed_per_rank(seed: int, context: Distributed) -> None:
    """Different noise per process (each sees different samples), reproducible per rank."""
    import random

    import numpy as np

    value = (seed * 1000003 + context.rank * 7919 + 1) % (2**31)
    torch.manual_seed(value)
    np.random.seed(value)
    random.seed(value)


def _dataset(config: RunConfig):
    """``config.data``'s dataset; a folder or file it lacks is the user's to fix, not a bug."""
    try:
        return build_dataset(config.data, config.seed)
    except FacepriorError:
        raise
    except OSError as error:
        where = f"{error.filename}: {error.strerror}" if error.filename else str(error)
        raise ConfigError(f"data (root {config.data.root}): {where}") from None
    except (ValueError, KeyError) as error:  # bad values, or a labels.tsv without a column
        raise ConfigError(f"data (root {config.data.root}): {error}") from None


def _resume(task: TrainingTask, path: Path) -> int:
    """Load ``task``'s state from checkpoint ``path``; returns the step to continue from."""
    state = load_checkpoint(path)
    try:
        task.load_state_dict(state["task"])
        return int(state["step"])
    except (KeyError, ValueError, TypeError, RuntimeError) as error:
        detail = f"no entry {error}" if isinstance(error, KeyError) else str(error)
        raise CheckpointError(
            f"train.resume: {path} does not fit this task and its options "
            f"(a checkpoint of another run?): {detail}"
        ) from None


def _resume_path(config: RunConfig) -> Path | None:
    resume = config.train.resume
    if resume == "never":
        return None
    if resume == "auto":
        return latest_checkpoint(config.output)
    path = Path(resume)
    if not path.exists():
        raise FileNotFoundError(f"train.resume: {path} does not exist")
    return path


def initialise_from_config(task: TrainingTask, config: RunConfig) -> None:
    """Apply the ``init:`` entries (e.g. a BFR decoder from a trained prior's EMA)."""
    from ..hub.checkpoint import load_state_dict_strict

    for entry in config.init:
        if entry.source == "weights":
            tensors = exported_weights(entry.checkpoint)
        else:
            tensors = select(load_checkpoint(entry.checkpoint), entry.source, entry.checkpoint)
        network, _, sub = entry.target.partition(".")
        if network not in task.networks:
            raise ValueError(f"init target {entry.target!r}: no network {network!r} in task")
        modules = [task.networks[network]]
        if network in task.emas:
            modules.append(task.emas[network].average)
        for module in modules:
            target = module.get_submodule(sub) if sub else module
            load_state_dict_strict(target, tensors, f"{entry.checkpoint}:{entry.source}")
        print(f"initialised {entry.target} from {entry.checkpoint} ({entry.source})")


def exported_weights(name_or_path: str) -> dict[str, torch.Tensor]:
    """The network state dict of an exported or zoo model (``source: weights`` in ``init:``),
    so a run can start from a shipped model such as the bundled ``gpen-offline-128``."""
    from ..hub.checkpoint import read_checkpoint, state_dict_candidates
    from ..models.loading import resolve_weights

    checkpoint = read_checkpoint(resolve_weights(name_or_path))
    for _, state_dict in state_dict_candidates(checkpoint.content):
        return dict(state_dict)
    raise CheckpointError(f"{name_or_path}: no network state dict found")


def export(task: TrainingTask, folder: Path) -> list[Path]:
    """Write each exported network as safetensors with its architecture in the header."""
    from ..hub.checkpoint import save_safetensors

    written = []
    for name, module in task.export_networks().items():
        conventions = getattr(module, "conventions", None)
        architecture = getattr(conventions, "architecture", type(module).__name__)
        arguments = getattr(module, "arguments", {})
        path = folder / f"{name}.safetensors"
        written.append(save_safetensors(module.state_dict(), path, architecture, arguments))
    return written
