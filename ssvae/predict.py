"""``ssvae-predict``: label the unlabeled pool, a split or a file with a finished run's model.

    ssvae-predict RUN_DIR                          # the run's unlabeled pool
    ssvae-predict RUN_DIR --split test --out test_preds.csv
    ssvae-predict RUN_DIR --input new.csv          # .npz with x, or .csv of the same features

The run's data and model are rebuilt from its saved config (``.hydra/config.yaml``; run it from
the folder you trained in, so that relative paths resolve as they did), then:
- models trained by gradient load the run's best checkpoint (checked to belong to the run);
- scikit-learn models (M1, the baselines) are fitted again on the run's labeled subset: they are
  deterministic for the run's seed, and refitting keeps pickles out of run folders.
Probabilities are softmax(logits / T) with the run's temperature when it was trained with
``calibrate=true`` (else T = 1). One CSV row per example: the source's row number, the predicted
label, its confidence, one probability per class, and the true label where known; the accuracy
on the known labels goes into a JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from ssvae.errors import ConfigError, DataError, SsvaeError
from ssvae.io import write_json_atomic, write_text_atomic
from ssvae.runs import DATA_FILE, RESULT_FILE, check_identity, upgrade_config

SPLITS = ("unlabeled", "val", "test")


def load_run(run_dir: Path) -> tuple[DictConfig, dict, dict]:
    """The run's config, result and data record; a folder that is not a finished run fails."""
    result_path = run_dir / RESULT_FILE
    config_path = run_dir / ".hydra" / "config.yaml"
    try:
        result = json.loads(result_path.read_text())
    except (OSError, ValueError):
        result = None
    if not isinstance(result, dict) or result.get("status") != "ok":
        raise DataError(
            f"{run_dir} is not a finished run (it has no successful {RESULT_FILE}); give the "
            "folder of a run that completed"
        )
    # Hydra's saved config, else the resolved copy every result.json carries.
    cfg = OmegaConf.load(config_path) if config_path.is_file() else result.get("config")
    if cfg is None:
        raise DataError(f"{run_dir} has neither .hydra/config.yaml nor a config in {RESULT_FILE}")
    data_path = run_dir / DATA_FILE
    record = json.loads(data_path.read_text()) if data_path.is_file() else {}
    return upgrade_config(OmegaConf.create(cfg)), result, record


def trained_model(cfg: DictConfig, result: dict, run_dir: Path, datamodule):
    """The run's model with its trained state (its own ``load_trained``: the best checkpoint,
    or a refitted estimator)."""
    from ssvae.train import build_model

    model, _ = build_model(cfg, datamodule, result["fingerprint"])
    model.load_trained(run_dir, datamodule)
    return model.eval()


def run_model(
    run_dir: Path, checkpoint: Path | None = None
) -> tuple[DictConfig, Any, torch.nn.Module]:
    """A run's config, data module and model: a finished run's trained state
    (``trained_model``), or the state at ``checkpoint`` (e.g. its last.ckpt while it still
    trains) with the config Hydra saved when it started (a run made outside Hydra keeps its
    config in result.json only)."""
    from ssvae.train import build_data, build_model

    if checkpoint is None:
        cfg, result, _ = load_run(run_dir)
        datamodule = build_data(cfg)
        return cfg, datamodule, trained_model(cfg, result, run_dir, datamodule)
    saved = run_dir / ".hydra" / "config.yaml"
    cfg = upgrade_config(OmegaConf.load(saved)) if saved.is_file() else load_run(run_dir)[0]
    datamodule = build_data(cfg)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    saved_identity = state.get("ssvae")
    model, _ = build_model(cfg, datamodule, (saved_identity or {}).get("fingerprint", ""))
    # The check a finished run's best checkpoint gets (load_trained): same model and data.
    check_identity(saved_identity, model.identity, str(checkpoint))
    model.load_state_dict(state["state_dict"])
    return cfg, datamodule, model.eval()


