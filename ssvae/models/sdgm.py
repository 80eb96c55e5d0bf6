"""SDGM, the skip deep generative model of Maaløe et al. (2016), sec. 2.2: ADGM's inference model
with a made part of the generative model, which becomes a two-layer stochastic model:

Generative:  p(y) p(z) p(a | y, z) p(x | y, z, a).
Inference:   q(a | x) q(y | a, x) q(z | a, y, x)  (as ADGM).

Everything else (bounds, enumeration of y, prediction, training) is ADGM's.
"""

from __future__ import annotations

import torch

from ssvae import elbo
from ssvae.elbo import log_likelihood
from ssvae.models.adgm import ADGM
from ssvae.nets import MLP, GaussianMLP


class SDGM(ADGM):
    def build_generative(self, x_dim, a_dim, z_dim, hidden, activation) -> None:
        k = self.num_classes
        decoder = GaussianMLP if self.likelihood == "gaussian" else MLP
        self.p_x = decoder([k, z_dim, a_dim], hidden, x_dim, activation)  # p(x|y,z,a)
        self.p_a = GaussianMLP([k, z_dim], hidden, a_dim, activation)  # p(a|y,z)

    def log_px(self, x, y, z, a) -> torch.Tensor:
        """log p(x | y, z, a): the skip connection from a to x."""
        return log_likelihood(self.likelihood, x, self.p_x(y, z, a))

    def log_pa(self, x, y, z, a) -> torch.Tensor:
        """log p(a | y, z)."""
        return elbo.gaussian_log_prob(a, *self.p_a(y, z))

    def decode(self, y_onehot: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """E[x | y, z, a] at a = p(a | y, z)'s mean."""
        a = self.p_a(y_onehot, z)[0]
        return self.to_data_space(self.p_x(y_onehot, z, a))
