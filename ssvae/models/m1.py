"""M1 (Kingma et al. 2014, sec. 3.1.1): a classifier on the latent means of a VAE.

The VAE (``ssvae/models/vae.py``) is trained once on every training image without labels and
cached; here it is frozen, and a scikit-learn estimator (an SVM by default) is fitted on the
latent means of q(z|x) of the labeled images (and of the pool, for transductive estimators).
"""

from __future__ import annotations

import numpy as np
import torch

from ssvae.models.estimator import EstimatorClassifier
from ssvae.models.vae import VAE


class M1(EstimatorClassifier):
    # The signature is spelled out, not **kwargs: the run reads it (ssvae.models.needs) to know
    # which data facts to pass and that this model is built on M1's VAE.
    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        num_labeled: int,
        num_unlabeled: int,
        estimator,
        vae: VAE,
        transductive: bool = False,
    ) -> None:
        super().__init__(x_dim, num_classes, num_labeled, num_unlabeled, estimator, transductive)
        self.vae = vae

    @torch.no_grad()
    def latent_means(self, x: torch.Tensor) -> torch.Tensor:
        """The means of q(z|x), on the VAE's device."""
        return self.vae.encode(x.to(self.vae.device))[0]

    def posterior_means(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The VAE's z (ssvae-figures' active units)."""
        return {"z": self.latent_means(x)}

    def features(self, x: torch.Tensor) -> np.ndarray:
        """The latent means: what the classifier sees."""
        return self.latent_means(x).float().cpu().numpy()

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x decoded from its latent mean."""
        return self.vae.decode_mean(self.latent_means(x))

    @property
    def log_px_estimate(self):
        """The VAE's importance-weighted log p(x)."""
        return self.vae.log_px_estimate

    @property
    def test_elbo(self):
        return self.vae.test_elbo
