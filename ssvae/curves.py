"""Time-to-accuracy curves: validation and test error after every epoch against wall time.

``LearningCurve`` is a Lightning callback (``callbacks=learning_curve``). After each validation
it appends a point to the run's ``curve.json``: epochs done, minutes since training started
(plus the model's pretraining time, e.g. M1's VAE for M1+M2), validation error, and test error.
The test error is only recorded to draw the curve; checkpoints are still chosen on validation,
and the time the curve's own test passes take is left out of the minutes, since a normal run
does not spend it. An optional budget stops training once the total time reaches it.

Under weight averaging (``weight_averaging=ema``) the points score the average, as validation
does, and also record ``val_err_trained`` / ``test_err_trained``: the weights being trained, on
the same trajectory, so one run measures what the average buys.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging

from ssvae.errors import ConfigError
from ssvae.io import write_bytes_atomic, write_json_atomic

CURVE_FILE = "curve.json"


class LearningCurve(L.Callback):
    def __init__(self, record_test: bool = True, budget_min: float | None = None) -> None:
        if budget_min is not None and not budget_min > 0:
            raise ConfigError(f"callbacks.learning_curve.budget_min={budget_min} must be > 0")
        self.record_test = record_test
        self.budget_min = budget_min
        self.points: list[dict[str, Any]] = []
        self.elapsed_before_s = 0.0  # training time of earlier sessions of a resumed run
        self.pretraining_s = 0.0
        self._start: float | None = None
        self._excluded_s = 0.0
        self._test_batches = None
        self._val_batches = None

    # Saved in checkpoints, so a resumed run continues its curve and its clock.
    def state_dict(self) -> dict[str, Any]:
        return {"points": self.points, "elapsed_s": self._elapsed_training_s()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.points = list(state_dict.get("points", []))
        self.elapsed_before_s = float(state_dict.get("elapsed_s", 0.0))

    def _elapsed_training_s(self) -> float:
        if self._start is None:
            return self.elapsed_before_s
        return self.elapsed_before_s + time.perf_counter() - self._start - self._excluded_s

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.pretraining_s = pl_module.pretraining_time_s
        if self.record_test:  # built once: the data module copies the split to the device
            self._test_batches = trainer.datamodule.test_dataloader()
            if scored_weights(trainer, pl_module) is not pl_module:
                self._val_batches = trainer.datamodule.val_dataloader()
        self._start = time.perf_counter()
        self._excluded_s = 0.0

    @torch.no_grad()
    def _error(self, model: L.LightningModule, batches, device: torch.device) -> float:
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        wrong, total = torch.zeros((), dtype=torch.long, device=device), 0
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            wrong += (model.classify_full_precision(x).argmax(-1) != y).sum()
            total += len(y)
        model.train(was_training)
        error = wrong.item() / total  # one read of the device per epoch
        self._excluded_s += time.perf_counter() - started
        return error

    def _trained_errors(self, pl_module: L.LightningModule) -> dict[str, float]:
        """Validation and test error of the weights being trained (not their average), with
        batch norm re-estimated for them by the model's own pre-validation hook; their buffers
        are put back, so training goes on exactly as it would have."""
        started = time.perf_counter()
        buffers = {name: b.clone() for name, b in pl_module.named_buffers()}
        pl_module.on_validation_epoch_start()
        self._excluded_s += time.perf_counter() - started
        errors = {
            "val_err_trained": self._error(pl_module, self._val_batches, pl_module.device),
            "test_err_trained": self._error(pl_module, self._test_batches, pl_module.device),
        }
        for name, b in pl_module.named_buffers():
            b.copy_(buffers[name])
        return errors

    # After the epoch's metrics are final, and before ModelCheckpoint saves (Lightning runs
    # checkpoint callbacks last), so a checkpoint holds the curve up to its own epoch.
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or "val/err" not in trainer.callback_metrics:
            return
        point = {
            "epoch": trainer.current_epoch + 1,
            "train_min": self._elapsed_training_s() / 60,
            "minutes": (self.pretraining_s + self._elapsed_training_s()) / 60,
            "val_err": float(trainer.callback_metrics["val/err"]),
            "lr": trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None,
        }
        if self.record_test:
            scored = scored_weights(trainer, pl_module)
            point["test_err"] = self._error(scored, self._test_batches, pl_module.device)
            if scored is not pl_module:
                point.update(self._trained_errors(pl_module))
        self.points.append(point)
        if trainer.is_global_zero:
            write_json_atomic(
                Path(trainer.default_root_dir) / CURVE_FILE,
                {"pretraining_min": self.pretraining_s / 60, "points": self.points},
            )
        if self.budget_min is not None and point["minutes"] >= self.budget_min:
            trainer.should_stop = True


def scored_weights(trainer: L.Trainer, pl_module: L.LightningModule) -> L.LightningModule:
    """The model whose weights validation scored and checkpoints keep: under a weight-averaging
    callback (weight_averaging=ema) its average, which by ``on_validation_end`` the callback has
    already swapped back out of ``pl_module``."""
    for callback in trainer.callbacks:
        # Lightning keeps the average as a private AveragedModel; .module is a model like ours.
        average = getattr(callback, "_average_model", None)
        if isinstance(callback, WeightAveraging) and average is not None:
            return average.module
    return pl_module


MARKS = ("minutes", "epoch")


def error_at(curve: dict[str, Any], limit: float, by: str = "minutes") -> dict[str, Any] | None:
    """What a run stopped after ``limit`` minutes (or, ``by="epoch"``, epochs) would report: the
    point with the lowest validation error so far (the earliest on ties, as ModelCheckpoint keeps
    it); None before the first. By epoch, runs compare apart from how loaded the machine was."""
    if by not in MARKS:
        raise ValueError(f"by={by!r}; allowed: {list(MARKS)}")
    best = None
    for point in curve["points"]:
        if point[by] > limit:
            break
        if best is None or point["val_err"] < best["val_err"]:
            best = point
    return best


def curve_table(
    curves: Sequence[tuple[str, dict[str, Any]]], marks: Sequence[float], by: str = "minutes"
) -> str:
    """Markdown: for each curve, the test error % of its best-validation epoch at each mark
    (minutes, or epochs with ``by="epoch"``)."""
    names = [f"{m:g} min" if by == "minutes" else f"epoch {m:g}" for m in marks]
    header = "| run | " + " | ".join(names) + " | epochs | minutes |"
    lines = [header, "| --- |" + " ---: |" * (len(marks) + 2)]
    for label, curve in curves:
        cells = []
        for m in marks:
            point = error_at(curve, m, by)
            cells.append("—" if point is None else f"{100 * point['test_err']:.2f}")
        last = curve["points"][-1] if curve["points"] else {"epoch": 0, "minutes": 0.0}
        cells += [str(last["epoch"]), f"{last['minutes']:.1f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def last_epochs_table(curves: Sequence[tuple[str, dict[str, Any]]], count: int) -> str:
    """Markdown: for each curve, the test error % over its last ``count`` epochs, with no model
    selection: the final epoch's, their mean and their range, and the validation error's mean
    over the same epochs. A weight average is meant to make the final weights good without
    choosing an epoch; this says whether it did. Runs that differ only in ``seed=N`` (sweep
    folders, ssvae-curves' default labels) also get a second table of their means over seeds."""
    if count < 1:
        raise ValueError(f"count={count}; allowed: a whole number of epochs, at least 1")
    header = (
        f"| run | final epoch | mean, last {count} | range, last {count} | epochs "
        f"| validation mean, last {count} |"
    )
    lines = [header, "| --- |" + " ---: |" * 5]
    groups: dict[str, list[tuple[float, float]]] = {}
    for label, curve in curves:
        tail = [p for p in curve["points"] if "test_err" in p][-count:]
        if not tail:
            lines.append(f"| {label} | — | — | — | 0 | — |")
            continue
        errors = [100 * p["test_err"] for p in tail]
        test_mean = sum(errors) / len(errors)
        val_mean = 100 * sum(p["val_err"] for p in tail) / len(tail)
        lines.append(
            f"| {label} | {errors[-1]:.2f} | {test_mean:.2f} | {min(errors):.2f}–{max(errors):.2f} "
            f"| {tail[0]['epoch']}–{tail[-1]['epoch']} | {val_mean:.2f} |"
        )
        group = seed_group(label)
        if group is not None:
            groups.setdefault(group, []).append((test_mean, val_mean))
    groups = {name: runs for name, runs in groups.items() if len(runs) > 1}
    if groups:
        # Three decimals: a mean over seeds of means, compared between arms a tenth apart.
        lines += [
            "",
            f"| runs, over seeds | seeds | test mean, last {count} "
            f"| validation mean, last {count} |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, runs in groups.items():
            test = sum(t for t, _ in runs) / len(runs)
            val = sum(v for _, v in runs) / len(runs)
            lines.append(f"| {name} | {len(runs)} | {test:.3f} | {val:.3f} |")
    return "\n".join(lines) + "\n"


# A ``seed=N`` override in a label, with the comma that joins it to the others.
_SEED = re.compile(r"(^|,)seed=\d+(?=,|$)")


def seed_group(label: str) -> str | None:
    """The arm a run belongs to: its label without ``seed=N`` ("all" where nothing else is
    left), or None for a label that names no seed."""
    if not _SEED.search(label):
        return None
    return _SEED.sub("", label).strip(", ") or "all"


def curve_styles(labels: Sequence[str]) -> list[tuple[int, str | None]]:
    """Per curve, a colour index and its legend label (None: no legend entry). Runs of one arm
    over seeds share a colour and one entry, "arm (n seeds)", so that a five-seed ablation is
    a few colours rather than ten repeating ones; every other curve has its own."""
    # A curve without a seed is an arm of its own, even where two labels are alike.
    keys = [seed_group(label) or i for i, label in enumerate(labels)]
    sizes = {key: keys.count(key) for key in keys}
    colours: dict[str | int, int] = {}
    styles = []
    for label, key in zip(labels, keys, strict=True):
        first = key not in colours
        colours.setdefault(key, len(colours))
        legend = f"{key} ({sizes[key]} seeds)" if sizes[key] > 1 else label
        styles.append((colours[key], legend if first else None))
    return styles


def trained_weights_curve(curve: dict[str, Any]) -> dict[str, Any] | None:
    """An averaged run's curve as the weights being trained scored it (``*_err_trained``),
    or None for a run without averaging."""
    points = curve["points"]
    if not points or not all("test_err_trained" in p for p in points):
        return None
    renamed = [
        {**p, "val_err": p["val_err_trained"], "test_err": p["test_err_trained"]} for p in points
    ]
    return {**curve, "points": renamed}


# A sweep's run folder is named by its overrides, joined by commas (Hydra's override_dirname);
# a list value such as model.hidden_dims=[32,32] keeps its own commas.
_OVERRIDE_SEPARATOR = re.compile(r",(?![^\[]*\])")


def distinct_labels(run_dirs: Sequence[Path]) -> list[str]:
    """Legend labels for sweep folders: the overrides that differ between them (seed=0,
    seed=1), so that labels stay short; a folder's whole name where nothing differs, with its
    parent's where the names are alike (outputs/curves/m1m2/run)."""
    paths = [Path(run).resolve() for run in run_dirs]
    names = [path.name for path in paths]
    if len(set(names)) < len(names):
        return [f"{path.parent.name}/{path.name}" for path in paths]
    parts = [_OVERRIDE_SEPARATOR.split(name) for name in names]
    shared = set.intersection(*map(set, parts)) if parts else set()
    labels = [",".join(p for p in pieces if p not in shared) for pieces in parts]
    if not all(labels) or len(set(labels)) < len(labels):
        return names
    return labels


def read_curve(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / CURVE_FILE).read_text())


def plot_curves(curves: Sequence[tuple[str, dict[str, Any]]], path: Path, title: str = "") -> None:
    """Test (solid) and validation (dotted) error % against minutes, one colour per curve or
    per arm of runs over seeds (curve_styles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=(7, 4.5))
    palette = plt.cm.tab10.colors
    styles = curve_styles([label for label, _ in curves])
    for (_, curve), (index, legend) in zip(curves, styles, strict=True):
        colour = palette[index % len(palette)]
        pts = curve["points"]
        minutes = [p["minutes"] for p in pts]
        if any("test_err" in p for p in pts):
            test = [100 * p.get("test_err", math.nan) for p in pts]
            ax.plot(minutes, test, color=colour, label=f"{legend}: test" if legend else None)
        val = [100 * p["val_err"] for p in pts]
        shown = f"{legend}: validation" if legend else None
        ax.plot(minutes, val, color=colour, linestyle=":", label=shown)
    ax.set_yscale("log")
    # Plain numbers (2, 3, 5, 10, 20...) rather than 2x10^0 on the log axis.
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("wall time, minutes (pretraining included)")
    ax.set_ylabel("error %")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    # Below the axes, so that it hides no curve; bbox_inches="tight" makes room for it.
    # No tight_layout: it cannot fit a legend outside the axes (and warns on long labels).
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(Path(path), buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ssvae-curves", description="Draw the time-to-accuracy curves of runs in one plot."
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with a curve.json")
    parser.add_argument(
        "--labels",
        nargs="*",
        help="one legend label per run (default: the overrides in which the folders' names differ)",
    )
    parser.add_argument("--out", type=Path, default=Path("curves.png"))
    parser.add_argument("--title", default="")
    parser.add_argument(
        "--at",
        nargs="*",
        type=float,
        default=[],
        help="also print the test error of the best-validation epoch at these minutes",
    )
    parser.add_argument(
        "--at-epoch",
        nargs="*",
        type=float,
        default=[],
        help="the same after these many epochs (compares runs apart from the machine's load)",
    )
    parser.add_argument(
        "--last",
        type=int,
        metavar="N",
        help="also print the test error over the last N epochs, with no model selection",
    )
    args = parser.parse_args(argv)
    if args.last is not None and args.last < 1:
        raise SystemExit(f"ssvae-curves: error: --last {args.last}; allowed: 1 or more epochs")
    labels = args.labels or distinct_labels(args.runs)
    if len(labels) != len(args.runs):
        raise SystemExit("ssvae-curves: error: give one --labels entry per run folder")
    missing = [str(r) for r in args.runs if not (r / CURVE_FILE).is_file()]
    if missing:
        raise SystemExit(f"ssvae-curves: error: no {CURVE_FILE} in {', '.join(missing)}")
    curves = []
    for label, run in zip(labels, args.runs, strict=True):
        curve = read_curve(run)
        curves.append((label, curve))
        trained = trained_weights_curve(curve)
        if trained is not None:  # an averaged run: its trained weights beside the average
            curves += [(f"{label}, trained weights", trained)]
    plot_curves(curves, args.out, args.title)
    if args.at:
        print(curve_table(curves, args.at))
    if args.at_epoch:
        print(curve_table(curves, args.at_epoch, by="epoch"))
    if args.last is not None:
        print(last_epochs_table(curves, args.last))
    print(args.out)
