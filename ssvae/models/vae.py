"""M1's generative model (Kingma et al. 2014, sec. 3.1.1): a VAE trained on images alone.

p(z) = N(0, I),  p(x | z) = Bernoulli(decoder(z)),  q(z | x) = N(encoder(x)).
For real-valued (standardised) features, p(x | z) is a Gaussian with a learned variance per
feature and per z instead (``likelihood="gaussian"``, which the data module chooses).
Labels are never used: the latent means feed a classifier later (M1), or z1 ~ q(z1|x) is the
data M2 models (M1+M2).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch

from ssvae import elbo
from ssvae.elbo import check_likelihood, log_likelihood
from ssvae.models.base import (
    OptimizerFactory,
    SchedulerFactory,
    default_optimizer,
    optimizer_config,
)
from ssvae.nets import MLP, GaussianMLP, check_layer_sizes


class VAE(L.LightningModule):
    def __init__(
        self,
        x_dim: int,
        z_dim: int = 50,
        hidden_dims: Sequence[int] = (600, 600),
        activation: str = "softplus",
        binarize: bool = True,
        likelihood: str = "bernoulli",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        kl_warmup_epochs: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = check_layer_sizes(hidden_dims, z_dim)
        check_likelihood(likelihood)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.optimizer_factory = optimizer or default_optimizer()
        self.scheduler_factory = scheduler  # stepped per epoch (vae/scheduler=cosine)
        self.likelihood = likelihood
        self.kl_warmup_epochs = kl_warmup_epochs
        # Re-binarising makes sense for grey levels in [0, 1] only.
        self.binarize = binarize and likelihood == "bernoulli"
        self.encoder = GaussianMLP([x_dim], hidden, z_dim, activation)  # q(z|x)
        head = GaussianMLP if likelihood == "gaussian" else MLP
        self.decoder = head([z_dim], list(reversed(hidden)), x_dim, activation)  # p(x|z)
        # Set by ssvae.pretrain: each latent mean's std over the training images (which
        # dimensions M1 uses; M1+M2 can keep only those).
        self.latent_mean_std: list[float] | None = None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x)'s mean and log-variance."""
        return self.encoder(x)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z]: pixel probabilities (Bernoulli) or the Gaussian's mean."""
        decoded = self.decoder(z)
        return decoded[0] if self.likelihood == "gaussian" else torch.sigmoid(decoded)

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x|z) for one z ~ q(z|x), and KL(q(z|x) || p(z)): (B,) each."""
        mean, logvar = self.encoder(x)
        z = elbo.reparameterize(mean, logvar)
        log_px = log_likelihood(self.likelihood, x, self.decoder(z))
        return log_px, elbo.gaussian_kl_standard_normal(mean, logvar)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)), one sample: (B,)."""
        log_px, kl = self.elbo_terms(x)
        return log_px - kl

    @torch.no_grad()
    def test_elbo(self, x: torch.Tensor) -> torch.Tensor:
        return self.elbo(x)

    @torch.no_grad()
    def log_px_estimate(self, x: torch.Tensor, samples: int, chunk: int = 10) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with ``samples`` draws of q(z|x): (B,).

        log w = log p(x|z) + log p(z) - log q(z|x); drawn ``chunk`` samples at a time, so the
        (samples, B, D) decoder output never sits in memory at once.
        """
        mean, logvar = self.encoder(x)
        log_weights = []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            z = elbo.reparameterize(mean.expand(k, *mean.shape), logvar.expand(k, *logvar.shape))
            log_px = log_likelihood(self.likelihood, x, self.decoder(z))
            log_q = elbo.gaussian_log_prob(z, mean, logvar)
            log_weights.append(log_px + elbo.standard_normal_log_prob(z) - log_q)
        return elbo.importance_weighted_bound(torch.cat(log_weights))

    # Batches are plain image tensors (B, D): the VAE sees images only, never labels.
    def training_step(self, x: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.binarize:  # the original re-binarises every minibatch
            x = torch.bernoulli(x)
        log_px, kl = self.elbo_terms(x)
        # KL warm-up (kl_warmup_epochs > 0): beta < 1 early keeps latent units from collapsing
        # to the prior before the decoder can use them.
        epochs_done = self.current_epoch + batch_idx / max(1, self.trainer.num_training_batches)
        beta = elbo.kl_warmup_weight(epochs_done, self.kl_warmup_epochs)
        loss = -(log_px - beta * kl).mean()
        self.log("train/elbo", (log_px - kl).mean(), batch_size=len(x), prog_bar=True)
        self.log("train/kl_weight", beta, batch_size=len(x))
        return loss

    def validation_step(self, x: torch.Tensor, batch_idx: int) -> None:
        self.log("val/elbo", self.elbo(x).mean(), batch_size=len(x), prog_bar=True)

    def configure_optimizers(self) -> dict:
        return optimizer_config(self.parameters(), self.optimizer_factory, self.scheduler_factory)
