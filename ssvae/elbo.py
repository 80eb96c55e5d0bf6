"""ELBO terms as pure functions, each one line of Kingma et al. (2014), section 3.

Shapes: the last dimension is the event dimension and is summed; leading dimensions broadcast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ssvae.errors import ConfigError

LOG_2PI = math.log(2.0 * math.pi)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mean + sigma * eps, eps ~ N(0, I): a differentiable sample of N(mean, sigma^2)."""
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


def gaussian_kl_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) = 1/2 sum(mean^2 + var - 1 - logvar)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(logvar)), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (x - mean).pow(2) * torch.exp(-logvar)).sum(-1)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; sigmoid(logits)) = x*logits - softplus(logits), summed; broadcasts.

    Computed as -BCE-with-logits: one fused kernel forward and backward instead of four
    elementwise passes over M2's largest tensor (K, B, D), a third of a CPU step's time.
    """
    x = x.expand_as(logits) if x.shape != logits.shape else x
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def kl_warmup_weight(epochs_done: float, warmup_epochs: float) -> float:
    """beta of the warm-up objective E_q[log p(x|z)] - beta * KL (Sonderby et al. 2016): rises
    linearly from 0 to 1 over ``warmup_epochs`` (fractional epochs count), then stays at 1, so
    the bound proper is what training ends on. ``warmup_epochs`` <= 0: always 1."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, max(0.0, epochs_done / warmup_epochs))


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(q) = -sum_y q(y) log q(y) for q = softmax(logits)."""
    log_q = F.log_softmax(logits, dim=-1)
    return -(log_q.exp() * log_q).sum(-1)


def labeled_elbo(
    log_px: torch.Tensor, log_py: torch.Tensor | float, kl_z: torch.Tensor
) -> torch.Tensor:
    """Eq. (6): L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z))."""
    return log_px + log_py - kl_z


def unlabeled_elbo(elbo_per_class: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
    """Eq. (7): U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)).

    ``elbo_per_class`` is L(x, y) for every class, (K, B); ``class_logits`` are q(y|x)'s, (B, K).
    """
    q_y = F.softmax(class_logits, dim=-1)  # (B, K)
    return (q_y * elbo_per_class.transpose(0, 1)).sum(-1) + categorical_entropy(class_logits)


def auxiliary_labeled_elbo(
    log_px: torch.Tensor,
    log_py: torch.Tensor | float,
    log_pz: torch.Tensor,
    log_pa: torch.Tensor,
    log_qz: torch.Tensor,
    beta: float = 1.0,
) -> torch.Tensor:
    """Maaløe et al. (2016), eq. (8) given a ~ q(a|x), without its -log q(a|x):
    log p(x|.) + log p(y) + beta * (log p(z) + log p(a|.) - log q(z|a,y,x)), one sample of z.
    (ADGM: p(x|y,z), p(a|x,y,z); SDGM: p(x|y,z,a), p(a|y,z).) beta < 1: a KL warm-up
    (``kl_warmup_weight``), which weighs -log q(a|x) by the same beta; 1 is the bound."""
    return log_px + log_py + beta * (log_pz + log_pa - log_qz)


def importance_weighted_bound(log_weights: torch.Tensor) -> torch.Tensor:
    """log p(x) >= log (1/K) sum_k w_k = logsumexp_k(log w_k) - log K, over every leading
    dimension but the last (Burda et al. 2016); K = the number of weights per example.

    log_weights: (..., B), e.g. (K, B), or (K, classes, B) for M2, whose y is summed out.
    """
    flat = log_weights.reshape(-1, log_weights.shape[-1])
    return torch.logsumexp(flat, dim=0) - math.log(flat.shape[0])


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


LIKELIHOODS = ("bernoulli", "gaussian")


def check_likelihood(likelihood: str) -> None:
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"likelihood={likelihood!r} is not known; allowed: {list(LIKELIHOODS)}")


def log_likelihood(likelihood: str, x: torch.Tensor, decoded) -> torch.Tensor:
    """log p(x | ...) of a decoder's output: Bernoulli logits, or a Gaussian's (mean, logvar)."""
    if likelihood == "gaussian":
        return gaussian_log_prob(x, *decoded)
    return bernoulli_log_prob(decoded, x)
