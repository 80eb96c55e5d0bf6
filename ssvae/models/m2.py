"""M2 of Kingma et al. (2014): a generative semi-supervised model, eqs. (6)-(9).

Generative model:  p(y) = Cat(1/K),  p(z) = N(0, I),  p(x | y, z) = Bernoulli(decoder(y, z)).
Inference model:   q(y | x) = Cat(classifier(x)),  q(z | x, y) = N(encoder(x, y)).

Objective per training set of N = N_l + N_u images (maximised; we minimise its negative):
    J^alpha = sum_labeled L(x, y) + sum_unlabeled U(x) - alpha * E_labeled[-log q(y|x)]
with alpha = alpha_scale * N (the paper's alpha = 0.1 * N). E_labeled is the *mean* over the
labeled images, so the classification term weighs alpha / N_l = 0.1 * N / N_l per labeled image,
which is the "total / labeled" factor of the original code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ssvae import elbo
from ssvae.elbo import check_likelihood, log_likelihood
from ssvae.errors import ConfigError
from ssvae.models.base import OptimizerFactory, SchedulerFactory, WeightedBoundModule
from ssvae.nets import MLP, GaussianMLP, check_layer_sizes, initialize

WEIGHTINGS = ("paper", "balanced")


def term_weights(
    weighting: str,
    alpha_scale: float,
    num_labeled: int,
    num_unlabeled: int,
    alpha_per_label: float | None = None,
) -> dict[str, float]:
    """Weights on the per-batch means of -L(x,y), -U(x) and -log q(y|x).

    alpha = alpha_scale * N (the paper: each labeled image's classification loss weighs
    alpha / N_l = 0.1 * N / N_l, 50 at 100 MNIST labels and 1.67 at 3000), or, given
    ``alpha_per_label`` = w, alpha = w * N_l: the same weight w per labeled image at every label
    count.

    "paper": an unbiased estimate of -J^alpha / N, however often the labeled loader cycles:
        (N_l/N) mean(-L) + (N_u/N) mean(-U) + (alpha/N) mean(-log q),  alpha/N = alpha_scale.
    "balanced": labeled and unlabeled batches count equally every step, as in most PyTorch
        ports; relative to "paper" this weighs the labeled terms N/N_l times more:
        mean(-L) + mean(-U) + (alpha/N_l) mean(-log q).
    """
    if not alpha_scale >= 0:
        raise ConfigError(f"model.alpha_scale={alpha_scale} must be >= 0")
    if alpha_per_label is not None and not alpha_per_label >= 0:
        raise ConfigError(f"model.alpha_per_label={alpha_per_label} must be >= 0 or null")
    n = num_labeled + num_unlabeled
    alpha = alpha_scale * n if alpha_per_label is None else alpha_per_label * num_labeled
    if weighting == "paper":
        return {"labeled": num_labeled / n, "unlabeled": num_unlabeled / n, "classify": alpha / n}
    if weighting == "balanced":
        return {"labeled": 1.0, "unlabeled": 1.0, "classify": alpha / num_labeled}
    raise ConfigError(f"model.weighting={weighting!r} is not known; allowed: {list(WEIGHTINGS)}")


PRIORS = ("uniform", "labeled")


def log_class_prior(
    prior_y: str, num_classes: int, labeled_class_counts: Sequence[int] | None
) -> torch.Tensor:
    """log p(y): uniform (the paper), or "labeled": the labeled subset's class frequencies."""
    if prior_y == "uniform" or (prior_y == "labeled" and labeled_class_counts is None):
        return torch.full((num_classes,), -math.log(num_classes))
    if prior_y != "labeled":
        raise ConfigError(f"model.prior_y={prior_y!r} is not known; allowed: {list(PRIORS)}")
    counts = torch.as_tensor(labeled_class_counts, dtype=torch.float32)
    return torch.log(counts / counts.sum())


