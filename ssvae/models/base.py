"""What every model shares: accuracy on validation/test, the optimiser, a finite-loss guard."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassCalibrationError

from ssvae.errors import TrainingError
from ssvae.runs import best_checkpoint, check_identity, saved_identity

Batch = tuple[torch.Tensor, torch.Tensor]
OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
# A partial torch LR scheduler (``_partial_: true`` in the config), stepped once per epoch.
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def default_optimizer() -> OptimizerFactory:
    return partial(torch.optim.Adam, lr=1e-3)


@dataclass
class Fitted:
    """What fitting left: the checkpoint to test (None: the model as it stands), the best
    validation accuracy, and how long it trained."""

    checkpoint: str | None
    best_val_acc: float
    epochs: int
    steps: int


class SemiSupervisedModule(L.LightningModule):
    """Base class: subclasses define ``classify(x) -> logits`` and ``training_step``.

    Validation and test accuracy use one torchmetrics object per stage; ``val/err`` is shown in
    the progress bar and ``val/acc`` drives checkpointing and early stopping.
    """

    def __init__(
        self,
        num_classes: int,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        self.optimizer_factory = optimizer or default_optimizer()
        self.scheduler_factory = scheduler
        self.val_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes=num_classes, average="micro")
        # Can its probabilities be trusted? Test NLL and expected calibration error (15 bins).
        self.test_nll = MeanMetric()
        self.test_ece = MulticlassCalibrationError(num_classes=num_classes, n_bins=15, norm="l1")
        # Set by the training entry point: which model, data and settings made a checkpoint, and
        # the seconds its pretraining took (M1's VAE), which time-to-accuracy curves count.
        self.identity: dict = {}
        self.pretraining_time_s = 0.0
        self._rng_to_restore: torch.Tensor | None = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["ssvae"] = dict(self.identity)
        # The sampling noise (reparameterisation, re-binarisation) continues from here on resume.
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._rng_to_restore = checkpoint.get("torch_rng_state")

    def on_train_epoch_start(self) -> None:
        # Restored here, not on load: the sanity-check validation of a resumed run comes between.
        if self._rng_to_restore is not None:
            torch.set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # How a model is trained and restored: by gradient here; scikit-learn estimators override
    # both (ssvae/models/estimator.py), so the entry points never ask which kind a model is.
    def fit_in(
        self,
        trainer: L.Trainer,
        datamodule: L.LightningDataModule,
        ckpt_path: str | Path | None = None,
        compile: bool = False,
    ) -> Fitted:
        """Train with Lightning (resuming from ``ckpt_path``); the best-validation checkpoint
        is the one to test. ``compile``: Lightning compiles the *_step methods of a compiled
        module."""
        fitted = torch.compile(self) if compile else self
        trainer.fit(fitted, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        callback = trainer.checkpoint_callback
        score = callback.best_model_score
        return Fitted(
            checkpoint=callback.best_model_path or None,
            best_val_acc=float(score) if score is not None else math.nan,
            epochs=trainer.current_epoch,
            steps=trainer.global_step,
        )

    def load_trained(self, run_dir: Path, datamodule: L.LightningDataModule) -> None:
        """Restore what a finished run trained: its best checkpoint, whose identity (model, data,
        settings) must match this model's."""
        path = best_checkpoint(run_dir)
        check_identity(saved_identity(path), self.identity, str(path))
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])

    def _evaluate(self, batch: Batch, metric: MulticlassAccuracy) -> None:
        x, y = batch
        metric.update(self.classify_full_precision(x), y)

    def classify_full_precision(self, x: torch.Tensor) -> torch.Tensor:
        """``classify`` outside autocast, in the weights' own dtype, as fp32 logits: evaluation
        is cheap, and bf16 rounding cost accuracy (one M1+M2 checkpoint: 4.27 % test error in
        bf16, 4.17 % in fp32). Weights trained in ``bf16-true`` are bf16 themselves, so such a
        run is evaluated in bf16."""
        with torch.autocast(x.device.type, enabled=False):
            return self.classify(x.to(self.dtype)).float()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_acc)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute()
        # compute() has already gathered every process's counts; sync_dist averages equal values.
        self.log("val/acc", acc, sync_dist=True)
        self.log("val/err", 1.0 - acc, prog_bar=True, sync_dist=True)
        self.val_acc.reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        x, y = batch
        logits = self.classify_full_precision(x)
        self.test_acc.update(logits, y)
        self.test_nll.update(F.cross_entropy(logits, y, reduction="none"))
        self.test_ece.update(logits.softmax(-1), y)

    def on_test_epoch_end(self) -> None:
        acc = self.test_acc.compute()
        self.log("test/acc", acc, sync_dist=True)
        self.log("test/err", 1.0 - acc, sync_dist=True)
        self.log("test/nll", self.test_nll.compute(), sync_dist=True)
        self.log("test/ece", self.test_ece.compute(), sync_dist=True)
        for metric in (self.test_acc, self.test_nll, self.test_ece):
            metric.reset()

    def check_finite(self, loss: torch.Tensor) -> torch.Tensor:
        # Reading the loss on the host waits for the device: on a GPU, check every 50th step
        # only (a NaN persists, so it is still caught, a few steps late).
        if loss.device.type != "cpu" and self.global_step % 50:
            return loss
        if not torch.isfinite(loss):
            raise TrainingError(
                f"non-finite loss ({loss.item()}) at epoch {self.current_epoch}, "
                f"step {self.global_step}; try a lower learning rate (model.optimizer.lr) "
                "or 32-bit precision (trainer.precision=32-true)"
            )
        return loss

    def configure_optimizers(self) -> dict:
        return optimizer_config(self.parameters(), self.optimizer_factory, self.scheduler_factory)


