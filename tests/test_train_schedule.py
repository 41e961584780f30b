"""Learning-rate schedules as functions of the step (the runs they drive: test_train_resume)."""

from __future__ import annotations

import pytest
import torch

from faceprior.train.schedule import apply_lr_factor, lr_factor


def test_cosine_falls_from_one_to_the_final_fraction():
    factors = [lr_factor("cosine", step, 11, 0.1) for step in range(11)]
    assert factors[0] == pytest.approx(1.0) and factors[-1] == pytest.approx(0.1)
    assert factors[5] == pytest.approx(0.55)  # half way: the mean of the two ends
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert {lr_factor("constant", step, 11, 0.1) for step in range(11)} == {1.0}
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_factor("linear", 0, 11, 0.0)


def test_factor_scales_the_rate_each_group_was_built_with():
    weights = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([{"params": [weights], "lr": 0.5}])
    apply_lr_factor([optimizer], 0.2)
    apply_lr_factor([optimizer], 0.5)  # a factor of the initial rate, not of the current one
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)
