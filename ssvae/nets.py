"""Shared building blocks: a multi-input MLP, the Gaussian / Bernoulli / categorical heads, and
batch-normalised MLPs with control over which passes update batch norm's running averages."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ssvae.errors import ConfigError

ACTIVATIONS = {"softplus": nn.Softplus, "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"model.activation={name!r} is not known; allowed: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """An MLP over one or more inputs whose first layer is a sum of one linear map per input.

    Summing the per-input projections equals one linear map on the concatenated inputs, but it
    broadcasts: M2 projects x once as (B, H) and adds each class's projection (K, 1, H), giving
    (K, B, H) for all classes without repeating x K times.
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str = "softplus",
    ) -> None:
        super().__init__()
        if not hidden_dims:
            raise ConfigError("model.hidden_dims must list at least one layer width")
        self.first = nn.ModuleList(
            nn.Linear(d, hidden_dims[0], bias=(i == 0)) for i, d in enumerate(in_dims)
        )
        layers: list[nn.Module] = [make_activation(activation)]
        for width_in, width_out in zip(hidden_dims[:-1], hidden_dims[1:], strict=True):
            layers += [nn.Linear(width_in, width_out), make_activation(activation)]
        layers.append(nn.Linear(hidden_dims[-1], out_dim))
        self.rest = nn.Sequential(*layers)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) != len(self.first):
            raise ValueError(f"expected {len(self.first)} inputs, got {len(inputs)}")
        h = self.first[0](inputs[0])
        for layer, x in zip(self.first[1:], inputs[1:], strict=True):
            h = h + layer(x)  # broadcasts, e.g. (B, H) + (K, 1, H) -> (K, B, H)
        return self.rest(h)


class GaussianMLP(MLP):
    """A diagonal Gaussian head: returns (mean, log-variance), each (..., out_dim)."""

    def __init__(
        self,
        in_dims: Sequence[int],
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str = "softplus",
    ) -> None:
        super().__init__(in_dims, hidden_dims, 2 * out_dim, activation)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = super().forward(*inputs).chunk(2, dim=-1)
        return mean, logvar


INITS = ("torch", "glorot")


def initialize(module: nn.Module, init: str) -> None:
    """(Re)initialise every MLP inside ``module``.

    "torch": PyTorch's default, left as built (uniform weights, std 1/sqrt(3 fan_in)).
    "glorot": as Maaløe et al.'s ADGM code: Glorot-normal weights with the ReLU gain in the
    hidden layers (variance-preserving through ReLUs), Glorot-normal output layers, except the
    last layer of a Gaussian head, N(0, 1e-3^2), so that every q and p starts near N(0, I);
    biases N(0, 1e-3^2).
    """
    if init not in INITS:
        raise ConfigError(f"model.init={init!r} is not known; allowed: {list(INITS)}")
    if init == "torch":
        return
    small = 1e-3
    for mlp in module.modules():
        if not isinstance(mlp, MLP):
            continue
        *hidden, last = [*mlp.first, *(m for m in mlp.rest if isinstance(m, nn.Linear))]
        for layer in hidden:
            nn.init.xavier_normal_(layer.weight, gain=nn.init.calculate_gain("relu"))
        if isinstance(mlp, GaussianMLP):
            nn.init.normal_(last.weight, 0.0, small)
        else:
            nn.init.xavier_normal_(last.weight)
        for layer in (*hidden, last):
            if layer.bias is not None:
                nn.init.normal_(layer.bias, 0.0, small)


def check_layer_sizes(
    hidden_dims: Sequence[int], z_dim: int, field: str = "model.hidden_dims"
) -> list[int]:
    """Validate ``model.hidden_dims`` (or ``field``) and ``model.z_dim``; the widths as a list."""
    widths = list(hidden_dims)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in widths):
        raise ConfigError(f"{field}={widths} must be a non-empty list of positive ints")
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        raise ConfigError(f"model.z_dim={z_dim} must be a positive integer")
    return widths


# --- batch-normalised networks (the consistency baselines: VAT, Ladder, Mean Teacher) ---------


class GaussianNoise(nn.Module):
    """Adds N(0, std^2) in training mode; the identity in evaluation (and in the clean passes
    that re-estimate batch-norm statistics, which put every module but batch norm in eval)."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std else x


class BatchNormMLP(nn.Module):
    """Linear -> batch norm -> activation (-> Gaussian noise) for each hidden layer, then a
    batch-normalised output layer: VAT's MNIST networks (Miyato et al. 2018: batch norm after
    every linear map; noise of std 0.5 on each hidden layer in the 2018 setting). The linear maps
    carry no bias: the batch norm's shift replaces it."""

    def __init__(
        self,
        in_dim: int,
        hidden_dims: Sequence[int],
        out_dim: int,
        activation: str = "relu",
        hidden_noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden_dims:
            raise ConfigError("model.hidden_dims must list at least one layer width")
        if not hidden_noise_std >= 0:
            raise ConfigError(f"model.hidden_noise_std={hidden_noise_std} must be >= 0")
        widths = [in_dim, *hidden_dims]
        layers: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.Linear(width_in, width_out, bias=False),
                nn.BatchNorm1d(width_out),
                make_activation(activation),
                GaussianNoise(hidden_noise_std),  # std 0: the identity (same state-dict keys)
            ]
        layers += [nn.Linear(widths[-1], out_dim, bias=False), nn.BatchNorm1d(out_dim)]
        self.net = nn.Sequential(*layers)
        # N(0, 1/fan_in), as the published VAT code (torch's default is sqrt(3) narrower): with
        # batch norm after them the weights' scale sets the effective step size of Adam.
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, 0.0, layer.in_features**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Inside, batch norm still normalises by the batch's statistics (in training mode) but
    leaves its running averages as they were: momentum 0 makes the update a no-op. For the
    passes a recipe says must not move them (VAT's unlabeled and perturbed passes)."""
    layers = batch_norms(module)
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(layers, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


@torch.no_grad()
def recompute_running_stats(
    module: nn.Module, batches: Iterable[torch.Tensor], forward: Callable[[torch.Tensor], object]
) -> None:
    """Replace every batch norm's running averages by the average of the batch statistics of
    ``forward`` over ``batches`` (a plain loop without gradients, every other module in eval).
    With equal batches this is the population mean and the mean within-batch variance, as the
    published VAT code re-estimates them over the training data after training."""
    layers = batch_norms(module)
    was_training = module.training
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches that follow
    module.eval()  # a clean pass: no noise, no dropout ...
    for m in layers:
        m.train()  # ... but batch norm normalising by, and averaging, each batch's statistics
    try:
        for x in batches:
            forward(x)
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        module.train(was_training)
