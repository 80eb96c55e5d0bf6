"""A scikit-learn estimator as a model: fitted once on fixed features, evaluated like the rest.

Covers M1 (features = the latent means of a frozen VAE, Kingma et al. 2014 sec. 3.1.1) and the
classical baselines on raw pixels: logistic regression, SVM, LabelSpreading and self-training.
Transductive estimators (LabelSpreading, SelfTrainingClassifier) also get the unlabeled pool,
marked with the label -1 as scikit-learn expects.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.models.base import SemiSupervisedModule
from ssvae.models.vae import VAE

UNLABELED = -1


class EstimatorClassifier(SemiSupervisedModule):
    trains_by_gradient = False

    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        num_labeled: int,
        num_unlabeled: int,
        estimator,
        transductive: bool = False,
        vae: VAE | None = None,
    ) -> None:
        super().__init__(num_classes)
        self.estimator = estimator
        self.transductive = transductive
        self.vae = vae  # None: raw pixels

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> np.ndarray:
        if self.vae is not None:
            x = self.vae.encode(x.to(self.vae.device))[0]  # latent means
        return x.float().cpu().numpy()

    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """M1's latent means (the features its classifier sees); raw features otherwise."""
        return torch.as_tensor(self.features(x))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor | None:
        """M1: x decoded from its latent mean; None for the baselines, which model no x."""
        if self.vae is None:
            return None
        return self.vae.decode_mean(self.vae.encode(x.to(self.vae.device))[0])

    @property
    def log_px_estimate(self):
        """M1: its VAE's importance-weighted log p(x); None for the baselines (no model of x)."""
        return None if self.vae is None else self.vae.log_px_estimate

    @property
    def test_elbo(self):
        return None if self.vae is None else self.vae.test_elbo

    def fit_estimator(self, datamodule: SemiSupervisedDataModule) -> None:
        x = self.features(datamodule._x_labeled)
        y = datamodule._y_labeled.numpy()
        if self.transductive and datamodule.num_unlabeled:
            x = np.concatenate([x, self.features(datamodule._x_unlabeled)])
            y = np.concatenate([y, np.full(datamodule.num_unlabeled, UNLABELED)])
        self.estimator.fit(x, y)

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
        logits = torch.full((len(features), self.val_acc.num_classes), math.log(1e-12))
        classes = torch.as_tensor(self.estimator.classes_.astype(np.int64))
        logits[:, classes] = torch.as_tensor(scores, dtype=torch.float32)
        return F.log_softmax(logits, dim=-1)

    def configure_optimizers(self) -> None:
        return None
