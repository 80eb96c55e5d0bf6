"""The supervised baseline (the paper's "NN" row): M2's q(y|x) network, labeled images only."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ssvae.models.base import OptimizerFactory, SchedulerFactory, SemiSupervisedModule
from ssvae.nets import MLP, check_layer_sizes


class Supervised(SemiSupervisedModule):
    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        num_labeled: int,
        num_unlabeled: int,
        hidden_dims: Sequence[int] = (500,),
        activation: str = "softplus",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler)
        hidden = check_layer_sizes(hidden_dims, 1)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.classifier = MLP([x_dim], hidden, num_classes, activation)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        x, y = batch["labeled"]  # the unlabeled images are ignored
        loss = F.cross_entropy(self.classifier(x), y)
        self.log("train/class_nll", loss, batch_size=len(y))
        return self.check_finite(loss)