class M2(WeightedBoundModule):
    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        num_labeled: int,
        num_unlabeled: int,
        z_dim: int = 50,
        hidden_dims: Sequence[int] = (500,),
        activation: str = "softplus",
        alpha_scale: float = 0.1,
        weighting: str = "balanced",
        alpha_per_label: float | None = None,
        binarize: bool = False,
        likelihood: str = "bernoulli",
        prior_y: str = "uniform",
        labeled_class_counts: Sequence[int] | None = None,
        init: str = "torch",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler)
        hidden = check_layer_sizes(hidden_dims, z_dim)
        check_likelihood(likelihood)
        self.weights = term_weights(
            weighting, alpha_scale, num_labeled, num_unlabeled, alpha_per_label
        )
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "vae"])
        self.num_classes = num_classes
        # Re-binarising makes sense for grey levels in [0, 1] only.
        self.binarize = binarize and likelihood == "bernoulli"
        self.likelihood = likelihood
        self.classifier = MLP([x_dim], hidden, num_classes, activation)  # q(y|x)
        self.encoder = GaussianMLP([x_dim, num_classes], hidden, z_dim, activation)  # q(z|x,y)
        decoder = GaussianMLP if likelihood == "gaussian" else MLP
        self.decoder = decoder([num_classes, z_dim], hidden, x_dim, activation)  # p(x|y,z)
        initialize(self, init)
        # log p(y), (K,): uniform, or the labeled subset's class frequencies (imbalanced data).
        # Not a buffer: it follows from the hyperparameters, and checkpoints stay as they were.
        self.log_prior_y = log_class_prior(prior_y, num_classes, labeled_class_counts)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the model sees of an image: the image itself here (M1+M2: a latent of it)."""
        return torch.bernoulli(x) if self.binarize and self.training else x

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    # --- what figures and predictions call (see ssvae/figures.py) ------------------------------
    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """The style latent: q(z | x, y)'s mean at the predicted class y. (N, Z)."""
        features = self.features(x)
        y = F.one_hot(self.classifier(features).argmax(-1), self.num_classes).to(features.dtype)
        return self.encoder(features, y)[0]

    @torch.no_grad()
    def posterior_means(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The mean of each Gaussian latent under q, by name (ssvae-figures' active units)."""
        return {"z": self.latent(x)}

    @torch.no_grad()
    def generate(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """E[x | y, z] in the data's space, for class indices y (N,) and styles z (N, Z)."""
        decoded = self.decoder(F.one_hot(y, self.num_classes).to(z.dtype), z)
        return self.to_data_space(decoded)

    @torch.no_grad()
    def infer_style(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """q(z | x, y)'s mean for known classes: the style to regenerate as another class."""
        features = self.features(x)
        return self.encoder(features, F.one_hot(y, self.num_classes).to(features.dtype))[0]

    @torch.no_grad()
    def log_px_estimate(self, x: torch.Tensor, samples: int, chunk: int = 5) -> torch.Tensor:
        """Importance-weighted log p(x) = log sum_y p(y) E_q(z|x,y)[p(x|y,z) p(z) / q(z|x,y)],
        y enumerated and z drawn ``samples`` times per class: a logsumexp over both. (B,)."""
        features = self.features(x)
        every_y = torch.eye(self.num_classes, dtype=features.dtype, device=features.device)
        every_y = every_y.unsqueeze(1)  # (K, 1, K)
        mean, logvar = self.encoder(features, every_y)  # (K, B, Z)
        log_py = self.log_prior_y.to(features)[:, None]  # (K, 1)
        log_weights = []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            z = elbo.reparameterize(mean.expand(k, *mean.shape), logvar.expand(k, *logvar.shape))
            log_px = self.log_likelihood(features, self.decoder(every_y, z))  # (k, K, B)
            log_q = elbo.gaussian_log_prob(z, mean, logvar)
            log_weights.append(log_px + log_py + elbo.standard_normal_log_prob(z) - log_q)
        # Summing over y is exact: a logsumexp over the classes, then over the samples' mean.
        weights = torch.cat(log_weights)  # (samples, K, B)
        return torch.logsumexp(weights, dim=1).logsumexp(0) - math.log(samples)

    @torch.no_grad()
    def test_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """U(x), the unlabeled bound on log p(x): (B,)."""
        return self.unlabeled_elbo(self.features(x))

    def to_data_space(self, decoded) -> torch.Tensor:
        """The mean of p(x | y, z): pixel probabilities, or a Gaussian's mean."""
        return decoded[0] if self.likelihood == "gaussian" else torch.sigmoid(decoded)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        y = self.classifier(features).argmax(-1)
        return self.generate(y, self.infer_style(x, y))

    def log_likelihood(self, x: torch.Tensor, decoded) -> torch.Tensor:
        """log p(x|y,z): Bernoulli on pixels, or Gaussian (real features; M1+M2's p(z1|y,z2))."""
        return log_likelihood(self.likelihood, x, decoded)

    def elbo(self, x: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
        """L(x, y), one reparameterised z. x: (B, D); y_onehot: (B, K) or (K, 1, K)."""
        mean, logvar = self.encoder(x, y_onehot)  # (B, Z) or (K, B, Z)
        z = elbo.reparameterize(mean, logvar)
        log_px = self.log_likelihood(x, self.decoder(y_onehot, z))
        kl_z = elbo.gaussian_kl_standard_normal(mean, logvar)
        log_py = (y_onehot * self.log_prior_y.to(y_onehot)).sum(-1)  # (B,) or (K, 1)
        return elbo.labeled_elbo(log_px, log_py, kl_z)

    def elbo_all_classes(self, x: torch.Tensor) -> torch.Tensor:
        """L(x, y) for every class y in one batched pass: (K, B)."""
        every_y = torch.eye(self.num_classes, dtype=x.dtype, device=x.device).unsqueeze(1)
        return self.elbo(x, every_y)  # every_y (K, 1, K) broadcasts against x (B, D)

    def unlabeled_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)): (B,). ``x`` as ``features`` gives it."""
        return elbo.unlabeled_elbo(self.elbo_all_classes(x), self.classifier(x))

    def labeled_elbo(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """L(x, y) for class indices y: (B,)."""
        return self.elbo(x, F.one_hot(y, self.num_classes).to(x.dtype))

    def class_nll(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """mean -log q(y|x) over the labeled batch."""
        return F.cross_entropy(self.classifier(x), y)