def optimizer_config(
    parameters: Iterable[torch.nn.Parameter],
    optimizer: OptimizerFactory,
    scheduler: SchedulerFactory | None,
) -> dict:
    """Lightning's optimiser dict; the scheduler (if any) steps once per epoch, so that schedules
    written in epochs (cosine over ``trainer.max_epochs``, x0.75 every 200) read as they say."""
    opt = optimizer(parameters)
    if scheduler is None:
        return {"optimizer": opt}
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler(opt), "interval": "epoch"}}


class WeightedBoundModule(SemiSupervisedModule):
    """M2 and the models built like it: the loss of a mixed batch is

        weights["labeled"] * -mean L(x, y) + weights["unlabeled"] * -mean U(x)
            + weights["classify"] * mean -log q(y|x)

    (the weights: ssvae.models.m2.term_weights). Subclasses define ``features``,
    ``labeled_elbo(x, y)``, ``unlabeled_elbo(x)`` and ``class_nll(x, y)`` on featurised x.
    """

    weights: dict[str, float]

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        """The weighted loss of one mixed batch and its parts (for logging and benchmarks)."""
        x_l, y_l = batch["labeled"]
        x_l = self.features(x_l)
        neg_l = -self.labeled_elbo(x_l, y_l).mean()
        class_nll = self.class_nll(x_l, y_l)
        loss = self.weights["labeled"] * neg_l + self.weights["classify"] * class_nll
        terms = {"elbo_labeled": -neg_l, "class_nll": class_nll}
        if batch.get("unlabeled") is not None:
            neg_u = -self.unlabeled_elbo(self.features(batch["unlabeled"])).mean()
            loss = loss + self.weights["unlabeled"] * neg_u
            terms["elbo_unlabeled"] = -neg_u
        return {"loss": loss, **terms}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.record_terms(self.loss_terms(batch), batch)

    # Logging is Python bookkeeping: with compile=true the loss is compiled, this runs eagerly.
    @torch.compiler.disable
    def record_terms(self, terms: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
        n_l = len(batch["labeled"][1])
        n_u = len(batch["unlabeled"]) if batch.get("unlabeled") is not None else 0
        for name, value in terms.items():
            size = {"loss": n_l + n_u, "elbo_unlabeled": n_u}.get(name, n_l)
            self.log(f"train/{name}", value, batch_size=size)
        return self.check_finite(terms["loss"])
