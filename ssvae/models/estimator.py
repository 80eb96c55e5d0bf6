"""A scikit-learn estimator as a model: fitted once on fixed features, evaluated like the rest.

Covers the classical baselines on raw pixels: logistic regression, SVM, LabelSpreading and
self-training; M1 (``ssvae/models/m1.py``) is the same on a frozen VAE's latent means.
Transductive estimators (LabelSpreading, SelfTrainingClassifier) also get the unlabeled pool,
marked with the label -1 as scikit-learn expects.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.models.base import Fitted, SemiSupervisedModule

UNLABELED = -1


class EstimatorClassifier(SemiSupervisedModule):
    # No gradient steps, so no checkpoints to resume from (the config check reads this).
    trains_by_gradient = False

    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        num_labeled: int,
        num_unlabeled: int,
        estimator,
        transductive: bool = False,
    ) -> None:
        super().__init__(num_classes)
        self.estimator = estimator
        self.transductive = transductive

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> np.ndarray:
        """What the estimator sees: the raw features here."""
        return x.float().cpu().numpy()

    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The features the classifier sees (M1: its latent means)."""
        return torch.as_tensor(self.features(x))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor | None:
        """None: the baselines model no x."""
        return None

    # No model of x, so no log p(x) or ELBO (M1 has its VAE's).
    log_px_estimate = None
    test_elbo = None

    def fit_estimator(self, datamodule: SemiSupervisedDataModule) -> None:
        x = self.features(datamodule._x_labeled)
        y = datamodule._y_labeled.numpy()
        if self.transductive and datamodule.num_unlabeled:
            x = np.concatenate([x, self.features(datamodule._x_unlabeled)])
            y = np.concatenate([y, np.full(datamodule.num_unlabeled, UNLABELED)])
        self.estimator.fit(x, y)

    def fit_in(
        self,
        trainer: L.Trainer,
        datamodule: SemiSupervisedDataModule,
        ckpt_path: str | Path | None = None,
        compile: bool = False,
    ) -> Fitted:
        """Fit once, then validate through Lightning like the rest (nothing to resume or
        compile: ``ckpt_path`` is refused by the config check)."""
        self.fit_estimator(datamodule)
        val = trainer.validate(self, datamodule=datamodule, verbose=False)[0]
        return Fitted(checkpoint=None, best_val_acc=float(val["val/acc"]), epochs=0, steps=0)

    def load_trained(self, run_dir: Path, datamodule: SemiSupervisedDataModule) -> None:
        """Refit on the run's data split: an estimator keeps no checkpoint, and fitting is cheap."""
        self.fit_estimator(datamodule)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities: ``predict_proba`` where the estimator has one, else a softmax of
        ``decision_function`` (SVC's one-vs-rest scores; temperature scaling calibrates them).
        Classes the labeled subset lacked get probability 0."""
        features = self.features(x)
        if hasattr(self.estimator, "predict_proba"):
            scores = np.log(np.clip(self.estimator.predict_proba(features), 1e-12, None))
        else:
            scores = self.estimator.decision_function(features)
            if scores.ndim == 1:  # two classes: one margin for the second class
                scores = np.stack([-scores / 2, scores / 2], axis=1)
        # log(1e-12) rather than -inf, so a test image of such a class has a finite NLL.
        # fp32 explicitly: Lightning's "-true" precisions change torch's default dtype.
        logits = torch.full(
            (len(features), self.val_acc.num_classes), math.log(1e-12), dtype=torch.float32
        )
        classes = torch.as_tensor(self.estimator.classes_.astype(np.int64))
        logits[:, classes] = torch.as_tensor(scores, dtype=torch.float32)
        return F.log_softmax(logits, dim=-1)

    def configure_optimizers(self) -> None:
        return None
