"""``ssvae-figures RUN_DIR [--out DIR]``: what a trained run's model learned, as PNG files.

Each figure is drawn for the runs whose model offers what it needs, through the model's own
methods (no second copy of a network):
- conditional.png: rows share a style z ~ N(0, I), columns are the classes (``generate``);
- analogies.png: real test images (first column), their style from q(z|x,y), regenerated as
  every class (the paper's Figure 1, right; ``infer_style`` + ``generate``);
- reconstructions.png: test images above their reconstructions (``reconstruct``);
- samples.png: x ~ p(x) from the prior (``generate``, or M1's decoder);
- latent_map.png: test latents (``latent``: M2's style z, M1's VAE latent) in 2-D by PCA and by
  t-SNE, coloured by label;
- latent_use.png (+ latent_use.json): for each Gaussian latent (``posterior_means``: M1's z, M2's
  z, M1+M2's z1 and z2, ADGM's and SDGM's a and z), the variance over test images of each
  dimension's posterior mean, sorted, with Burda et al.'s (2016) "active unit" threshold of
  0.01: a latent the model ignores (an auxiliary a that collapsed) has none above it;
- learning_curves.png: validation error and the ELBO terms against epochs, from logs/metrics.csv;
- confusion.png (+ confusion.json): the test split's confusion matrix (``classify``), counts and
  each true class's share: which classes a model mixes up (every model has this one).
Image figures need image-shaped data; for a table only the latent map, curves and confusion matrix
are drawn.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ssvae.errors import ConfigError, SsvaeError
from ssvae.io import write_bytes_atomic, write_json_atomic

DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    _pyplot().close(fig)
    return write_bytes_atomic(path, buffer.getvalue())


def image_grid(
    images: np.ndarray,
    shape: tuple[int, ...],
    path: Path,
    title: str = "",
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
) -> Path:
    """A (rows, cols, D) array of images drawn as a grid, each image ``shape`` (C, H, W)."""
    plt = _pyplot()
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * 0.8 + 0.6, rows * 0.8 + 0.6), squeeze=False
    )
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            image = images[r, c].reshape(shape).clip(0, 1)
            if shape[0] == 1:
                ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(image.transpose(1, 2, 0))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and col_labels:
                ax.set_title(col_labels[c], fontsize=8)
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def image_shape(shape: list[int]) -> tuple[int, int, int] | None:
    """(C, H, W) for image data (grey (H, W) / (1, H, W), or RGB (3, H, W)); None for tables."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return shape
    return None


def conditional(model, classes: list[str], shape, path: Path, styles: int = 8) -> Path:
    z = torch.randn(styles, model.hparams.z_dim)
    k = len(classes)
    y = torch.arange(k).repeat(styles)
    images = model.generate(y, z.repeat_interleave(k, 0)).float().reshape(styles, k, -1)
    return image_grid(
        images.numpy(), shape, path, "rows: one style z each; columns: classes", col_labels=classes
    )


def analogies(
    model, x: torch.Tensor, y: torch.Tensor, classes: list[str], shape, path: Path
) -> Path:
    k = len(classes)
    z = model.infer_style(x, y)
    regenerated = model.generate(torch.arange(k).repeat(len(x)), z.repeat_interleave(k, 0))
    grid = torch.cat([x.float().unsqueeze(1), regenerated.float().reshape(len(x), k, -1)], 1)
    return image_grid(
        grid.numpy(),
        shape,
        path,
        "test image (left), its style as every class",
        col_labels=["test", *classes],
    )


def reconstructions(model, x: torch.Tensor, shape, path: Path) -> Path:
    recon = model.reconstruct(x).float()
    grid = torch.stack([x.float(), recon]).numpy()
    return image_grid(
        grid, shape, path, "test images (top) and reconstructions", row_labels=["x", "recon."]
    )


