"""What a run measures after its test, when asked: how well it models x (the test ELBO and an
importance-weighted log p(x)) and whether its probabilities can be trusted (temperature scaling,
a reliability diagram). Both go through the model's own methods (``test_elbo``,
``log_px_estimate``, ``classify``), so they hold no copy of a network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

from ssvae.calibration import collect_logits, reliability_diagram, temperature_scaling


@torch.no_grad()
def log_likelihood(
    samples: int, model: L.LightningModule, datamodule: L.LightningDataModule
) -> dict[str, float]:
    """``log_likelihood_samples=K``: the test ELBO and an importance-weighted estimate of log p(x)
    with K samples (nats per example), for models of x (M1's VAE, M2); {} for the others or K=0."""
    estimate = getattr(model, "log_px_estimate", None)
    if samples <= 0 or not callable(estimate):
        return {}
    model.eval()
    elbos, estimates = [], []
    for x, _ in datamodule.test_dataloader():
        x = x.to(model.device).float()
        with torch.autocast(x.device.type, enabled=False):
            elbos.append(model.test_elbo(x).float().cpu())
            estimates.append(estimate(x, samples).float().cpu())
    return {
        "test_elbo": float(torch.cat(elbos).mean()),
        "test_log_px": float(torch.cat(estimates).mean()),
        "log_px_samples": samples,
    }


def calibrate(
    cfg: DictConfig,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    record: dict[str, Any],
    output_dir: Path,
) -> None:
    """``calibrate=true``: fit a temperature on validation (ssvae-predict applies it) and add its
    measures to ``record``; ``reliability_diagram=true``: draw test accuracy against confidence."""
    if cfg.get("calibrate"):
        record["calibration"] = temperature_scaling(model, datamodule)
    if cfg.get("reliability_diagram"):
        logits, labels = collect_logits(model, datamodule.test_dataloader())
        temperature = record.get("calibration", {}).get("temperature")
        title = f"{record['model']}, {record['num_labels']} labels, seed {record['seed']}"
        reliability_diagram(logits, labels, output_dir / "reliability.png", temperature, title)
