"""Train one model on one labeled subset, test it, and write the run's result atomically.

    ssvae-train                                   # M2 on scikit-learn digits
    ssvae-train data=mnist data.num_labels=100 seed=0
    ssvae-train -m data.num_labels=30,100,300 seed=0,1,2 sweep_name=mine   # resumable sweep

Running a job again in the same folder skips it if its result is complete, and resumes it from
``checkpoints/last.ckpt`` if it was interrupted.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from ssvae.config_checks import check_config
from ssvae.errors import ConfigError, DataError, SsvaeError, TrainingError
from ssvae.io import write_json_atomic
from ssvae.measures import calibrate, log_likelihood
from ssvae.models.needs import (
    configured_name,
    facts_taken_by,
    name_in_tables,
    takes_pretrained_vae,
)
from ssvae.pretrain import pretrained_vae
from ssvae.report import variant_of
from ssvae.runs import (
    DATA_FILE,
    RESULT_FILE,
    check_identity,
    check_output_dir,
    device_of,
    fingerprint,
    finished_result,
    resumable_checkpoint,
    saved_identity,
    time_before_resume_s,
)

log = logging.getLogger(__name__)

# The configs live in the repository's top-level conf/ (the package is installed editable).
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def overrides_of() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def output_dir_of(cfg: DictConfig) -> Path:
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


# Keys of a model config that are not constructor arguments.
NOT_MODEL_ARGS = ("name",)


def build_callbacks(cfg: DictConfig, output_dir: Path) -> list[L.Callback]:
    checkpoints = output_dir / "checkpoints"
    callbacks: list[L.Callback] = [
        # First, so that trainer.checkpoint_callback is the best-validation one that test uses.
        ModelCheckpoint(
            dirpath=checkpoints, monitor="val/acc", mode="max", filename="best-{epoch}"
        ),
        # last.ckpt after every epoch, for resuming. Not save_last=True: since Lightning 2.1 that
        # writes last.ckpt only when a best checkpoint is written, so a job killed after epochs
        # without a new best resumed from the best epoch, not the last (measured: 76 vs 85).
        ModelCheckpoint(dirpath=checkpoints, filename="last", enable_version_counter=False),
    ]
    # Lightning's Timer keeps the training time in every checkpoint, so a resumed run's minutes
    # count its earlier segments (runs.time_before_resume_s). Trainer(max_time=...) adds one
    # itself, and would ignore its max_time if a second were here.
    if not cfg.trainer.get("max_time"):
        callbacks.append(Timer(duration=None))
    if cfg.early_stopping.patience:
        callbacks.append(
            EarlyStopping(monitor="val/acc", mode="max", patience=cfg.early_stopping.patience)
        )
    # weight_averaging=ema: a Lightning callback that changes what is scored, in a group of its
    # own so that a run's variant names it (the callbacks group only records a run).
    if cfg.get("weight_averaging"):
        callbacks.append(build(cfg.weight_averaging))
    # The callbacks group (e.g. callbacks=learning_curve): each entry one Lightning callback.
    callbacks += [build(entry) for entry in (cfg.get("callbacks") or {}).values()]
    return callbacks


def build_loggers(cfg: DictConfig, output_dir: Path) -> list:
    """The CSV logs every run writes (curves and reports read them), plus the logger group's
    (e.g. logger=tensorboard), each a Lightning logger writing into the run's folder."""
    loggers = [CSVLogger(output_dir, name="", version="logs")]
    return loggers + [
        build(entry, save_dir=output_dir) for entry in (cfg.get("logger") or {}).values()
    ]


def starting_checkpoint(cfg: DictConfig, output_dir: Path, identity: dict) -> Path | None:
    """The user's ``ckpt_path`` (checked to fit this run), else this job's own last checkpoint."""
    if cfg.ckpt_path:
        path = Path(cfg.ckpt_path)
        try:
            saved = saved_identity(path)
        except Exception as exc:
            raise ConfigError(
                f"ckpt_path={path} is not a checkpoint that loads with weights_only=True "
                f"({type(exc).__name__}); give a .ckpt file written by ssvae"
            ) from exc
        check_identity(saved, identity, str(path))
        return path
    return resumable_checkpoint(output_dir, identity["fingerprint"]) if cfg.resume else None


