"""UDRL: MoCo training of Panini-Net's degradation representation encoder (official moco/ code).

Batches are UDRL pairs (``{"query", "key"}``: two different faces, one degradation), made by
:func:`faceprior.train.data.build_dataset` for ``data.kind: degradation-pairs``. The
released encoder was trained with SGD (lr 0.03, momentum 0.9, weight decay 1e-4), batch 32,
200 epochs, lr x0.1 at epochs 120 and 160 (or cosine); here the schedule is in steps.
The exported network is the query encoder, which ``faceprior.load_model`` reads as
``panini-degradation-encoder`` and ``PaniniMFR.deg_encoder`` accepts as is.

Deviation, on purpose: no cross-process batch shuffle of the key encoder's BatchNorm (the
official DDP trick against BN leaking which keys are positives); keys are still gathered over
processes before they enter the queue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ...models.panini.moco import MoCo, info_nce_loss, positive_accuracy
from ..task import Batch, TrainingTask


@dataclass
class UDRLOptions:
    queue_size: int = 8192
    momentum: float = 0.999  # key-encoder EMA
    temperature: float = 0.07
    lr: float = 0.03
    sgd_momentum: float = 0.9
    weight_decay: float = 1e-4
    total_steps: int = 0  # cosine schedule length; 0 = use lr_milestones instead
    lr_milestones: list[int] = field(default_factory=list)  # steps where lr is multiplied by 0.1


class UDRLTask(TrainingTask):
    Options = UDRLOptions

    def build(self) -> None:
        opts = self.options
        moco = MoCo(opts.queue_size, opts.momentum, opts.temperature)
        self.add_network("moco", moco)
        self.add_optimizer(
            "encoder",
            torch.optim.SGD(
                moco.encoder_q.parameters(),
                lr=opts.lr,
                momentum=opts.sgd_momentum,
                weight_decay=opts.weight_decay,
            ),
            ["moco"],
        )

    def learning_rate(self, step: int) -> float:
        opts = self.options
        if opts.total_steps > 0:
            return (
                opts.lr
                * 0.5
                * (1.0 + math.cos(math.pi * min(step, opts.total_steps) / opts.total_steps))
            )
        return opts.lr * 0.1 ** sum(step >= milestone for milestone in opts.lr_milestones)

    def _loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        with self.autocast():
            logits = self.networks["moco"](
                batch["query"].to(self.device), batch["key"].to(self.device)
            )
        loss = info_nce_loss(logits.float())
        return loss, {"info_nce": float(loss.detach()), "acc_positive": positive_accuracy(logits)}

    def train_step(self, micro_batches: Sequence[Batch], step: int) -> dict[str, float]:
        for group in self.optimizers["encoder"].param_groups:
            group["lr"] = self.learning_rate(step)
        logs = self.accumulate("encoder", micro_batches, self._loss)
        self.optimizer_step("encoder")
        return logs

    @torch.no_grad()
    def sample(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"query": batch["query"], "key": batch["key"]}

    def export_networks(self) -> dict[str, torch.nn.Module]:
        return {"degradation_encoder": self.networks["moco"].encoder_q}
