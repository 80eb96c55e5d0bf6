"""Virtual adversarial training (Miyato et al. 2018, "Virtual Adversarial Training: a
Regularization Method for Supervised and Semi-Supervised Learning"), eqs. (1)-(4) and (12):

    loss = mean_labeled CE(y, f(x))  +  weight * mean_unlabeled LDS(x)
    LDS(x) = KL( p(y | x) || p(y | x + r_adv) ),   r_adv = epsilon * d / ||d||_2

where p(y | x) is held constant and d comes from ``power_iterations`` steps of the power method
on the KL's Hessian, by finite differences: d <- grad_r KL(p(y|x) || p(y|x + r)) at r = xi d/||d||.

The published MNIST setting (takerum/vat): 784-1200-1200-10 ReLU with batch norm after every
linear map, 100 labeled + 250 unlabeled images per step, epsilon = 0.3 (L2, in pixel units of
[0, 1] images), xi = 1e-6, one power iteration, weight 1, Adam 2e-3 x0.9 every 500 steps.
Only the labeled pass moves batch norm's running averages; the clean unlabeled pass and the
perturbed passes do not (ssvae.models.consistency re-estimates them over the data).

epsilon is a distance in input space. On standardised tables (every feature of unit variance)
||x|| is about sqrt(x_dim), against about 9.3 for an MNIST image: choose epsilon for that scale
on validation accuracy (docs/baselines.md: hparams_search=vat_optuna).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ssvae.config_checks import positive_int
from ssvae.elbo import categorical_entropy
from ssvae.errors import ConfigError
from ssvae.models.base import OptimizerFactory, SchedulerFactory
from ssvae.models.consistency import ConsistencyModule
from ssvae.nets import BatchNormMLP, check_layer_sizes, running_stats_frozen


def kl_from_logits(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row, sum_k p_k (log p_k - log q_k), for categoricals given by logits."""
    log_p = F.log_softmax(p_logits, dim=-1)
    return (log_p.exp() * (log_p - F.log_softmax(q_logits, dim=-1))).sum(-1)


def l2_normalize(d: torch.Tensor) -> torch.Tensor:
    """Each row to unit L2 norm; first scaled by its largest entry, as the published code does,
    so that tiny finite-difference gradients do not underflow when squared."""
    flat = d.flatten(1)
    flat = flat / (flat.abs().amax(1, keepdim=True) + 1e-12)
    flat = flat / torch.sqrt((flat**2).sum(1, keepdim=True) + 1e-6)
    return flat.view_as(d)


def adversarial_direction(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    clean_logits: torch.Tensor,
    xi: float,
    power_iterations: int,
) -> torch.Tensor:
    """The unit direction (per row) in which p(y | x + r) departs fastest from p(y | x): the
    dominant eigenvector of the KL's Hessian in r, by ``power_iterations`` finite-difference
    steps from a random start. ``clean_logits`` are held constant."""
    target = clean_logits.detach()
    d = torch.randn_like(x)
    for _ in range(power_iterations):
        r = (xi * l2_normalize(d)).requires_grad_()
        kl = kl_from_logits(target, forward(x + r)).sum()
        d = torch.autograd.grad(kl, r)[0].detach()
    return l2_normalize(d)


class VAT(ConsistencyModule):
    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        hidden_dims: Sequence[int] = (1200, 600, 300, 150),
        activation: str = "relu",
        hidden_noise_std: float = 0.5,
        epsilon: float = 5.0,
        xi: float = 1e-6,
        power_iterations: int = 1,
        weight: float = 1.0,
        entropy_weight: float = 0.0,
        bn_stats: str = "recompute",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler, bn_stats)
        hidden = check_layer_sizes(hidden_dims, 1)
        for field, value in (("epsilon", epsilon), ("xi", xi)):
            if not value > 0:
                raise ConfigError(f"model.{field}={value} must be > 0")
        positive_int(power_iterations, "model.power_iterations")
        for field, value in (("weight", weight), ("entropy_weight", entropy_weight)):
            if not value >= 0:
                raise ConfigError(f"model.{field}={value} must be >= 0")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.classifier = BatchNormMLP(x_dim, hidden, num_classes, activation, hidden_noise_std)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def clean_passes(self):
        return [(self.classifier, self.classifier)]

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        x_l, y_l = batch["labeled"]
        class_nll = F.cross_entropy(self.classifier(x_l), y_l)  # the only pass moving BN stats
        terms = {"class_nll": class_nll}
        loss = class_nll
        x_u = batch.get("unlabeled")
        if x_u is not None:
            hp = self.hparams
            with running_stats_frozen(self.classifier):
                clean = self.classifier(x_u)
                d = adversarial_direction(self.classifier, x_u, clean, hp.xi, hp.power_iterations)
                perturbed = self.classifier(x_u + hp.epsilon * d)
            lds = kl_from_logits(clean.detach(), perturbed).mean()
            loss = loss + hp.weight * lds
            terms["lds"] = lds
            if hp.entropy_weight:  # VAT + EntMin (Miyato et al. sec. 4.1.2)
                entropy = categorical_entropy(clean).mean()
                loss = loss + hp.entropy_weight * entropy
                terms["entropy"] = entropy
        return {"loss": loss, **terms}
