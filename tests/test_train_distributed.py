"""Data parallelism and gradient accumulation give the update of one process on the global
batch: 2 gloo processes x batch 2 == 1 process x batch 4 == 1 process x 2 micro-batches of 2."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.multiprocessing as mp
from torch import nn

from faceprior.train.config import build_config
from faceprior.train.task import TrainingTask


@dataclass
class ToyOptions:
    lr: float = 0.01


class ToyDataset(torch.utils.data.Dataset):
    """Fixed random (input, target) pairs."""

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        lq = torch.randn(3, 8, 8, generator=generator)
        return {"lq": lq, "hq": torch.tanh(lq.flip(0)), "index": index}


class ToyTask(TrainingTask):
    """A conv net regressing ``hq`` from ``lq`` with Adam and an EMA."""

    Options = ToyOptions

    def build(self) -> None:
        net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
        self.add_network("net", net)
        self.add_optimizer("net", torch.optim.Adam(net.parameters(), lr=self.options.lr), ["net"])
        self.add_ema("net", 0.9)

    def _loss(self, batch):
        loss = (self.networks["net"](batch["lq"]) - batch["hq"]).pow(2).mean()
        return loss, {"loss": loss.item()}

    def train_step(self, micro_batches, step):
        logs = self.accumulate("net", micro_batches, self._loss)
        self.optimizer_step("net")
        return logs

    @torch.no_grad()
    def sample(self, batch):
        return {"lq": batch["lq"], "out": self.ema_network("net")(batch["lq"])}


def toy_config(output, batch_size: int, accumulate: int = 1, steps: int = 4):
    return build_config(
        {
            "task": "test_train_distributed:ToyTask",
            "output": str(output),
            "seed": 3,
            "data": {"num_workers": 0},
            "train": {
                "steps": steps,
                "batch_size": batch_size,
                "accumulate": accumulate,
                "log_every": 1,
                "sample_every": 0,
                "checkpoint_every": 100,
                "progress": False,
                "resume": "never",
                "threads": 1,
            },
        }
    )


def _run(config):
    from faceprior.train.trainer import train

    task = train(config, dataset=ToyDataset()).task
    return {k: v.clone() for k, v in task.networks["net"].state_dict().items()}, {
        k: v.clone() for k, v in task.emas["net"].state_dict().items()
    }


def _worker(rank: int, world: int, port: int, output: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    weights, ema = _run(toy_config(output, batch_size=2))
    torch.save({"weights": weights, "ema": ema}, os.path.join(output, f"rank{rank}.pt"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_accumulation_equals_the_whole_batch(tmp_path):
    whole, whole_ema = _run(toy_config(tmp_path / "a", batch_size=4))
    split, split_ema = _run(toy_config(tmp_path / "b", batch_size=2, accumulate=2))
    for key in whole:
        torch.testing.assert_close(split[key], whole[key], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(split_ema[key], whole_ema[key], rtol=1e-5, atol=1e-6)
    reference, _ = _run(toy_config(tmp_path / "c", batch_size=2))
    assert any(not torch.allclose(reference[k], whole[k]) for k in whole)


def test_two_gloo_processes_equal_one_process(tmp_path):
    output = tmp_path / "ddp"
    output.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(output)), nprocs=2, join=True)
    single, single_ema = _run(toy_config(tmp_path / "single", batch_size=4))
    ranks = [torch.load(output / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key in single:
        assert torch.equal(ranks[0]["weights"][key], ranks[1]["weights"][key])
        torch.testing.assert_close(ranks[0]["weights"][key], single[key], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ranks[0]["ema"][key], single_ema[key], rtol=1e-5, atol=1e-6)
    assert (output / "checkpoints" / "step-00000004" / "rng-1.pt").is_file()