def read_input(path: Path, record: dict, x_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A user's file in the run's layout: npz ``x`` (optional ``y``) or a CSV of the features
    (its label column, if present, gives labels). Standardised as the run's training rows were."""
    from ssvae.data.npz import as_float_rows
    from ssvae.data.tabular import label_cells, numeric_features, read_table

    if not path.is_file():
        raise DataError(f"{path}: no such file (--input)")
    class_names = record.get("class_names") or []
    labels = None
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive.files:
                    raise DataError(f"{path}: no array 'x'; it has {sorted(archive.files)}")
                x = archive["x"]
                labels = archive["y"].astype(np.int64) if "y" in archive.files else None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npz file ({exc})") from None
        x = as_float_rows(x)  # as the run's npz rows were read
    elif path.suffix == ".csv":
        label_column = record.get("label_column") or "label"
        frame = pd.read_csv(path, nrows=0)
        columns = record.get("feature_names") or [c for c in frame.columns if c != label_column]
        frame = (
            read_table(path, label_column) if label_column in frame.columns else pd.read_csv(path)
        )
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: no column {missing[0]!r}, which the run was trained on")
        x = numeric_features(frame, columns, path)
        if label_column in frame.columns:
            index = {name: i for i, name in enumerate(class_names)}
            labels = np.array([index.get(v, -1) for v in label_cells(frame[label_column])])
    else:
        raise DataError(f"{path}: give an .npz (array x) or a .csv of features")
    if x.shape[1] != x_dim:
        raise DataError(
            f"{path}: {x.shape[1]} features per row, but the run was trained on {x_dim}"
        )
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise DataError(f"{path}: row {bad[0]} has a NaN or infinite value")
    if record.get("likelihood") == "bernoulli" and len(x) and (x.min() < 0 or x.max() > 1):
        raise DataError(
            f"{path}: values in [{x.min():.4g}, {x.max():.4g}], but the run was trained on [0, 1] "
            "(its training features all lay there); scale them as the training data was, e.g. "
            "divide 0-255 pixels by 255"
        )
    scaling = record.get("standardization")
    if scaling:
        x = ((x - np.asarray(scaling["mean"])) / np.asarray(scaling["std"])).astype(np.float32)
    y = labels if labels is not None else np.full(len(x), -1)
    return torch.from_numpy(x), torch.from_numpy(y)


@torch.no_grad()
def probabilities(
    model, x: torch.Tensor, temperature: float, batch_size: int = 1000
) -> torch.Tensor:
    logits = torch.cat([model.classify_full_precision(chunk) for chunk in x.split(batch_size)])
    return (logits / temperature).softmax(-1)  # fp32 logits: classify_full_precision's


def predict(
    run_dir: Path, split: str = "unlabeled", input_file: Path | None = None, out: Path | None = None
) -> dict:
    """Write the predictions CSV and its accuracy JSON; returns the summary."""
    from ssvae.train import build_data

    if split not in SPLITS:
        raise ConfigError(f"--split {split} is not known; allowed: {list(SPLITS)}")
    cfg, result, record = load_run(run_dir)
    if cfg.get("data", {}).get("label_column"):
        record.setdefault("label_column", cfg.data.label_column)
    datamodule = build_data(cfg)
    if input_file is not None:
        x, y = read_input(input_file, record, datamodule.x_dim)  # before any model is built
        rows, source = np.arange(len(y)), str(input_file)
    else:
        x, y, rows = datamodule.prediction_rows(split)
        source = split
    model = trained_model(cfg, result, run_dir, datamodule)
    temperature = float(result.get("calibration", {}).get("temperature", 1.0))
    torch.manual_seed(cfg.seed)  # models that sample to predict (ADGM's a) give the same rows
    probs = probabilities(model, x, temperature)
    names = datamodule.class_names
    confidence, predicted = probs.max(-1)
    table = pd.DataFrame({"row": rows, "label": [names[i] for i in predicted.tolist()]})
    table["confidence"] = confidence.numpy()
    for i, name in enumerate(names):
        table[f"p_{name}"] = probs[:, i].numpy()
    known = y >= 0
    table["true_label"] = [names[i] if i >= 0 else "" for i in y.tolist()]
    summary = {
        "run": str(run_dir),
        "source": source,
        "rows": len(table),
        "temperature": temperature,
        "rows_with_labels": int(known.sum()),
        "accuracy": float((predicted[known] == y[known]).float().mean()) if known.any() else None,
    }
    out = out or run_dir / f"predictions_{Path(source).stem if input_file else split}.csv"
    summary["out"] = str(out)
    write_text_atomic(out, table.to_csv(index=False, float_format="%.6g"))
    write_json_atomic(out.with_suffix(".json"), summary)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ssvae-predict", description="Label data with a finished run's model."
    )
    parser.add_argument("run_dir", type=Path, help="a run's folder (with result.json)")
    parser.add_argument("--split", default="unlabeled", help=f"one of {list(SPLITS)}")
    parser.add_argument("--input", type=Path, help=".npz (x) or .csv of features to label")
    parser.add_argument("--out", type=Path, help="CSV to write (default: in the run's folder)")
    args = parser.parse_args(argv)
    try:
        summary = predict(args.run_dir, args.split, args.input, args.out)
    except SsvaeError as exc:
        sys.exit(f"ssvae-predict: error: {exc}")
    accuracy = summary["accuracy"]
    where = "the unlabeled pool" if summary["source"] == "unlabeled" else summary["source"]
    print(
        f"labeled {summary['rows']} rows of {where}, written to {summary['out']}"
        + (
            f"; accuracy on the {summary['rows_with_labels']} with known labels: {accuracy:.4f}"
            if accuracy is not None
            else ""
        )
    )


if __name__ == "__main__":
    main()
