"""The Ladder network of Rasmus et al. (2015), "Semi-Supervised Learning with Ladder Networks",
sec. 3 and Algorithm 1, as a permutation-invariant MLP ("Ladder, full").

Encoder layer l (batch norm without its own scale, then noise, then a learnt shift beta_l):
    z~_l = BN(W_l h~_{l-1}) + N(0, noise_std^2),   h~_l = relu(z~_l + beta_l)
    top:   logits = gamma * (z~_L + beta_L),      the clean encoder is the same with no noise.
Decoder, from the top down (u standardised over the batch):
    u_L = BN(softmax(logits~)),   u_l = BN(V_l z^_{l+1}),   z^_l = g(z~_l, u_l)
    g (eq. 2): mu = a1 sigmoid(a2 u + a3) + a4 u + a5,  v = a6 sigmoid(a7 u + a8) + a9 u + a10,
               z^ = (z~ - mu) v + mu
Cost: CE(y, softmax(logits~)) on labeled images + sum_l lambda_l * C_l on unlabeled images,
    C_l = mean over images and units of ((z^_l - mu_l) / sigma_l - z_l)^2,
where z_l, mu_l, sigma_l are the clean encoder's normalised activations and batch statistics
(layer 0: the input itself, not normalised).

The published MNIST setting (CuriousAI/ladder): 784-1000-500-250-250-250-10, noise 0.3 on every
layer, lambda = 1000, 10, 0.1, 0.1, 0.1, 0.1, 0.1, 100 labeled + 100 unlabeled images per step,
labeled and unlabeled images normalised by their own batch statistics, Adam 2e-3 for 150
epochs, decayed linearly to zero from epoch 100. The clean labeled pass is the one whose
statistics feed the running averages (with bn_stats=running; by default they are re-estimated
over the data, ssvae.models.consistency).

noise_std is in the units of each layer's input: pixels in [0, 1] for images, and on
standardised tables one standard deviation of each feature (docs/baselines.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssvae.errors import ConfigError
from ssvae.models.base import OptimizerFactory, SchedulerFactory
from ssvae.models.consistency import ConsistencyModule
from ssvae.nets import check_layer_sizes, running_stats_frozen

# The combinator's ten per-unit parameters start at a2 = a7 = 1, the rest 0 (as published).
COMBINATOR_INIT = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
EPS = 1e-5


def combinator(z_noisy: torch.Tensor, u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The vanilla denoising function g(z~, u), eq. (2); ``a`` is (10, units)."""
    mu = a[0] * torch.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    v = a[5] * torch.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    return (z_noisy - mu) * v + mu


def standardize(u: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit (biased) variance per unit over the batch."""
    return (u - u.mean(0)) / torch.sqrt(u.var(0, unbiased=False) + EPS)


def denoising_cost(
    z_hat: torch.Tensor,
    z_clean: torch.Tensor,
    mean: torch.Tensor | None = None,
    var: torch.Tensor | None = None,
) -> torch.Tensor:
    """C_l: the mean over images and units of (BN(z^) - z)^2, z^ normalised by the clean
    encoder's batch statistics (none for the input layer)."""
    if mean is not None:
        z_hat = (z_hat - mean) / torch.sqrt(var + EPS)
    return ((z_hat - z_clean) ** 2).mean()


def checked_ladder_settings(
    widths: Sequence[int], noise_std: float, denoising_weights: Sequence[float]
) -> list[float]:
    """The denoising weights as floats, one per layer of ``widths`` (the input first), after
    checking them and the noise's std; a ConfigError naming the field otherwise."""
    weights = [float(w) for w in denoising_weights]
    if len(weights) != len(widths) or any(not w >= 0 for w in weights):
        raise ConfigError(
            f"model.denoising_weights={weights} must list {len(widths)} numbers >= 0: one "
            f"for the input and each of the {len(widths) - 1} layers of {list(widths)}"
        )
    if not noise_std >= 0:
        raise ConfigError(f"model.noise_std={noise_std} must be >= 0")
    return weights


@dataclass
class EncoderPass:
    z: list[torch.Tensor]  # per layer 0..L: the (noisy) normalised activations, z_0 the input
    mean: list[torch.Tensor | None]  # per layer: the batch mean before normalising (None: 0)
    var: list[torch.Tensor | None]
    logits: torch.Tensor


class LadderEncoder(nn.Module):
    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        pairs = list(zip(widths[:-1], widths[1:], strict=True))
        self.linears = nn.ModuleList(nn.Linear(i, o, bias=False) for i, o in pairs)
        for layer in self.linears:  # N(0, 1/fan_in), as published
            nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(layer.in_features))
        self.norms = nn.ModuleList(nn.BatchNorm1d(o, eps=EPS, affine=False) for _, o in pairs)
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(o)) for _, o in pairs)
        self.gamma = nn.Parameter(torch.ones(widths[-1]))  # the softmax layer only

    def forward(self, x: torch.Tensor, noise_std: float = 0.0) -> EncoderPass:
        def noisy(t: torch.Tensor) -> torch.Tensor:
            return t + noise_std * torch.randn_like(t) if noise_std else t

        h = noisy(x)
        out = EncoderPass(z=[h], mean=[None], var=[None], logits=h)
        last = len(self.linears) - 1
        for i, (linear, norm) in enumerate(zip(self.linears, self.norms, strict=True)):
            pre = linear(h)
            if self.training:  # the statistics norm() normalises by, for the decoder's targets
                out.mean.append(pre.mean(0))
                out.var.append(pre.var(0, unbiased=False))
            else:
                out.mean.append(norm.running_mean)
                out.var.append(norm.running_var)
            z = noisy(norm(pre))
            out.z.append(z)
            h = self.gamma * (z + self.beta[i]) if i == last else F.relu(z + self.beta[i])
        out.logits = h
        return out


