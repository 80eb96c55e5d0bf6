"""ADGM, the auxiliary deep generative model of Maaløe et al. (2016), "Auxiliary Deep Generative
Models", sec. 2-3: M2 with an auxiliary latent variable a that makes q(y|a,x) and q(z|a,y,x)
more expressive, while the generative model keeps p(x|y,z).

Generative:  p(y) = Cat(1/K), p(z) = N(0, I), p(x | y, z) = Bernoulli, p(a | x, y, z) = N.
Inference:   q(a | x) = N, q(y | a, x) = Cat, q(z | a, y, x) = N.

Labeled (eq. 8):   L(x, y) = E_q(a,z|x,y)[log p(x|y,z) p(y) p(z) p(a|x,y,z) - log q(a|x) q(z|a,y,x)]
Unlabeled (eq. 9): U(x) = E_q(a|x)[sum_y q(y|a,x) L(x, y, a) + H(q(y|a,x))] - ..., y enumerated
in one batched pass as in M2, a and z reparameterised (``samples`` draws of a per image).
Labeled images add alpha * -log q(y|a,x); prediction averages q(y|a,x) over ``eval_samples``
draws of a, in one forward pass for the batch.

Status on MNIST (docs/adgm.md): not a model to pick yet; use SDGM (sdgm.py). At 100 labels the
authors' setting reached 13.95 % (seed 0, 95 min), worse than M2 (7.76 %), against the paper's
0.96 %: q(a|x) collapses to its prior (0 of 100 active units, scripts/auxiliary_use.py), so the
classifier answers the same with a = 0. Tried, none mended it: PyTorch's and the authors'
Glorot initialisation; q(a|x) frozen at random features of x (``q_a="frozen"``, as in the
authors' 2015 code: it learns slower per epoch, no better); a KL warm-up
(``kl_warmup_epochs``: a stays collapsed and the classifier falls to ~45 % error while the
warm-up lasts).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ssvae import elbo
from ssvae.config_checks import positive_int
from ssvae.elbo import check_likelihood, log_likelihood
from ssvae.errors import ConfigError
from ssvae.models.base import OptimizerFactory, SchedulerFactory, WeightedBoundModule
from ssvae.models.m2 import log_class_prior, term_weights
from ssvae.nets import MLP, GaussianMLP, check_layer_sizes, initialize

# How q(a|x) is trained. "learned": with the rest, as in the published model. "frozen": left at
# a random initialisation, as in the authors' first ADGM code (ADGMSSL, Maaløe et al. 2015: q(a|x)
# is not among the trained parameters there), so that a = mu(x) + sigma(x) * eps stays noisy
# random features of x; a learned q(a|x) collapsed to the prior here (docs/adgm.md).
Q_A = ("learned", "frozen")


def freeze_as_random_features(q_a: GaussianMLP) -> None:
    """Give q(a|x)'s output layer Glorot-normal weights (mean and log-variance then vary with x,
    as in ADGMSSL, instead of starting at N(0, I)) and stop its training."""
    last = q_a.rest[-1]
    torch.nn.init.xavier_normal_(last.weight)
    torch.nn.init.normal_(last.bias, 0.0, 1e-3)
    q_a.requires_grad_(False)


class ADGM(WeightedBoundModule):
    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        num_labeled: int,
        num_unlabeled: int,
        a_dim: int = 100,
        z_dim: int = 100,
        hidden_dims: Sequence[int] = (500, 500),
        activation: str = "relu",
        alpha_scale: float = 0.1,
        weighting: str = "balanced",
        alpha_per_label: float | None = None,
        binarize: bool = True,
        samples: int = 1,
        eval_samples: int = 100,
        gradient_clip_norm: float | None = 5.0,
        gradient_clip_value: float | None = None,
        init: str = "torch",
        q_a: str = "learned",
        kl_warmup_epochs: float = 0.0,
        likelihood: str = "bernoulli",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler)
        hidden = check_layer_sizes(hidden_dims, z_dim)
        check_layer_sizes(hidden_dims, a_dim)
        check_likelihood(likelihood)
        if q_a not in Q_A:
            raise ConfigError(f"model.q_a={q_a!r} is not known; allowed: {list(Q_A)}")
        self.samples = positive_int(samples, "model.samples")
        self.eval_samples = positive_int(eval_samples, "model.eval_samples")
        self.weights = term_weights(
            weighting, alpha_scale, num_labeled, num_unlabeled, alpha_per_label
        )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.num_classes = num_classes
        self.likelihood = likelihood
        self.binarize = binarize and likelihood == "bernoulli"
        self.gradient_clip_norm = gradient_clip_norm
        self.gradient_clip_value = gradient_clip_value
        if not kl_warmup_epochs >= 0:
            raise ConfigError(f"model.kl_warmup_epochs={kl_warmup_epochs} must be >= 0")
        self.kl_warmup_epochs = kl_warmup_epochs
        self.log_prior_y = log_class_prior("uniform", num_classes, None)
        # Inference model.
        self.q_a = GaussianMLP([x_dim], hidden, a_dim, activation)  # q(a|x)
        self.q_y = MLP([x_dim, a_dim], hidden, num_classes, activation)  # q(y|a,x)
        self.q_z = GaussianMLP([x_dim, a_dim, num_classes], hidden, z_dim, activation)  # q(z|a,y,x)
        self.build_generative(x_dim, a_dim, z_dim, hidden, activation)
        initialize(self, init)
        if q_a == "frozen":
            freeze_as_random_features(self.q_a)

    def build_generative(self, x_dim, a_dim, z_dim, hidden, activation) -> None:
        decoder = GaussianMLP if self.likelihood == "gaussian" else MLP
        k = self.num_classes
        self.p_x = decoder([k, z_dim], hidden, x_dim, activation)  # p(x|y,z)
        self.p_a = GaussianMLP([x_dim, k, z_dim], hidden, a_dim, activation)  # p(a|x,y,z)

    # The two generative factors that ADGM and SDGM draw differently.
    def log_px(self, x, y, z, a) -> torch.Tensor:
        """log p(x | y, z)."""
        return log_likelihood(self.likelihood, x, self.p_x(y, z))

    def log_pa(self, x, y, z, a) -> torch.Tensor:
        """log p(a | x, y, z)."""
        return elbo.gaussian_log_prob(a, *self.p_a(x, y, z))

    def decode(self, y_onehot: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """E[x | y, z]: ADGM's x does not depend on a."""
        return self.to_data_space(self.p_x(y_onehot, z))

    # --- shared by ADGM and SDGM ---------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(x) if self.binarize and self.training else x

    def sample_a(self, x: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """a ~ q(a|x), (S, B, A), and log q(a|x), (S, B)."""
        mean, logvar = self.q_a(x)
        a = elbo.reparameterize(
            mean.expand(samples, *mean.shape), logvar.expand(samples, *logvar.shape)
        )
        return a, elbo.gaussian_log_prob(a, mean, logvar)

    def kl_weight(self) -> float:
        """beta of the KL warm-up (``kl_warmup_epochs``; Sonderby et al. 2016) while training,
        1 (the bound) otherwise. It rises over fractional epochs of optimiser steps."""
        if not (self.training and self.kl_warmup_epochs and self._trainer is not None):
            return 1.0
        epochs_done = self.global_step / max(1, self.trainer.num_training_batches)
        return elbo.kl_warmup_weight(epochs_done, self.kl_warmup_epochs)

    def bound_given_a(self, x, y_onehot, a, beta: float = 1.0) -> torch.Tensor:
        """L(x, y, a) without -log q(a|x): one z ~ q(z|a,y,x). Broadcasts over leading dims."""
        mean, logvar = self.q_z(x, a, y_onehot)
        z = elbo.reparameterize(mean, logvar)
        log_py = (y_onehot * self.log_prior_y.to(y_onehot)).sum(-1)
        return elbo.auxiliary_labeled_elbo(
            self.log_px(x, y_onehot, z, a),
            log_py,
            elbo.standard_normal_log_prob(z),
            self.log_pa(x, y_onehot, z, a),
            elbo.gaussian_log_prob(z, mean, logvar),
            beta,
        )

    def labeled_elbo(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """L(x, y), averaged over ``samples`` draws of a: (B,)."""
        beta = self.kl_weight()
        a, log_qa = self.sample_a(x, self.samples)  # (S, B, A), (S, B)
        y_onehot = F.one_hot(y, self.num_classes).to(x.dtype)
        return (self.bound_given_a(x, y_onehot, a, beta) - beta * log_qa).mean(0)

    def unlabeled_elbo(self, x: torch.Tensor) -> torch.Tensor:
        """U(x): y summed out under q(y|a,x) in one pass over every class: (B,)."""
        beta = self.kl_weight()
        a, log_qa = self.sample_a(x, self.samples)  # (S, B, A)
        every_y = torch.eye(self.num_classes, dtype=x.dtype, device=x.device)[:, None, None]
        per_class = self.bound_given_a(x, every_y, a, beta)  # (K, S, B)
        logits = self.q_y(x, a)  # (S, B, K)
        bound = elbo.unlabeled_elbo(per_class.flatten(1), logits.flatten(0, 1))  # (S * B,)
        return (bound.view_as(log_qa) - beta * log_qa).mean(0)

    # --- what figures call (ssvae/figures.py) -------------------------------------------------
    def to_data_space(self, decoded) -> torch.Tensor:
        return decoded[0] if self.likelihood == "gaussian" else torch.sigmoid(decoded)

    @torch.no_grad()
    def generate(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decode(F.one_hot(y, self.num_classes).to(z.dtype), z)

    @torch.no_grad()
    def infer_style(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """q(z | a, y, x)'s mean at a = q(a|x)'s mean."""
        a = self.q_a(x)[0]
        return self.q_z(x, a, F.one_hot(y, self.num_classes).to(x.dtype))[0]

    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.infer_style(x, self.classify(x).argmax(-1))

    @torch.no_grad()
    def posterior_means(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """q(a|x)'s mean and the style z (``infer_style`` at the predicted class). An a that the
        model ignores sits at one point for every x: no active units (docs/adgm.md)."""
        return {"a": self.q_a(x)[0], "z": self.latent(x)}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        y = self.classify(x).argmax(-1)
        return self.generate(y, self.infer_style(x, y))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """log of q(y|a,x) averaged over ``eval_samples`` draws of a (one pass): (B, K)."""
        samples = self.samples if self.training else self.eval_samples
        a, _ = self.sample_a(x, samples)
        log_q = F.log_softmax(self.q_y(x, a), dim=-1)  # (S, B, K)
        return torch.logsumexp(log_q, dim=0) - torch.log(torch.tensor(float(samples)))

    def class_nll(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """mean -log q(y|a,x), a ~ q(a|x) (averaged over ``samples`` draws)."""
        return F.nll_loss(self.classify(x), y)

    def configure_gradient_clipping(
        self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ):
        """The authors' clipping as the model's default, through Lightning's hook: the total norm
        to ``gradient_clip_norm``, then (their code, off by default) each element to
        ±``gradient_clip_value``. trainer.gradient_clip_val, when set, takes the norm's place."""
        value = gradient_clip_val if gradient_clip_val is not None else self.gradient_clip_norm
        if value:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=value,
                gradient_clip_algorithm=gradient_clip_algorithm or "norm",
            )
        if self.gradient_clip_value:
            # Through the precision plugin, as clip_gradients does: clip_gradients itself refuses
            # a second algorithm beside trainer.gradient_clip_val/_algorithm.
            self.trainer.precision_plugin.clip_grad_by_value(optimizer, self.gradient_clip_value)
