"""M1+M2 (Kingma et al. 2014, sec. 3.1.3): M2 trained on the latent space of a frozen M1.

Each step draws z1 ~ q(z1|x) from the pretrained VAE, and M2 models z1 with a Gaussian
p(z1 | y, z2) instead of a Bernoulli over pixels. Evaluation classifies q(y | z1) at z1's mean.
"""

from __future__ import annotations

import torch

from ssvae import elbo
from ssvae.models.m2 import M2
from ssvae.models.vae import VAE


class M1M2(M2):
    def __init__(self, x_dim: int, vae: VAE, **m2_settings) -> None:
        m2_settings.pop("likelihood", None)
        m2_settings.pop("binarize", None)
        super().__init__(x_dim=vae.hparams.z_dim, likelihood="gaussian", **m2_settings)
        vae.freeze()  # Lightning's: eval mode, no gradients; M1 stays fixed
        self.vae = vae

    def train(self, mode: bool = True) -> M1M2:
        super().train(mode)
        self.vae.eval()  # never let Lightning switch the frozen M1 into training mode
        return self

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z1: a fresh sample of q(z1|x) while training, its mean for evaluation."""
        mean, logvar = self.vae.encode(x)
        return elbo.reparameterize(mean, logvar) if self.training else mean