class LadderDecoder(nn.Module):
    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        pairs = list(zip(widths[1:], widths[:-1], strict=True))  # V_l: layer l+1 -> layer l
        self.vertical = nn.ModuleList(nn.Linear(i, o, bias=False) for i, o in pairs)
        for layer in self.vertical:
            nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(layer.in_features))
        init = torch.tensor(COMBINATOR_INIT).unsqueeze(1)
        self.a = nn.ParameterList(nn.Parameter(init.repeat(1, w)) for w in widths)

    def forward(self, noisy: EncoderPass) -> list[torch.Tensor]:
        """z^_l for l = 0..L, from the corrupted encoder's lateral z~_l and its prediction."""
        top = len(noisy.z) - 1
        z_hat: list[torch.Tensor] = [None] * (top + 1)  # type: ignore[list-item]
        u = standardize(noisy.logits.softmax(-1))
        for i in range(top, -1, -1):
            if i < top:
                u = standardize(self.vertical[i](z_hat[i + 1]))
            z_hat[i] = combinator(noisy.z[i], u, self.a[i])
        return z_hat


class Ladder(ConsistencyModule):
    def __init__(
        self,
        x_dim: int,
        num_classes: int,
        hidden_dims: Sequence[int] = (1000, 500, 250, 250, 250),
        noise_std: float = 0.3,
        denoising_weights: Sequence[float] = (1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1),
        bn_stats: str = "recompute",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler, bn_stats)
        hidden = check_layer_sizes(hidden_dims, 1)
        widths = [x_dim, *hidden, num_classes]
        weights = checked_ladder_settings(widths, noise_std, denoising_weights)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.encoder = LadderEncoder(widths)
        self.decoder = LadderDecoder(widths)
        self.denoising_weights = weights

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).logits

    def clean_passes(self):
        return [(self.encoder, self.encoder)]

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        x_l, y_l = batch["labeled"]
        noise = self.hparams.noise_std
        if self.bn_stats == "running":  # the clean labeled pass feeds the running averages
            with torch.no_grad():
                self.encoder(x_l)
        with running_stats_frozen(self.encoder):
            class_nll = F.cross_entropy(self.encoder(x_l, noise).logits, y_l)
            terms = {"class_nll": class_nll}
            loss = class_nll
            x_u = batch.get("unlabeled")
            if x_u is not None:
                clean = self.encoder(x_u)
                z_hat = self.decoder(self.encoder(x_u, noise))
                for i, weight in enumerate(self.denoising_weights):
                    cost = denoising_cost(z_hat[i], clean.z[i], clean.mean[i], clean.var[i])
                    terms[f"denoise_{i}"] = cost
                    loss = loss + weight * cost
        return {"loss": loss, **terms}
