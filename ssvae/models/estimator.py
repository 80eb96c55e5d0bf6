"""A scikit-learn estimator as a model: fitted once on fixed features, evaluated like the rest.

Covers M1 (features = the latent means of a frozen VAE, Kingma et al. 2014 sec. 3.1.1) and the
classical baselines on raw pixels: logistic regression, SVM, LabelSpreading and self-training.
Transductive estimators (LabelSpreading, SelfTrainingClassifier) also get the unlabeled pool,
marked with the label -1 as scikit-learn expects.
"""

from __future__ import annotations

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

    def fit_estimator(self, datamodule: SemiSupervisedDataModule) -> None:
        x = self.features(datamodule._x_labeled)
        y = datamodule._y_labeled.numpy()
        if self.transductive and datamodule.num_unlabeled:
            x = np.concatenate([x, self.features(datamodule._x_unlabeled)])
            y = np.concatenate([y, np.full(datamodule.num_unlabeled, UNLABELED)])
        self.estimator.fit(x, y)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        predicted = torch.as_tensor(self.estimator.predict(self.features(x)), dtype=torch.long)
        return F.one_hot(predicted, self.val_acc.num_classes).float()  # argmax = the prediction

    def configure_optimizers(self) -> None:
        return None