def samples(model, classes: list[str], shape, path: Path, n: int = 32) -> Path:
    if hasattr(model, "generate"):
        y = torch.randint(len(classes), (n,))
        x = model.generate(y, torch.randn(n, model.hparams.z_dim))
    else:  # M1: its VAE's decoder
        x = model.vae.decode_mean(torch.randn(n, model.vae.hparams.z_dim))
    return image_grid(x.float().reshape(4, n // 4, -1).numpy(), shape, path, "samples from p(x)")


def latent_map(
    latents: np.ndarray, labels: np.ndarray, classes: list[str], path: Path, seed: int = 0
) -> Path:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    pca = PCA(n_components=2, random_state=seed).fit_transform(latents)
    perplexity = min(30.0, max(2.0, (len(latents) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(latents)
    for ax, points, name in ((axes[0], pca, "PCA"), (axes[1], tsne, "t-SNE")):
        for i, cls in enumerate(classes):
            chosen = labels == i
            ax.scatter(points[chosen, 0], points[chosen, 1], s=4, label=cls)
        ax.set_title(f"test latents, {name}")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].legend(markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return _save(fig, path)


# Burda, Grosse & Salakhutdinov (2016): a latent dimension u is active when Cov_x(E_q[u|x]) > 0.01.
ACTIVE_UNIT_THRESHOLD = 0.01


def active_units(
    means: dict[str, torch.Tensor], threshold: float = ACTIVE_UNIT_THRESHOLD
) -> dict[str, dict]:
    """Per latent: its dimensions, how many are active, and each dimension's variance over the
    images of its posterior mean (largest first)."""
    use = {}
    for name, mean in means.items():
        variance = mean.float().var(0).sort(descending=True).values
        use[name] = {
            "dims": len(variance),
            "active": int((variance > threshold).sum()),
            "threshold": threshold,
            "variance": [float(f"{v:.4g}") for v in variance.tolist()],
        }
    return use


def latent_use(use: dict[str, dict], path: Path) -> Path:
    """Each latent's sorted per-dimension variances on a log scale, the threshold drawn."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(use), figsize=(5 * len(use), 3.5), squeeze=False)
    for ax, (name, stats) in zip(axes[0], use.items(), strict=True):
        variance = np.maximum(stats["variance"], 1e-8)  # log scale: a collapsed unit shows at 1e-8
        ax.bar(np.arange(1, len(variance) + 1), variance, width=1.0)
        ax.axhline(stats["threshold"], color="black", linestyle=":", label="active above")
        ax.set_yscale("log")
        ax.set(
            xlabel=f"{name}'s dimensions, sorted",
            ylabel="variance of E_q[u|x] over test images",
            title=f"{name}: {stats['active']} of {stats['dims']} active",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def learning_curves(metrics_csv: Path, path: Path) -> Path | None:
    """Validation error and the training ELBO terms (epoch means) against epochs."""
    if not metrics_csv.is_file():
        return None
    frame = pd.read_csv(metrics_csv)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if "val/err" in frame:
        val = frame.dropna(subset=["val/err"])
        axes[0].plot(val["epoch"], 100 * val["val/err"])
    axes[0].set(xlabel="epoch", ylabel="validation error %", title="validation error")
    terms = [c for c in frame.columns if c.startswith("train/elbo")]
    for column in terms:
        per_epoch = frame.dropna(subset=[column]).groupby("epoch")[column].mean()
        axes[1].plot(per_epoch.index, per_epoch.values, label=column.removeprefix("train/"))
    axes[1].set(xlabel="epoch", ylabel="ELBO (nats per example)", title="training terms")
    if "train/class_nll" in frame:  # on its own scale: a few nats against ~100
        nll = frame.dropna(subset=["train/class_nll"]).groupby("epoch")["train/class_nll"].mean()
        twin = axes[1].twinx()
        twin.plot(nll.index, nll.values, color="black", linestyle=":", label="class_nll")
        twin.set_ylabel("-log q(y|x), labeled")
        twin.legend(fontsize=8, loc="center right")
    if terms:
        axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def confusion(model, x: torch.Tensor, y: torch.Tensor, classes: list[str], path: Path) -> Path:
    """The test split's confusion matrix, rows the true class, normalised per row; the counts go
    to ``confusion.json`` beside it."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    from ssvae.predict import probabilities

    predicted = probabilities(model, x, temperature=1.0).argmax(-1).numpy()
    counts = confusion_matrix(y.numpy(), predicted, labels=list(range(len(classes))))
    error = 1.0 - np.trace(counts) / max(1, counts.sum())
    write_json_atomic(
        path.with_suffix(".json"),
        {"classes": classes, "counts": counts.tolist(), "test_err": float(error)},
    )
    plt = _pyplot()
    size = max(5.0, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    display = ConfusionMatrixDisplay(shares, display_labels=classes)
    display.plot(ax=ax, values_format=".2f", colorbar=False, cmap="Blues")
    ax.set_title(f"test split: {100 * error:.2f} % error; rows: true class, share per row")
    fig.tight_layout()
    return _save(fig, path)


FIGURES = (
    "conditional",
    "analogies",
    "reconstructions",
    "samples",
    "latent_map",
    "latent_use",
    "learning_curves",
    "confusion",
)


def draw_figures(
    run_dir: Path,
    out_dir: Path | None = None,
    latent_points: int = 2000,
    seed: int = 0,
    only: Collection[str] | None = None,
) -> list[Path]:
    """Every figure that applies to the run's model (or those of ``only`` that apply); returns
    the files written."""
    from ssvae.predict import load_run, trained_model
    from ssvae.train import build_data

    unknown = set(only or ()) - set(FIGURES)
    if unknown:
        raise ConfigError(f"figures {sorted(unknown)} are not known; allowed: {list(FIGURES)}")

    def wanted(name: str) -> bool:
        return only is None or name in only

    cfg, result, record = load_run(run_dir)
    out_dir = Path(out_dir or run_dir / "figures")
    datamodule = build_data(cfg)
    model = trained_model(cfg, result, run_dir, datamodule)
    torch.manual_seed(seed)
    classes = datamodule.class_names
    shape = image_shape(record.get("shape") or list(datamodule.splits.shape))
    x, y = datamodule._test
    # The same test points for the latent map and the active units, whichever are drawn.
    chosen = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:latent_points]
    written: list[Path | None] = []
    if shape is not None:
        if hasattr(model, "generate"):
            if wanted("conditional"):
                written.append(conditional(model, classes, shape, out_dir / "conditional.png"))
            if wanted("analogies"):
                first = torch.stack(
                    [torch.nonzero(y == k)[0, 0] for k in range(len(classes)) if (y == k).any()]
                )[:8]
                written.append(
                    analogies(model, x[first], y[first], classes, shape, out_dir / "analogies.png")
                )
        # Asked before the model is probed: a probe runs the model (ADGM averages many draws).
        reconstructs = (
            wanted("reconstructions")
            and getattr(model, "reconstruct", None)
            and model.reconstruct(x[:2]) is not None
        )
        if reconstructs:
            written.append(reconstructions(model, x[:12], shape, out_dir / "reconstructions.png"))
        generates = hasattr(model, "generate") or getattr(model, "vae", None) is not None
        if generates and wanted("samples"):
            written.append(samples(model, classes, shape, out_dir / "samples.png"))
    if hasattr(model, "latent") and wanted("latent_map"):
        latents = model.latent(x[chosen]).float().cpu().numpy()
        written.append(
            latent_map(latents, y[chosen].numpy(), classes, out_dir / "latent_map.png", seed)
        )
    if hasattr(model, "posterior_means") and wanted("latent_use"):
        use = active_units(model.posterior_means(x[chosen]))
        write_json_atomic(out_dir / "latent_use.json", use)
        written.append(latent_use(use, out_dir / "latent_use.png"))
    if wanted("learning_curves"):
        written.append(
            learning_curves(run_dir / "logs" / "metrics.csv", out_dir / "learning_curves.png")
        )
    if wanted("confusion"):
        written.append(confusion(model, x, y, classes, out_dir / "confusion.png"))
    return [p for p in written if p is not None]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ssvae-figures", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished run's folder")
    parser.add_argument("--out", type=Path, help="where to write the PNGs (default RUN/figures)")
    parser.add_argument("--latent-points", type=int, default=2000, help="test points in the map")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=FIGURES,
        metavar="FIGURE",
        help=f"draw only these (of {', '.join(FIGURES)}); t-SNE makes latent_map the slow one",
    )
    args = parser.parse_args(argv)
    try:
        written = draw_figures(args.run_dir, args.out, args.latent_points, only=args.only)
    except SsvaeError as exc:
        sys.exit(f"ssvae-figures: error: {exc}")
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
