"""What the consistency baselines (VAT, Ladder, Mean Teacher) share: batch-normalised networks
whose running averages are re-estimated over the training images before each evaluation, and
the logging of their loss terms.

Batch norm decides whether these methods work (a VAT whose unlabeled passes moved the running
averages ended near 29 % error). Each model says which passes may move them during training;
with ``bn_stats="recompute"`` (the default, as the published VAT code does after training) the
averages that validation, checkpoints and the test use are recomputed from the clean pass over
every training image (labeled and unlabeled) at the start of each validation. Training itself
normalises by batch statistics, so that recomputation never changes how the model trains.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import nn

from ssvae.errors import ConfigError
from ssvae.models.base import OptimizerFactory, SchedulerFactory, SemiSupervisedModule
from ssvae.nets import recompute_running_stats

BN_STATS = ("recompute", "running")
# Images per batch when re-estimating batch-norm statistics.
STATS_BATCH = 1000


class ConsistencyModule(SemiSupervisedModule):
    """Subclasses define ``classify``, ``loss_terms(batch) -> {"loss": ..., ...}`` and
    ``clean_passes()``: the (network, forward) pairs whose batch norm is re-estimated."""

    def __init__(
        self,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        bn_stats: str = "recompute",
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler)
        if bn_stats not in BN_STATS:
            raise ConfigError(f"model.bn_stats={bn_stats!r} is not known; allowed: {BN_STATS}")
        self.bn_stats = bn_stats

    def clean_passes(self) -> list[tuple[nn.Module, Callable[[torch.Tensor], object]]]:
        raise NotImplementedError

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch)
        n_l = len(batch["labeled"][1])
        for name, value in terms.items():
            self.log(f"train/{name}", value, batch_size=n_l)
        return self.check_finite(terms["loss"])

    def on_validation_epoch_start(self) -> None:
        if self.bn_stats == "recompute":
            inputs = training_inputs_of(self.trainer)
            if inputs is not None:
                self.recompute_batch_stats(inputs)

    def recompute_batch_stats(self, inputs: list[torch.Tensor]) -> None:
        """Re-estimate every batch norm's running averages from the clean pass over ``inputs``."""
        recompute_clean_passes(self, self.clean_passes(), inputs)


def recompute_clean_passes(
    module: SemiSupervisedModule,
    passes: list[tuple[nn.Module, Callable[[torch.Tensor], object]]],
    inputs: list[torch.Tensor],
) -> None:
    """For each (network, forward) pair, re-estimate the network's batch-norm running averages
    from ``forward`` over ``inputs``, in batches of STATS_BATCH on ``module``'s device."""
    for network, forward in passes:
        batches = (
            x.to(module.device, module.dtype)
            for x in itertools.chain.from_iterable(t.split(STATS_BATCH) for t in inputs)
        )
        recompute_running_stats(network, batches, forward)


def training_inputs_of(trainer) -> list[torch.Tensor] | None:
    """The training images of the trainer's data module (None outside such a fit)."""
    datamodule = getattr(trainer, "datamodule", None)
    reader = getattr(datamodule, "training_inputs", None)
    return reader() if reader is not None else None
