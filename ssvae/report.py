"""Collect run results into a table (mean ± std over seeds) and a plot of error against labels.

Works on any folder of runs, finished or not: it reads every ``result.json`` below the given
folders. Runs at the end of a Hydra multirun (``ssvae.hydra_callbacks``) and as ``ssvae-report``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ssvae.curves import read_curve
from ssvae.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from ssvae.models.needs import name_in_tables
from ssvae.runs import (
    ADDED_LATER,
    ADDED_LATER_IN_DIGEST,
    DATA_FILE_KEYS,
    RESULT_FILE,
    is_plumbing,
    upgrade_config,
)

log = logging.getLogger(__name__)

REPORT_STEM = "results"
# Overrides that are the table's own axes, so do not make a run a different variant.
TABLE_AXES = {"seed", "data", "model", "experiment", "data.num_labels", "data.label_fraction"}
# What the "data set" column already says: the data's name and, for your own data, its files.
TABLE_AXES |= {"data.name", *DATA_FILE_KEYS}
COLUMNS = (
    "dataset",
    "model",
    "variant",
    "num_labels",
    "acc_mean",
    "acc_std",
    "err_mean",
    "err_std",
    "runs",
    "failed",
    "seeds",
)


# Kingma et al. (2014), Table 1: MNIST test error % by number of labels, for reference points on
# the plot (--paper). M1 in the paper is M1+TSVM; ours puts an SVM on the same latents.
PAPER_TABLE1 = {
    "supervised": ("NN", {100: 25.80, 600: 11.44, 1000: 10.70, 3000: 6.04}),
    "m1": ("M1+TSVM", {100: 11.82, 600: 5.72, 1000: 4.24, 3000: 3.49}),
    "m2": ("M2", {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92}),
    "m1m2": ("M1+M2", {100: 3.33, 600: 2.59, 1000: 2.40, 3000: 2.18}),
    # Not in Kingma et al.: Maaløe et al. (2016), Table 1, at 100 labels.
    "adgm": ("ADGM", {100: 0.96}),
    "sdgm": ("SDGM", {100: 1.32}),
    # The consistency baselines on permutation-invariant MNIST (no published Mean Teacher row).
    "vat": ("VAT", {100: 1.36}),
    "ladder": ("Ladder", {100: 1.06}),
}
PAPER_SOURCE = {
    "adgm": "Maaløe et al. 2016",
    "sdgm": "Maaløe et al. 2016",
    "vat": "Miyato et al. 2018",
    "ladder": "Rasmus et al. 2015",
}  # else Table 1's


def paper_error(dataset: str, model: str, num_labels: int) -> float | None:
    """The published MNIST test error % for this model and label count (``PAPER_TABLE1``), or
    None where the papers give none (other data sets, models and label counts)."""
    if dataset != "mnist" or model not in PAPER_TABLE1:
        return None
    return PAPER_TABLE1[model][1].get(num_labels)


def _key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _settings_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that change what a run computes: less plumbing and Hydra's own."""
    return [
        o for o in overrides if not is_plumbing(_key_of(o)) and not _key_of(o).startswith("hydra.")
    ]


def variant_of(overrides: Iterable[str]) -> str:
    """The command-line overrides that set a run apart from others of its model and data set."""
    return " ".join(
        sorted(o for o in _settings_overrides(overrides) if _key_of(o) not in TABLE_AXES)
    )


def _group_key(record: dict[str, Any]) -> tuple:
    return (record["dataset"], record["model"], record.get("variant", ""), record["num_labels"])


def _named_as_its_settings_say(record: dict[str, Any]) -> dict[str, Any]:
    """The record under the row name its model gives those settings today (M2+VAT without its
    bound: m2_vat_no_bound), so runs recorded before a model renamed them join their rows."""
    model_settings = (record.get("config") or {}).get("model")
    if not isinstance(model_settings, dict) or "_target_" not in model_settings:
        return record
    # From the configured name, not the recorded one: records made since already carry it.
    return {**record, "model": name_in_tables(model_settings)}


