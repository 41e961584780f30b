"""UDRL / MoCo sanity: queue bookkeeping, momentum encoder, positives vs negatives, pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceprior.data.pairs import PAIR_SIZE, DegradationPairDataset
from faceprior.models.panini.moco import MoCo, info_nce_loss, positive_accuracy

SIZE = 16  # the DRE is fully convolutional; small images keep these tests fast


def _images(count, seed):
    return torch.rand(count, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_queue_takes_the_keys_and_wraps_around():
    torch.manual_seed(0)
    moco = MoCo(queue_size=8).eval()
    before = moco.queue.clone()
    logits = moco(_images(4, 1), _images(4, 2))
    assert logits.shape == (4, 1 + 8)
    assert int(moco.queue_ptr) == 4
    assert torch.equal(moco.queue[:, 4:], before[:, 4:])
    keys = moco.embed(moco.encoder_k, _images(4, 2))
    assert torch.allclose(moco.queue[:, :4], keys.T, atol=1e-6)
    moco(_images(4, 3), _images(4, 4))
    assert int(moco.queue_ptr) == 0
    moco(_images(4, 5), _images(4, 6), update=False)
    assert int(moco.queue_ptr) == 0
    with pytest.raises(ValueError, match="multiple"):
        moco(_images(3, 7), _images(3, 8))


def test_momentum_moves_the_key_encoder_toward_the_query_encoder():
    moco = MoCo(queue_size=8, momentum=0.9)
    key_before = [p.clone() for p in moco.encoder_k.parameters()]
    with torch.no_grad():
        for param in moco.encoder_q.parameters():
            param.add_(1.0)
    moco.momentum_update()
    for before, param_k in zip(key_before, moco.encoder_k.parameters()):
        assert torch.allclose(param_k, before + 0.1, atol=1e-5)
    assert not any(p.requires_grad for p in moco.encoder_k.parameters())


def test_positives_score_above_negatives_and_lower_the_loss():
    torch.manual_seed(0)
    moco = MoCo(queue_size=16).eval()
    images = _images(4, 1)
    for step in range(4):  # fill the queue with keys of other images
        moco(_images(4, 10 + step), _images(4, 20 + step))
    same = moco(images, images, update=False)  # the key encoder is still the query's copy
    assert torch.allclose(same[:, 0], torch.full((4,), 1 / moco.temperature), atol=1e-3)
    assert positive_accuracy(same) == 1.0
    shuffled = torch.cat([same[:, 1:2], same[:, :1], same[:, 2:]], dim=1)
    assert info_nce_loss(same) < info_nce_loss(shuffled)


def test_gradient_reaches_only_the_query_encoder():
    moco = MoCo(queue_size=8)
    info_nce_loss(moco(_images(4, 1), _images(4, 2))).backward()
    assert all(p.grad is not None for p in moco.encoder_q.parameters())
    assert all(p.grad is None for p in moco.encoder_k.parameters())


def test_state_dict_has_the_official_layout():
    keys = list(MoCo(queue_size=8).state_dict())
    assert keys[:2] == ["queue", "queue_ptr"]
    assert keys[2] == "encoder_q.E.0.weight" and len(keys) == 2 + 2 * 46


class _ReplayedNoise:
    """A recipe stub: adds seeded noise, so equal parameters give equal degradations."""

    def sample(self, rng):
        return {"seed": int(rng.integers(0, 2**31)), "sigma": float(rng.uniform(0.01, 0.2))}

    def apply(self, hq, params):
        noise = np.random.default_rng(params["seed"]).normal(0, params["sigma"], hq.shape)
        return np.clip(hq + noise, 0, 1).astype(np.float32), hq


def test_pairs_share_a_degradation_across_different_faces():
    rng = np.random.default_rng(0)
    faces = [rng.random((64, 64, 3), dtype=np.float32) for _ in range(3)]
    dataset = DegradationPairDataset(faces, _ReplayedNoise(), seed=1)
    query, key, params, partner = dataset.sample(0)
    assert partner != 0 and query.shape == (PAIR_SIZE, PAIR_SIZE, 3)
    # Same face twice: identical LQ, i.e. one degradation applied to both members.
    twins = DegradationPairDataset([faces[0], faces[0]], _ReplayedNoise(), seed=1)
    q, k, _, _ = twins.sample(0)
    assert np.array_equal(q, k)
    small = DegradationPairDataset(faces, _ReplayedNoise(), seed=1, size=48)
    assert small[0]["key"].shape == (3, 48, 48)
    # Different items draw different degradations.
    assert dataset.sample(1)[2] != params
    item = dataset[2]
    assert item["query"].shape == (3, PAIR_SIZE, PAIR_SIZE) and item["index"] == 2
    assert float(item["query"].min()) >= -1.0 and float(item["query"].max()) <= 1.0
    with pytest.raises(ValueError, match="two different faces"):
        DegradationPairDataset(faces[:1], _ReplayedNoise(), seed=1)


def test_udrl_task_step_trains_the_query_encoder_and_fills_the_queue():
    from faceprior.train.distributed import Distributed
    from faceprior.train.task import TaskContext
    from faceprior.train.tasks.udrl import UDRLOptions, UDRLTask

    torch.manual_seed(0)
    task = UDRLTask(
        UDRLOptions(queue_size=8, lr_milestones=[1]),
        TaskContext(torch.device("cpu"), Distributed()),
    )
    task.build()
    moco = task.networks["moco"]
    query_before = [p.clone() for p in moco.encoder_q.parameters()]
    logs = task.train_step([{"query": _images(4, 1), "key": _images(4, 2)}], step=0)
    assert np.isfinite(logs["info_nce"]) and 0.0 <= logs["acc_positive"] <= 1.0
    assert int(moco.queue_ptr) == 4
    assert any(not torch.equal(a, b) for a, b in zip(query_before, moco.encoder_q.parameters()))
    assert task.learning_rate(0) == pytest.approx(0.03)
    assert task.learning_rate(1) == pytest.approx(0.003)
    assert set(task.export_networks()) == {"degradation_encoder"}


def test_udrl_runs_in_the_trainer_and_exports_a_loadable_encoder(tmp_path):
    import cv2

    import faceprior
    from faceprior.models.panini.degradation_encoder import DegradationEncoder
    from faceprior.train.config import build_config
    from faceprior.train.trainer import train

    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        cv2.imwrite(str(faces / f"{index}.png"), rng.integers(0, 256, (64, 64, 3), np.uint8))
    config = build_config(
        {
            "task": "udrl",
            "options": {"queue_size": 8},
            "data": {
                "kind": "degradation-pairs",
                "root": str(faces),
                "size": 64,
                "lq_size": 32,
                "degradation": "panini-mfr",
                "num_workers": 0,
            },
            "train": {
                "steps": 2,
                "batch_size": 2,
                "device": "cpu",
                "checkpoint_every": 2,
                "sample_every": 0,
                "progress": False,
            },
            "output": str(tmp_path / "run"),
        }
    )
    result = train(config)
    assert result.step == 2
    exported = next((tmp_path / "run").rglob("degradation_encoder.safetensors"))
    assert isinstance(faceprior.load_model(exported), DegradationEncoder)
