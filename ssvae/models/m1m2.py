"""M1+M2 (Kingma et al. 2014, sec. 3.1.3): M2 trained on the latent space of a frozen M1.

Each step draws z1 ~ q(z1|x) from the pretrained VAE, and M2 models z1 with a Gaussian
p(z1 | y, z2) instead of a Bernoulli over pixels. Evaluation classifies q(y | z1) at z1's mean.

As in the original code, M2 can keep only the latent dimensions M1 uses: those whose mean varies
across the training images (std > ``latent_std_threshold``; the original's 0.1). The others are
posterior-collapsed: their samples are N(0, 1) noise for every image (measured: 39 of 50
dimensions of a 55-epoch MNIST VAE), which M2 would otherwise have to model and its classifier
learn to ignore from a handful of labels.
"""

from __future__ import annotations

import torch

from ssvae import elbo
from ssvae.errors import ConfigError
from ssvae.models.m2 import M2
from ssvae.models.vae import VAE


class M1M2(M2):
    def __init__(
        self, x_dim: int, vae: VAE, latent_std_threshold: float = 0.0, **m2_settings
    ) -> None:
        m2_settings.pop("likelihood", None)
        m2_settings.pop("binarize", None)
        active = active_latent_dims(vae, latent_std_threshold)
        super().__init__(x_dim=len(active), likelihood="gaussian", **m2_settings)
        vae.freeze()  # Lightning's: eval mode, no gradients; M1 stays fixed
        self.vae = vae
        self.register_buffer("active_dims", active)
        self._register_load_state_dict_pre_hook(self._checkpoints_before_active_dims)

    def _checkpoints_before_active_dims(self, state_dict: dict, prefix: str, *args) -> None:
        """Checkpoints saved before ``latent_std_threshold`` existed used every dimension."""
        state_dict.setdefault(f"{prefix}active_dims", self.active_dims.clone())

    def train(self, mode: bool = True) -> M1M2:
        super().train(mode)
        self.vae.eval()  # never let Lightning switch the frozen M1 into training mode
        return self

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """z1: a fresh sample of q(z1|x) while training, its mean for evaluation."""
        mean, logvar = self.vae.encode(x)
        mean, logvar = mean[:, self.active_dims], logvar[:, self.active_dims]
        return elbo.reparameterize(mean, logvar) if self.training else mean

    @torch.no_grad()
    def posterior_means(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """M1's z1 (every dimension, the unused ones too) and M2's z2."""
        return {"z1": self.vae.encode(x)[0], "z2": self.latent(x)}

    # M2 here models M1's latents, not the data: its bound on log p(z1) says nothing about p(x).
    log_px_estimate = None
    test_elbo = None

    def to_data_space(self, decoded) -> torch.Tensor:
        """Through M1's decoder: p(z1 | y, z2)'s mean (the unused dimensions at the prior's 0)
        decoded to pixels."""
        mean = decoded[0]
        z1 = mean.new_zeros(*mean.shape[:-1], self.vae.hparams.z_dim)
        z1[..., self.active_dims] = mean
        return self.vae.decode_mean(z1)


def active_latent_dims(vae: VAE, threshold: float) -> torch.Tensor:
    """Indices of M1's latent dimensions whose mean's std over the training images exceeds
    ``threshold`` (all of them for 0, or when the VAE carries no ``latent_mean_std``)."""
    std = getattr(vae, "latent_mean_std", None)
    z_dim = vae.hparams.z_dim
    if not threshold >= 0:
        raise ConfigError(f"model.latent_std_threshold={threshold} must be >= 0")
    if std is None or threshold == 0:
        return torch.arange(z_dim)
    active = torch.nonzero(torch.as_tensor(std) > threshold).flatten()
    if len(active) == 0:
        raise ConfigError(
            f"model.latent_std_threshold={threshold} leaves none of M1's {z_dim} latent "
            f"dimensions (the largest std of a latent mean is {float(max(std)):.3f}); lower it"
        )
    return active