def collect_results(folders: Iterable[Path]) -> list[dict[str, Any]]:
    """Every readable result record below ``folders``; unreadable ones are skipped with a warning.

    Runs of one model and variant made with other settings (a default changed between two
    sweeps) become variants of their own (``tell_settings_apart``), and variants made with the
    same settings one variant (``join_same_settings``). A (dataset, model, variant,
    labels, seed) found more than once (a re-run) counts once: the newest file.
    """
    found: list[tuple[float, dict[str, Any]]] = []
    for folder in folders:
        for path in sorted(Path(folder).rglob(RESULT_FILE)):
            try:
                record = json.loads(path.read_text())
                _group_key(record), record["seed"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable result %s: %s", path, exc)
                continue
            _time_earlier_segments(record, path.parent)
            found.append((path.stat().st_mtime, _named_as_its_settings_say(record)))
    records = [record for _, record in found]
    settings = [settings_of(record) for record in records]  # once: both steps compare them
    records = join_same_settings(tell_settings_apart(records, settings), settings)
    latest: dict[tuple, tuple[float, dict[str, Any]]] = {}
    for (mtime, _), record in zip(found, records, strict=True):
        key = (*_group_key(record), record["seed"])
        if key not in latest or mtime >= latest[key][0]:
            latest[key] = (mtime, record)
    return [record for _, record in latest.values()]


def _time_earlier_segments(record: dict[str, Any], run_dir: Path) -> None:
    """A resumed run's result written before ``resumed_time_s`` existed timed its last segment
    only; its learning curve (``callbacks=learning_curve``, ssvae.curves), where it kept one,
    holds the training minutes of every segment, so the earlier ones are those less the last."""
    if not record.get("resumed_from") or "resumed_time_s" in record:
        return
    try:
        points = read_curve(run_dir)["points"]
        total_s = 60 * float(points[-1]["train_min"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return  # no curve: the minutes stay the last segment's
    record["resumed_time_s"] = max(0.0, total_s - float(record.get("fit_time_s") or 0.0))


# Settings that differ between the runs of one row by design: the table's own axes.
AXIS_SETTINGS = {"seed", "data.seed", "data.num_labels", "data.label_fraction", "data.name"}


def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def settings_of(record: dict[str, Any]) -> dict[str, Any] | None:
    """The settings a run was made with, as dotted keys, less the table's axes, plumbing and what
    only records a run (callbacks); None for a record without its config."""
    config = record.get("config")
    if not isinstance(config, dict):
        return None
    config = OmegaConf.to_container(upgrade_config(OmegaConf.create(config)))  # renamed since
    flat = {**ADDED_LATER, **ADDED_LATER_IN_DIGEST, **_flatten(config)}  # older runs lack them
    return {
        key: value
        for key, value in flat.items()
        if key not in AXIS_SETTINGS
        and key not in DATA_FILE_KEYS
        and not key.startswith("callbacks.")
        and not is_plumbing(key)
    }


def _shown(value: Any) -> str:
    return (
        json.dumps(value, separators=(",", ":")) if isinstance(value, list | None) else str(value)
    )


def _differing(records: Sequence[dict[str, Any]], members: Iterable[int], settings) -> list[str]:
    """The settings whose values differ among ``members`` (those with a saved config); a setting
    that follows the seed (random_state: ${seed}) is the seed's own axis and does not count."""
    known = {i: settings[i] for i in members if settings[i] is not None}
    keys = set().union(*known.values()) if known else set()
    return sorted(
        key
        for key in keys
        if len({_shown(s.get(key)) for s in known.values()}) > 1
        and any(s.get(key) != records[i]["seed"] for i, s in known.items())
    )


def tell_settings_apart(
    records: Sequence[dict[str, Any]], settings: Sequence[dict[str, Any] | None]
) -> list[dict[str, Any]]:
    """``records`` in the same order, where runs that share a data set, model and variant but
    not their settings have the settings that differ added to their variant (e.g. a sweep made
    before a default changed beside one made after). Without it the table would average them,
    or count one as a re-run of the other. ``settings``: each record's ``settings_of``."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[(record["dataset"], record["model"], record.get("variant", ""))].append(i)
    out = list(records)
    for (dataset, model, variant), members in groups.items():
        differing = _differing(records, members, settings)
        if not differing:
            continue
        log.warning(
            "%s %s runs (variant %r) were made with different settings: %s; shown apart",
            dataset,
            model,
            variant or "default",
            ", ".join(differing),
        )
        for i in members:
            if settings[i] is not None:
                extra = " ".join(f"{key}={_shown(settings[i].get(key))}" for key in differing)
                out[i] = {**records[i], "variant": f"{variant} {extra}".strip()}
    return out


def _axes_set_by_hand(variant: str) -> set[str]:
    """The table's axes that a variant fixes by override (``data.seed=1``: one label draw for
    every seed, as experiment=sdgm_spread sets it): two such variants are two rows, not one
    recipe, although their settings differ only on an axis."""
    return {o for o in variant.split() if _key_of(o) in AXIS_SETTINGS}


def join_same_settings(
    records: Sequence[dict[str, Any]], settings: Sequence[dict[str, Any] | None]
) -> list[dict[str, Any]]:
    """``records`` in the same order, where variants of one data set and model whose runs were
    all made with the same settings carry one name, the shortest: one recipe reached two ways
    (an experiment config, or its settings as overrides; two time budgets of the curve tool) is
    one row, and a run of it made both ways counts once. Runs without a saved config keep their
    variant. ``settings``: each record's ``settings_of``."""
    variants: dict[tuple, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        variants[(record["dataset"], record["model"], record.get("variant", ""))].append(i)
    # Shortest name first, so that each recipe is named by its plainest spelling.
    order = sorted(variants, key=lambda k: (k[0], k[1], len(k[2]), k[2]))
    joined: dict[tuple, list[tuple[str, list[int]]]] = defaultdict(list)
    for dataset, model, variant in order:
        members = variants[(dataset, model, variant)]
        candidates = joined[(dataset, model)]
        if all(settings[i] is not None for i in members):
            for name, others in candidates:
                if (
                    _axes_set_by_hand(name) == _axes_set_by_hand(variant)
                    and all(settings[i] is not None for i in others)
                    and not _differing(records, others + members, settings)
                ):
                    log.info("%s %s: variant %r is %r's settings", dataset, model, variant, name)
                    others.extend(members)
                    break
            else:
                candidates.append((variant, list(members)))
        else:
            candidates.append((variant, list(members)))
    out = list(records)
    for candidates in joined.values():
        for name, members in candidates:
            for i in members:
                out[i] = {**records[i], "variant": name}
    return out


# Optional columns (ssvae-report --columns ...): a header and how to read a run's value.
OPTIONAL_COLUMNS: dict[str, tuple[str, Any]] = {
    "nll": ("test NLL", lambda r: r.get("test_nll")),
    "ece": ("test ECE %", lambda r: r.get("test_ece")),
    "nll_calibrated": (
        "test NLL, T-scaled",
        lambda r: r.get("calibration", {}).get("test_after", {}).get("nll"),
    ),
    "ece_calibrated": (
        "test ECE %, T-scaled",
        lambda r: r.get("calibration", {}).get("test_after", {}).get("ece"),
    ),
    "temperature": ("T", lambda r: r.get("calibration", {}).get("temperature")),
    "elbo": ("test ELBO", lambda r: r.get("test_elbo")),
    "log_px": ("test log p(x), IW", lambda r: r.get("test_log_px")),
    "minutes": ("minutes per run", lambda r: run_minutes(r)),
}


def run_minutes(record: dict[str, Any]) -> float | None:
    """Wall minutes of a run: training and testing, the training of the segments before a
    resume, plus M1's VAE pretraining where the model has one (counted even when the VAE came
    from the cache: it is part of the run's cost)."""
    wall = record.get("wall_time_s")
    if wall is None:
        return None
    earlier = float(record.get("resumed_time_s") or 0.0)
    return (wall + earlier + float((record.get("vae") or {}).get("train_time_s") or 0.0)) / 60


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def aggregate(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, model, variant, labels): accuracy and error mean ± std over seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in results:
        groups[_group_key(record)].append(record)
    rows = []
    for (dataset, model, variant, num_labels), records in sorted(groups.items()):
        ok = [r for r in records if r.get("status") == "ok"]
        acc_mean, acc_std = _mean_std([r["test_acc"] for r in ok])
        err_mean, err_std = _mean_std([r["test_err"] for r in ok])
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "variant": variant,
                "num_labels": num_labels,
                "acc_mean": acc_mean,
                "acc_std": acc_std,
                "err_mean": err_mean,
                "err_std": err_std,
                "runs": len(ok),
                "failed": len(records) - len(ok),
                "seeds": " ".join(str(s) for s in sorted(r["seed"] for r in ok)),
            }
        )
        for column, (_, read) in OPTIONAL_COLUMNS.items():
            values = [v for v in (read(r) for r in ok) if v is not None]
            rows[-1][f"{column}_mean"], rows[-1][f"{column}_std"] = _mean_std(values)
    return rows


def _pct(mean: float, std: float) -> str:
    return "—" if math.isnan(mean) else f"{100 * mean:.2f} ± {100 * std:.2f}"


def _value(column: str, mean: float, std: float) -> str:
    if math.isnan(mean):
        return "—"
    if column.startswith("ece"):
        return _pct(mean, std)
    if column == "minutes":
        return f"{mean:.0f} ± {std:.0f}"
    return f"{mean:.3f} ± {std:.3f}"


def to_markdown(
    rows: Sequence[dict[str, Any]], columns: Sequence[str] = (), paper: bool = False
) -> str:
    """The table; ``columns`` adds optional ones (OPTIONAL_COLUMNS: nll, ece, ...), ``paper``
    the published error beside each MNIST row that has one (``paper_error``)."""
    unknown = [c for c in columns if c not in OPTIONAL_COLUMNS]
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; allowed: {list(OPTIONAL_COLUMNS)}")
    extra_head = "".join(f" {OPTIONAL_COLUMNS[c][0]} |" for c in columns)
    extra_head += " paper's test error % |" if paper else ""
    width = len(columns) + (1 if paper else 0)
    lines = [
        "| data set | model | variant | labels | test accuracy % | test error % |"
        f"{extra_head} runs | failed |",
        "| --- | --- | --- | ---: | ---: | ---: |" + " ---: |" * width + " ---: | ---: |",
    ]
    for r in rows:
        extra = "".join(
            f" {_value(c, r.get(f'{c}_mean', math.nan), r.get(f'{c}_std', math.nan))} |"
            for c in columns
        )
        if paper:
            published = paper_error(r["dataset"], r["model"], r["num_labels"])
            extra += " — |" if published is None else f" {published:.2f} |"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['variant'] or 'default'} | {r['num_labels']} | "
            f"{_pct(r['acc_mean'], r['acc_std'])} | {_pct(r['err_mean'], r['err_std'])} |"
            f"{extra} {r['runs']} | {r['failed']} |"
        )
    return "\n".join(lines) + "\n"


