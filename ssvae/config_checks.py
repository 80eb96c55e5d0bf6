"""Checks on the composed config that need no data: they fail before anything is loaded.

Each error names the config field and what it allows. Checks that need the data (a label count
above the training pool, a class with too few images) run in the data module's ``setup``, which
the training entry point calls before the trainer starts.
"""

from __future__ import annotations

import typing

from hydra.utils import get_class
from lightning.fabric.connector import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
from omegaconf import DictConfig, OmegaConf

from ssvae.errors import ConfigError
from ssvae.models.needs import takes_pretrained_vae


def positive_int(value: object, field: str) -> int:
    """``value`` if it is a positive int (not a bool); else one line naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{field}={value} must be a positive integer")
    return value


def check_data(data: DictConfig) -> None:
    # File-based sources need data.path; `in` on a DictConfig skips a missing (???) value.
    for field in ("path",):
        if field in list(data) and (OmegaConf.is_missing(data, field) or data[field] is None):
            raise ConfigError(
                f"data.{field} is not set; give the file or folder to read, e.g. "
                f"ssvae-train data=... data.{field}=FILE"
            )
    count, fraction = data.get("num_labels"), data.get("label_fraction")
    if count is not None and fraction is not None:
        raise ConfigError(
            "set at most one of data.num_labels (a count) and data.label_fraction (in (0, 1]); "
            f"got num_labels={count}, label_fraction={fraction}"
        )
    if count is not None:
        positive_int(count, "data.num_labels")
    elif fraction is not None and (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction <= 1
    ):
        raise ConfigError(f"data.label_fraction={fraction} must be a number in (0, 1]")
    for field in ("labeled_batch_size", "unlabeled_batch_size", "eval_batch_size"):
        positive_int(data.get(field), f"data.{field}")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid field of a composed training config."""
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed={cfg.seed} must be a non-negative integer")
    check_data(cfg.data)
    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1:
        positive_int(max_epochs, "trainer.max_epochs")
    check_scheduler(cfg)
    check_training(cfg)
    if cfg.get("weight_averaging") and cfg.model.get("bn_stats") == "running":
        # The swap puts the average in without its own statistics; recompute re-estimates them.
        raise ConfigError(
            "weight_averaging=ema cannot be used with model.bn_stats=running: the averaged "
            "weights would be scored with the batch-norm statistics of other weights; use "
            "model.bn_stats=recompute"
        )
    if cfg.get("ckpt_path") and not _trains_by_gradient(cfg.model):
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} cannot be used with model={cfg.model.get('name')}: it is "
            "a scikit-learn estimator, fitted afresh each run, with no checkpoints; drop ckpt_path"
        )


PRECISIONS = typing.get_args(_PRECISION_INPUT_STR) + typing.get_args(_PRECISION_INPUT_STR_ALIAS)


def _positive_number(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{field}={value} must be a positive number")


def check_training(cfg: DictConfig) -> None:
    """Learning rates, precision and the VAE's epochs: fields whose bad values would otherwise
    end in a torch traceback mid-run, or (vae.max_epochs=0) silently in an untrained M1."""
    for field, node in (("model", cfg.model), ("vae.model", cfg.get("vae", {}).get("model"))):
        optimizer = node.get("optimizer") if node is not None else None
        if optimizer is not None and "lr" in optimizer:
            _positive_number(optimizer.lr, f"{field}.optimizer.lr")
    precision = str(cfg.trainer.get("precision"))
    if precision not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} is not known; allowed: {list(PRECISIONS)}"
        )
    if takes_pretrained_vae(cfg.model.get("_target_", "")):
        positive_int(cfg.vae.max_epochs, "vae.max_epochs")


def check_scheduler(cfg: DictConfig) -> None:
    """A cosine schedule needs a length: it follows trainer.max_epochs, which -1 leaves open."""
    scheduler = cfg.model.get("scheduler")
    if scheduler is None or "T_max" not in scheduler:
        return
    t_max = scheduler.T_max
    if isinstance(t_max, bool) or not isinstance(t_max, int) or t_max <= 0:
        raise ConfigError(
            f"model.scheduler.T_max={t_max} must be a positive number of epochs; the cosine "
            "schedule follows trainer.max_epochs, so set trainer.max_epochs"
        )


def _trains_by_gradient(model: DictConfig) -> bool:
    try:
        return getattr(get_class(model._target_), "trains_by_gradient", True)
    except Exception:  # a bad _target_ is reported, with its choices, when the model is built
        return True
