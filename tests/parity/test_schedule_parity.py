"""Warm-up and decay equal METER's: transformers' schedules as METER's ``set_schedule`` builds them
(``warmup_steps = int(max_steps × 0.1)``; polynomial decay with power 1 and end LR 0 = linear)."""

from __future__ import annotations

import pytest
import torch
from transformers import get_cosine_schedule_with_warmup, get_polynomial_decay_schedule_with_warmup

from harness.train.optim import build_scheduler, lr_factor


def _meter_curve(total: int, ratio: float, decay: str) -> list[float]:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    warmup = int(total * ratio)  # METER: int(max_steps * warmup_steps) for a float warmup_steps
    if decay == "linear":
        sched = get_polynomial_decay_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=total,
                                                          lr_end=0.0, power=1)
    else:
        sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=total)
    return [sched.lr_lambdas[0](k) for k in range(total)]


@pytest.mark.parametrize("decay", ["linear", "cosine"])
@pytest.mark.parametrize(("total", "ratio"), [(10, 0.1), (37, 0.1), (100, 0.1), (1000, 0.1), (29, 0.3), (5, 0.0)])
def test_schedule_equals_meters(total: int, ratio: float, decay: str) -> None:
    ours = [lr_factor(k, total, ratio, decay) for k in range(total)]
    assert ours == pytest.approx(_meter_curve(total, ratio, decay), abs=1e-12)


def test_first_warm_up_step_is_at_lr_zero() -> None:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    build_scheduler(opt, total_steps=100, warmup_ratio=0.1, decay="linear")
    assert opt.param_groups[0]["lr"] == 0.0  # the LR of optimizer step 0
    assert lr_factor(1, 100, 0.1, "linear") == pytest.approx(0.1) and lr_factor(10, 100, 0.1, "linear") == 1.0