def _cell(r: dict[str, Any], paper: bool) -> str:
    if not r["runs"]:
        text = "—"
    else:
        text = _pct(r["err_mean"], r["err_std"]) if r["runs"] > 1 else f"{100 * r['err_mean']:.2f}"
        text += "" if r["runs"] == 3 else f" ({r['runs']} seed{'s' * (r['runs'] > 1)})"
    published = paper_error(r["dataset"], r["model"], r["num_labels"]) if paper else None
    return text if published is None else f"{text} [{published:.2f}]"


def by_labels_markdown(rows: Sequence[dict[str, Any]], paper: bool = False) -> str:
    """``rows`` (the table's or the leaderboard's) laid out as Kingma et al.'s Table 1: one row
    per data set, model (and variant, where rows have one), one column per label count; each
    cell test error % mean ± std over 3 seeds, else how many seeds, and with ``paper`` the
    published number in brackets. Rows are ordered by the error in their first filled column."""
    counts = sorted({r["num_labels"] for r in rows})
    lines_of: dict[tuple, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        lines_of[(r["dataset"], r["model"], r.get("variant"))][r["num_labels"]] = r
    has_variant = any(variant is not None for _, _, variant in lines_of)

    def order(item: tuple) -> tuple:
        (dataset, model, variant), cells = item
        first = cells[min(cells)]
        err = first["err_mean"] if first["runs"] else math.inf
        return (dataset, min(cells), err, model, variant or "")

    head = "| data set | model |" + " variant |" * has_variant
    head += "".join(f" {c} labels |" for c in counts)
    rule = "| --- | --- |" + " --- |" * has_variant + " ---: |" * len(counts)
    lines = [head, rule]
    for (dataset, model, variant), cells in sorted(lines_of.items(), key=order):
        line = f"| {dataset} | {model} |" + f" {variant or 'default'} |" * has_variant
        for c in counts:
            line += f" {_cell(cells[c], paper)} |" if c in cells else " |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def by_seed_markdown(results: Iterable[dict[str, Any]]) -> str:
    """One row per (data set, model, variant, labels), one column per seed: each run's test
    error %, then the mean ± std. A spread study reads here which seeds are hard for which
    models; a variant that fixes ``data.seed`` by override keeps the labels of that draw."""
    cells: dict[tuple, dict[int, float]] = defaultdict(dict)
    for record in results:
        if record.get("status") == "ok":
            cells[_group_key(record)][record["seed"]] = record["test_err"]
    seeds = sorted({seed for row in cells.values() for seed in row})
    lines = [
        "| data set | model | variant | labels |"
        + "".join(f" seed {s} |" for s in seeds)
        + " mean ± std |",
        "| --- | --- | --- | ---: |" + " ---: |" * (len(seeds) + 1),
    ]
    for (dataset, model, variant, labels), row in sorted(cells.items()):
        errors = "".join(f" {100 * row[s]:.2f} |" if s in row else " |" for s in seeds)
        mean, std = _mean_std(list(row.values()))
        lines.append(
            f"| {dataset} | {model} | {variant or 'default'} | {labels} |{errors} "
            f"{_pct(mean, std)} |"
        )
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    optional = [f"{c}_{stat}" for c in OPTIONAL_COLUMNS for stat in ("mean", "std")]
    writer = csv.DictWriter(buffer, fieldnames=[*COLUMNS, *optional], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot_error_vs_labels(rows: Sequence[dict[str, Any]], paper: bool = False) -> bytes:
    """PNG bytes: test error % against number of labels (log x), one line per data set + model;
    with ``paper``, the published MNIST numbers (``PAPER_TABLE1``: Kingma et al.'s Table 1, and
    Maaløe et al.'s for ADGM and SDGM) as dashed lines or points in the same colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    lines: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["runs"]:
            lines[(r["dataset"], r["model"], r["variant"])].append(r)
    datasets = sorted({dataset for dataset, _, _ in lines})
    referenced: set[str] = set()  # the paper's line once per model, beside its first variant
    for (dataset, model, variant), points in sorted(lines.items()):
        points.sort(key=lambda r: r["num_labels"])
        label = model if len(datasets) == 1 else f"{model} ({dataset})"
        if variant:  # variants can be long: wrapped, so the legend does not crowd the axes
            label += "\n" + textwrap.fill(variant, 70)
        drawn = ax.errorbar(
            [p["num_labels"] for p in points],
            [100 * p["err_mean"] for p in points],
            yerr=[100 * p["err_std"] for p in points],
            marker="o",
            capsize=3,
            label=label,
        )
        if paper and dataset == "mnist" and model in PAPER_TABLE1 and model not in referenced:
            referenced.add(model)
            name, errors = PAPER_TABLE1[model]
            ax.plot(
                list(errors),
                list(errors.values()),
                linestyle="--",
                marker="x",
                color=drawn[0].get_color(),
                label=f"{name}, " + PAPER_SOURCE.get(model, "paper's Table 1"),
            )
    ax.set_xscale("log")
    counts = sorted({r["num_labels"] for r in rows if r["runs"]})
    if counts:  # tick at the label counts actually run, written as plain numbers
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()
    if len(datasets) == 1:
        ax.set_title(datasets[0])
    ax.set_xlabel("labeled examples")
    ax.set_ylabel("test error % (mean ± std over seeds)")
    ax.grid(True, which="both", alpha=0.3)
    if lines:
        # Below the axes; bbox_inches="tight" grows the image to fit it, keeping the plot's size.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), fontsize="small", ncol=2)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


# --- The leaderboard: one row per data set, label count and model, at the model's best recipe.


# Overrides a reader need not type to reproduce a row: where and how fast it ran, the seed
# (the row's seeds are given as one sweep), and a curve's time budget (it records, not changes).
def _reproducing(overrides: Iterable[str]) -> list[str]:
    kept = (
        o
        for o in _settings_overrides(overrides)
        if _key_of(o) != "seed" and not _key_of(o).startswith("callbacks.")
    )
    return list(dict.fromkeys(kept))  # once each, in the order given


def add_leaderboard_options(parser: argparse.ArgumentParser) -> None:
    """``--dataset`` and ``--labels``: the leaderboard rows to keep; ``--by-labels``: its layout
    (``ssvae-report`` and the docs' leaderboard blocks, scripts/readme_leaderboard.py, read the
    same options)."""
    parser.add_argument("--dataset", nargs="+", default=[], help="leaderboard: only these")
    parser.add_argument("--labels", nargs="+", type=int, default=[], help="leaderboard: only these")
    parser.add_argument(
        "--by-labels",
        action="store_true",
        help="also lay the table (results_by_labels.md) or leaderboard (leaderboard_by_labels.md) "
        "out as Kingma et al.'s Table 1: a row per model, a column per label count",
    )


def device_of_record(record: dict[str, Any]) -> str:
    """The device a run recorded (``device``, since 2026-12-03); older runs: GPU where the run
    asked for one, else CPU (every older run here without an accelerator ran on a CPU)."""
    if record.get("device"):
        return str(record["device"])
    accelerator = ((record.get("config") or {}).get("trainer") or {}).get("accelerator")
    return "GPU" if accelerator in ("gpu", "cuda") else "CPU"


def leaderboard(
    results: Iterable[dict[str, Any]],
    datasets: Sequence[str] = (),
    labels: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """Per (data set, labels, model), the variant with the most finished seeds and, among those,
    the lowest mean *validation* error (never the test error: that would pick on test): its
    test error mean ± std, minutes per run, device and the command that reproduces it.
    ``datasets`` and ``labels``, where given, keep only those rows."""
    variants: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in results:
        wanted = (not datasets or record["dataset"] in datasets) and (
            not labels or record["num_labels"] in labels
        )
        if wanted and record.get("status") == "ok":
            variants[_group_key(record)].append(record)
    best: dict[tuple, tuple[tuple, list[dict[str, Any]]]] = {}
    for (dataset, model, variant, num_labels), records in variants.items():
        val_errors = [1 - r["best_val_acc"] for r in records if r.get("best_val_acc") is not None]
        val = statistics.fmean(val_errors) if len(val_errors) == len(records) else math.inf
        rank = (-len(records), val, variant)  # one record per seed (collect_results)
        key = (dataset, num_labels, model)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, records)
    rows = []
    for (dataset, num_labels, model), (_, records) in best.items():
        records = sorted(records, key=lambda r: r["seed"])
        err_mean, err_std = _mean_std([r["test_err"] for r in records])
        minutes = [m for m in (run_minutes(r) for r in records) if m is not None]
        seeds = ",".join(str(r["seed"]) for r in records)
        spellings = sorted((_reproducing(r.get("overrides", [])) for r in records), key=len)
        flag = "-m " if len(records) > 1 else ""
        command = " ".join(["ssvae-train", flag + " ".join(spellings[0]), f"seed={seeds}"])
        rows.append(
            {
                "dataset": dataset,
                "num_labels": num_labels,
                "model": model,
                "err_mean": err_mean,
                "err_std": err_std,
                "runs": len(records),
                "minutes": statistics.fmean(minutes) if minutes else math.nan,
                "device": " / ".join(sorted({device_of_record(r) for r in records})),
                "command": " ".join(command.split()),
            }
        )
    rows.sort(key=lambda r: (r["dataset"], r["num_labels"], r["err_mean"], r["model"]))
    return rows


def leaderboard_markdown(rows: Sequence[dict[str, Any]], paper: bool = False) -> str:
    """The leaderboard as a Markdown table (the README's is this text)."""
    head = "| data set | labels | model | test error % | seeds | minutes per run | device |"
    head += " paper's test error % |" if paper else ""
    lines = [head + " command |", "| --- | ---: | --- | ---: | ---: | ---: | --- |"]
    lines[1] += " ---: |" * paper + " --- |"
    for r in rows:
        minutes = "—" if math.isnan(r["minutes"]) else f"{r['minutes']:.0f}"
        published = paper_error(r["dataset"], r["model"], r["num_labels"]) if paper else None
        extra = (" — |" if published is None else f" {published:.2f} |") if paper else ""
        lines.append(
            f"| {r['dataset']} | {r['num_labels']} | {r['model']} | "
            f"{_pct(r['err_mean'], r['err_std'])} | {r['runs']} | {minutes} | {r['device']} |"
            f"{extra} `{r['command']}` |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    folders: Sequence[Path],
    out_dir: Path | None = None,
    paper: bool = False,
    columns: Sequence[str] = (),
    results: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Aggregate the runs under ``folders`` (or ``results``, already collected from them) and
    write results.{md,csv,json,png} into ``out_dir``."""
    out_dir = Path(out_dir or folders[0])
    rows = aggregate(collect_results(folders) if results is None else results)
    write_text_atomic(out_dir / f"{REPORT_STEM}.md", to_markdown(rows, columns, paper))
    write_text_atomic(out_dir / f"{REPORT_STEM}.csv", to_csv(rows))
    write_json_atomic(out_dir / f"{REPORT_STEM}.json", rows)
    write_bytes_atomic(out_dir / f"{REPORT_STEM}.png", plot_error_vs_labels(rows, paper))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ssvae-report", description="Aggregate ssvae run folders into a results table."
    )
    parser.add_argument("folders", nargs="+", type=Path, help="sweep or run folders to read")
    parser.add_argument("--out", type=Path, help="where to write results.* (default: first folder)")
    parser.add_argument(
        "--paper",
        action="store_true",
        help="the papers' MNIST numbers for reference, as a column of the table and lines on the "
        "plot (Kingma et al.'s Table 1; ADGM and SDGM: Maaløe et al. 2016)",
    )
    parser.add_argument(
        "--columns",
        nargs="+",
        default=[],
        choices=list(OPTIONAL_COLUMNS),
        help="optional columns: calibration (nll, ece; after temperature scaling: "
        "nll_calibrated, ece_calibrated, temperature), how well x is modelled (elbo, log_px) "
        "and wall minutes per run (minutes)",
    )
    parser.add_argument(
        "--leaderboard",
        action="store_true",
        help="instead of the table: one row per data set, label count and model at its best "
        "recipe (most seeds, then lowest validation error), with minutes, device and command; "
        "written to leaderboard.md in --out (default: the first folder)",
    )
    add_leaderboard_options(parser)
    parser.add_argument(
        "--by-seed",
        action="store_true",
        help="also write results_by_seed.md: each run's test error %% in a column per seed",
    )
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    out_dir = Path(args.out or args.folders[0])
    results = collect_results(args.folders)  # read once for every layout below
    if args.leaderboard:
        rows = leaderboard(results, args.dataset, args.labels)
        stem, text = "leaderboard", leaderboard_markdown(rows, args.paper)
        write_text_atomic(out_dir / f"{stem}.md", text)
    else:
        rows = write_report(args.folders, out_dir, args.paper, args.columns, results)
        stem, text = REPORT_STEM, to_markdown(rows, args.columns, args.paper)
    if args.by_labels:  # the same rows in Table 1's layout, beside the long table
        text = by_labels_markdown(rows, args.paper)
        write_text_atomic(out_dir / f"{stem}_by_labels.md", text)
    if args.by_seed:
        text = by_seed_markdown(results)
        write_text_atomic(out_dir / f"{REPORT_STEM}_by_seed.md", text)
    print(text)


if __name__ == "__main__":
    main()
