"""Shared building blocks: a multi-input MLP and the Gaussian / Bernoulli / categorical heads."""

from __future__ import annotations

from collections.abc import Sequence

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


def check_layer_sizes(hidden_dims: Sequence[int], z_dim: int) -> list[int]:
    """Validate ``model.hidden_dims`` and ``model.z_dim`` and return the widths as a list."""
    widths = list(hidden_dims)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in widths):
        raise ConfigError(f"model.hidden_dims={widths} must be a non-empty list of positive ints")
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim <= 0:
        raise ConfigError(f"model.z_dim={z_dim} must be a positive integer")
    return widths