def build(config: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, letting our own errors through unwrapped (clear messages)."""
    try:
        return instantiate(config, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, SsvaeError):
            raise exc.__cause__ from None
        raise


def build_data(cfg: DictConfig) -> L.LightningDataModule:
    """The run's data module, set up: its label request is checked before any training."""
    datamodule = build(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def build_model(
    cfg: DictConfig, datamodule: L.LightningDataModule, settings_digest: str
) -> tuple[L.LightningModule, dict[str, Any] | None]:
    """The run's model, untrained, with M1's cached VAE where the model uses one (trained first
    if not cached). Also what ssvae-predict rebuilds before loading a checkpoint into it."""
    # Resolved first: interpolations such as ${seed} cannot be resolved once copied away.
    model_cfg = OmegaConf.create(OmegaConf.to_container(cfg.model, resolve=True))
    model_cfg = OmegaConf.masked_copy(model_cfg, [k for k in model_cfg if k not in NOT_MODEL_ARGS])
    extra, vae_info, pretraining_s = {}, None, 0.0
    if takes_pretrained_vae(model_cfg._target_):  # M1, M1+M2: a VAE per data set and seed
        pretrained = pretrained_vae(
            cfg.vae, datamodule, cfg.seed, cfg.trainer, Path(cfg.paths.cache_dir)
        )
        pretrained.vae.freeze()  # Lightning's: eval mode, no gradients
        extra["vae"] = pretrained.vae
        vae_info = {"folder": str(pretrained.folder), "trained_now": pretrained.trained_now}
        vae_info.update(pretrained.info)
        pretraining_s = float(pretrained.info.get("train_time_s", 0.0))
        L.seed_everything(cfg.seed, workers=True)  # same model initialisation, cached or not
    model = build(
        model_cfg,
        _convert_="all",  # plain lists in hparams, so checkpoints load with weights_only=True
        **facts_taken_by(model_cfg._target_, datamodule.model_facts()),
        **extra,
    )
    model.pretraining_time_s = pretraining_s  # counted by time-to-accuracy curves
    model.identity = {
        "model": configured_name(cfg.model),
        "dataset": datamodule.name,
        "x_dim": datamodule.x_dim,
        "num_classes": datamodule.num_classes,
        "fingerprint": settings_digest,
    }
    return model, vae_info


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one job; returns (and writes) its result record."""
    check_config(cfg)
    output_dir = output_dir_of(cfg)
    check_output_dir(output_dir)
    settings_digest = fingerprint(cfg)
    if cfg.resume and not cfg.ckpt_path:
        done = finished_result(output_dir, settings_digest)
        if done is not None:
            log.info("already finished, skipping: %s", output_dir / RESULT_FILE)
            return done
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_data(cfg)
    model, vae_info = build_model(cfg, datamodule, settings_digest)
    start_from = starting_checkpoint(cfg, output_dir, model.identity)
    trainer = build(
        cfg.trainer,
        callbacks=build_callbacks(cfg, output_dir),
        logger=build_loggers(cfg, output_dir),
        default_root_dir=output_dir,
    )
    record: dict[str, Any] = {
        "dataset": datamodule.name,
        "model": name_in_tables(cfg.model),
        "num_labels": datamodule.num_labels,
        "label_fraction": cfg.data.label_fraction,
        "seed": cfg.seed,
        "variant": variant_of(overrides_of()),
        "overrides": overrides_of(),
        "fingerprint": settings_digest,
        "resumed_from": str(start_from) if start_from else None,
        "vae": vae_info,
        "data": {"likelihood": datamodule.likelihood, "class_names": datamodule.class_names},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if trainer.is_global_zero:  # how the data was read: classes, standardisation, split rows
        write_json_atomic(output_dir / DATA_FILE, datamodule.record())
    start = time.perf_counter()
    try:
        with frozen_vae_expected(vae_info is not None):
            fitted = model.fit_in(
                trainer, datamodule, ckpt_path=start_from, compile=bool(cfg.get("compile"))
            )
    except TrainingError as exc:
        # A diverged job is recorded as failed so that a sweep goes on and the table shows it.
        log.error("%s", exc)
        record.update(status="failed", error=str(exc), wall_time_s=time.perf_counter() - start)
        if trainer.is_global_zero:
            write_json_atomic(output_dir / RESULT_FILE, record)
        return record
    fit_time = time.perf_counter() - start
    resumed_time = time_before_resume_s(trainer)  # before test, which restores the best's Timer
    metrics = trainer.test(
        model, datamodule=datamodule, ckpt_path=fitted.checkpoint, verbose=False, weights_only=True
    )[0]
    record.update(
        status="ok",
        test_acc=float(metrics["test/acc"]),
        test_err=float(metrics["test/err"]),
        test_nll=float(metrics["test/nll"]),
        test_ece=float(metrics["test/ece"]),
        best_val_acc=fitted.best_val_acc,
        epochs=fitted.epochs,
        steps=fitted.steps,
        fit_time_s=fit_time,
        wall_time_s=time.perf_counter() - start,
        resumed_time_s=resumed_time,
        device=device_of(trainer.strategy.root_device, trainer.world_size),
    )
    record.update(log_likelihood(int(cfg.get("log_likelihood_samples") or 0), model, datamodule))
    calibrate(cfg, model, datamodule, record, output_dir)
    return finish(record, trainer, output_dir)


@contextmanager
def frozen_vae_expected(uses_vae: bool) -> Iterator[None]:
    """Silence Lightning's "modules in eval mode" warning when they are M1's frozen VAE."""
    with warnings.catch_warnings():
        if uses_vae:
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        yield


def finish(record: dict[str, Any], trainer: L.Trainer, output_dir: Path) -> dict[str, Any]:
    """Write the result (one process under DDP) and log its summary."""
    if not trainer.is_global_zero:
        return record
    write_json_atomic(output_dir / RESULT_FILE, record)
    log.info(
        "%s %s labels=%d seed=%d: test error %.2f%% (%d epochs, %.0f s)",
        record["model"],
        record["dataset"],
        record["num_labels"],
        record["seed"],
        100 * record["test_err"],
        record["epochs"],
        record["wall_time_s"],
    )
    return record


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Returns the best validation error: what an optimising sweeper (hparams_search=...)
    minimises. Never the test error, which model selection must not see."""
    try:
        record = train(cfg)
    except (ConfigError, DataError) as exc:
        # A bad setting or data file: one clear line and a non-zero exit, no traceback.
        raise SystemExit(f"ssvae: error: {exc}") from None
    best_val_acc = record.get("best_val_acc")
    return None if best_val_acc is None else 1.0 - float(best_val_acc)


if __name__ == "__main__":
    main()
