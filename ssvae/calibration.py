"""Can a model's probabilities be trusted? NLL, expected calibration error, temperature scaling
(Guo et al., 2017: one scalar T fitted on the validation split, softmax(logits / T)) and a
reliability diagram. Every model exposes log-probabilities through ``classify``, so this works
for all of them, scikit-learn baselines included."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from ssvae.io import write_bytes_atomic

ECE_BINS = 15


@torch.no_grad()
def collect_logits(model, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's class scores and the labels over a loader of ``(x, y)`` batches (eval mode)."""
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        logits.append(model.classify_full_precision(x.to(model.device)).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(logits), torch.cat(labels)


def calibration_metrics(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0
) -> dict[str, float]:
    """Accuracy, mean NLL and ECE (15 equal-width confidence bins) of softmax(logits / T)."""
    scaled = logits / temperature
    probs = scaled.softmax(-1)
    ece = multiclass_calibration_error(
        probs, labels, num_classes=logits.shape[1], n_bins=ECE_BINS, norm="l1"
    )
    return {
        "acc": float((probs.argmax(-1) == labels).float().mean()),
        "nll": float(F.cross_entropy(scaled, labels)),
        "ece": float(ece),
    }


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising the NLL of softmax(logits / T) on (held-out) labels.

    Optimised over log T with L-BFGS, so T stays positive; argmax, hence accuracy, is unchanged.
    """
    finite = logits.clamp(min=math.log(1e-12) * 10)  # -inf (impossible classes) stays harmless
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(finite / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def temperature_scaling(model, datamodule) -> dict:
    """Fit T on the validation split; report validation and test NLL/ECE before and after."""
    val_logits, val_labels = collect_logits(model, datamodule.val_dataloader())
    test_logits, test_labels = collect_logits(model, datamodule.test_dataloader())
    temperature = fit_temperature(val_logits, val_labels)
    return {
        "temperature": temperature,
        "val_before": calibration_metrics(val_logits, val_labels),
        "val_after": calibration_metrics(val_logits, val_labels, temperature),
        "test_before": calibration_metrics(test_logits, test_labels),
        "test_after": calibration_metrics(test_logits, test_labels, temperature),
    }


def reliability_diagram(
    logits: torch.Tensor,
    labels: torch.Tensor,
    path: Path,
    temperature: float | None = None,
    title: str = "",
) -> Path:
    """Accuracy against confidence in 15 bins (before, and after scaling when T is given)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    edges = torch.linspace(0, 1, ECE_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    curves = [("before", 1.0)] + ([("after", temperature)] if temperature else [])
    for name, t in curves:
        probs = (logits / t).softmax(-1)
        confidence, predicted = probs.max(-1)
        correct = (predicted == labels).float()
        bins = torch.bucketize(confidence, edges[1:-1])
        accuracy = [
            float(correct[bins == b].mean()) if (bins == b).any() else float("nan")
            for b in range(ECE_BINS)
        ]
        ece = calibration_metrics(logits, labels, t)["ece"]
        label = f"{name}: ECE {100 * ece:.2f} %" + (f" (T = {t:.2f})" if name == "after" else "")
        ax.plot(centres, accuracy, marker="o", label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return write_bytes_atomic(path, buffer.getvalue())
