"""Mean Teacher (Tarvainen & Valpola 2017, "Mean teachers are better role models"), and its
Pi-model variant (Laine & Aila 2017, "Temporal Ensembling for Semi-Supervised Learning").

    loss = mean_labeled CE(y, f_student(x + noise))
           + w(t) * mean_all sum_k (p_student(k | x + noise) - p_teacher(k | x + noise'))^2
    teacher weights after each step:  theta' <- a theta' + (1 - a) theta,
        a = min(1 - 1 / (step + 1), ema_decay)   (the average starts at the first steps' weights)
    w(t) = consistency_weight * exp(-5 (1 - t)^2) over the first rampup_epochs (t from 0 to 1).

The consistency term covers labeled and unlabeled images alike; the two go through batch norm
as separate batches (in one mixed batch the labeled images diverged, see loss_terms). The
teacher is evaluated; with teacher="pi" there is no teacher, the student is compared with itself
under a second noise draw (gradients through both) and is the one evaluated.

There is no published permutation-invariant MNIST recipe; the defaults here are the paper's
choices where they carry over (squared error of probabilities, weight 100 on its mean over
classes = 10 on the sum over 10 classes, decay 0.99 during the ramp-up and 0.999 after) on VAT's
network (784-1200-1200-10 with batch norm) with Gaussian input noise as the perturbation.
noise_std is in the input's units: pixels in [0, 1], or one standard deviation of a standardised
feature.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ssvae.errors import ConfigError
from ssvae.models.base import OptimizerFactory, SchedulerFactory
from ssvae.models.consistency import ConsistencyModule
from ssvae.nets import BatchNormMLP, check_layer_sizes

TEACHERS = ("ema", "pi")


def sigmoid_rampup(progress: float) -> float:
    """exp(-5 (1 - t)^2) for t = progress clipped to [0, 1] (Laine & Aila's ramp-up)."""
    t = min(max(progress, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def ema_decay_at(step: int, decay: float) -> float:
    """min(1 - 1/(step + 1), decay): early steps average over the steps so far."""
    return min(1.0 - 1.0 / (step + 1), decay)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student, parameter by parameter (batch-norm
    buffers are the teacher's own)."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)


def consistency_cost(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean over images of the squared distance between the two class-probability vectors."""
    diff = student_logits.softmax(-1) - teacher_logits.softmax(-1)
    return (diff**2).sum(-1).mean()


class MeanTeacher(ConsistencyModule):
    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        hidden_dims: Sequence[int] = (1200, 1200),
        activation: str = "relu",
        noise_std: float = 0.3,
        consistency_weight: float = 10.0,
        rampup_epochs: float = 10.0,
        ema_decay: float = 0.99,
        ema_decay_after_rampup: float = 0.999,
        teacher: str = "ema",
        bn_stats: str = "recompute",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler, bn_stats)
        hidden = check_layer_sizes(hidden_dims, 1)
        if teacher not in TEACHERS:
            raise ConfigError(f"model.teacher={teacher!r} is not known; allowed: {TEACHERS}")
        for field, value in (
            ("ema_decay", ema_decay),
            ("ema_decay_after_rampup", ema_decay_after_rampup),
        ):
            if not 0 <= value < 1:
                raise ConfigError(f"model.{field}={value} must be in [0, 1)")
        for field, value in (
            ("noise_std", noise_std),
            ("consistency_weight", consistency_weight),
            ("rampup_epochs", rampup_epochs),
        ):
            if not value >= 0:
                raise ConfigError(f"model.{field}={value} must be >= 0")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.student = BatchNormMLP(x_dim, hidden, num_classes, activation)
        self.teacher = None
        if teacher == "ema":
            self.teacher = copy.deepcopy(self.student).requires_grad_(False)

    def configure_optimizers(self) -> dict:
        from ssvae.models.base import optimizer_config

        # The teacher follows by averaging, never by gradient.
        return optimizer_config(
            self.student.parameters(), self.optimizer_factory, self.scheduler_factory
        )

    @property
    def evaluated(self) -> nn.Module:
        return self.teacher if self.teacher is not None else self.student

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.evaluated(x)

    def clean_passes(self):
        return [(self.evaluated, self.evaluated)]

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        std = self.hparams.noise_std
        return x + std * torch.randn_like(x) if std else x

    def rampup_progress(self) -> float:
        """Training progress through the ramp-up, from 0 to 1 (1 when there is none)."""
        epochs = self.hparams.rampup_epochs
        if not epochs:
            return 1.0
        trainer = self._trainer
        steps_per_epoch = trainer.num_training_batches if trainer is not None else 1
        return self.global_step / (epochs * max(1, steps_per_epoch))

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        x_l, y_l = batch["labeled"]
        x_u = batch.get("unlabeled")
        # Labeled and unlabeled images go through batch norm as separate batches, as the Ladder
        # recipe (models/ladder.py) normalises them. In one mixed batch the same 100 labeled
        # images meet every step, and the network trained on them fails on others: 37 %
        # validation error after one MNIST epoch at consistency weight 0, against 20 % with
        # separate batches (docs/baselines.md, 2026-12-03, fourth session).
        parts = [x_l] if x_u is None else [x_l, x_u]
        student = [self.student(self.noisy(x)) for x in parts]
        class_nll = F.cross_entropy(student[0], y_l)
        if self.teacher is None:  # Pi-model: the student again, under other noise
            target = [self.student(self.noisy(x)) for x in parts]
        else:
            with torch.no_grad():
                target = [self.teacher(self.noisy(x)) for x in parts]
        consistency = consistency_cost(torch.cat(student), torch.cat(target))
        weight = self.hparams.consistency_weight * sigmoid_rampup(self.rampup_progress())
        loss = class_nll + weight * consistency
        return {"loss": loss, "class_nll": class_nll, "consistency": consistency}

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.teacher is None:
            return
        hp = self.hparams
        late = self.rampup_progress() >= 1.0
        decay = ema_decay_at(self.global_step, hp.ema_decay_after_rampup if late else hp.ema_decay)
        ema_update(self.teacher, self.student, decay)
