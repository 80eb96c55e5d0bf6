"""Learning-rate schedules that torch has no class for, built on its LambdaLR (stepped once per
epoch, as every scheduler config here)."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from ssvae.errors import ConfigError


def linear_decay(
    optimizer: torch.optim.Optimizer, total_epochs: int, decay_from: float = 2 / 3
) -> LambdaLR:
    """The rate constant for the first ``decay_from`` of ``total_epochs``, then falling
    linearly to zero at the last epoch (the Ladder network's schedule: 150 epochs, decayed from
    epoch 100)."""
    if not 0 <= decay_from < 1:
        raise ConfigError(f"model.scheduler.decay_from={decay_from} must be in [0, 1)")
    start = decay_from * total_epochs
    span = total_epochs - start

    def factor(epoch: int) -> float:
        return 1.0 if epoch < start else max(0.0, (total_epochs - epoch) / span)

    return LambdaLR(optimizer, factor)
