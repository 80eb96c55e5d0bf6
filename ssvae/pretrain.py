"""Train M1's VAE once per (data set, seed, VAE settings) and reuse it across label counts.

The VAE sees every training image and no label, so it does not depend on the labeled subset: a
sweep over four label counts trains it once. The cache key is a digest of everything that does
affect it; a file lock keeps parallel jobs from training the same VAE twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from filelock import FileLock
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf

from ssvae.data.batches import TensorBatches
from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.io import write_bytes_atomic, write_json_atomic
from ssvae.models.vae import VAE
from ssvae.runs import drop_added_later

log = logging.getLogger(__name__)


@dataclass
class PretrainedVAE:
    vae: VAE
    folder: Path
    trained_now: bool  # False when it came from the cache
    info: dict[str, Any]


def cache_key(
    dataset: str,
    seed: int,
    vae_cfg: DictConfig,
    precision: str,
    data_identity: dict[str, Any] | None = None,
) -> str:
    """A digest of what the VAE depends on. ``data_identity`` tells apart files that share a name
    (None for the built-in data sets, whose keys stay what they were before it existed)."""
    vae_settings = OmegaConf.to_container(vae_cfg, resolve=True)
    drop_added_later(vae_settings, prefix="vae.")  # VAEs cached before a setting existed
    vae_settings.pop("precision", None)  # the precision used is ``precision`` below
    settings = {
        "dataset": dataset,
        "seed": seed,
        "vae": vae_settings,
        "precision": str(precision),
    }
    if data_identity is not None:
        settings["data"] = data_identity
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


@torch.no_grad()
def latent_mean_std(vae: VAE, x: torch.Tensor, batch_size: int = 1000) -> list[float]:
    """The std over ``x`` of each dimension of q(z|x)'s mean: near 0 for unused dimensions."""
    vae.eval()
    means = torch.cat([vae.encode(chunk)[0].float() for chunk in x.split(batch_size)])
    return means.std(0).tolist()


@torch.no_grad()
def mean_elbo(vae: VAE, x: torch.Tensor, batch_size: int = 1000) -> float:
    vae.eval()
    total = sum(vae.elbo(chunk).sum().item() for chunk in x.split(batch_size))
    return total / len(x)


def _load(path: Path) -> VAE:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    vae = VAE(**saved["hparams"])
    vae.load_state_dict(saved["state_dict"])
    return vae


def _train(
    vae_cfg: DictConfig,
    datamodule: SemiSupervisedDataModule,
    seed: int,
    trainer_cfg: DictConfig,
    precision: str,
    folder: Path,
) -> tuple[VAE, dict[str, Any]]:
    L.seed_everything(seed, workers=True)
    vae = instantiate(
        vae_cfg.model, x_dim=datamodule.x_dim, likelihood=datamodule.likelihood, _convert_="all"
    )
    train_x = torch.from_numpy(datamodule.splits.train.x)  # every training image, no labels
    loader = TensorBatches(train_x, batch_size=vae_cfg.batch_size, shuffle=True, seed=seed)
    val_x = torch.from_numpy(datamodule.splits.val.x)
    trainer = L.Trainer(
        max_epochs=vae_cfg.max_epochs,
        max_time=vae_cfg.get("max_time"),
        precision=precision,
        accelerator=trainer_cfg.accelerator,
        devices=1,
        logger=CSVLogger(folder, name="", version="logs"),
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=trainer_cfg.enable_progress_bar,
    )
    start = time.perf_counter()
    val_loader = TensorBatches(val_x, batch_size=1000)
    trainer.fit(vae, train_dataloaders=loader, val_dataloaders=val_loader)
    # "-true" precisions leave the weights in their dtype (bf16-true: bf16). M1 is cached, scored
    # and used on fp32 images in fp32, as after a mixed-precision fit (bf16 values fit in fp32).
    vae.float()
    info = {
        "epochs": trainer.current_epoch,
        "train_time_s": time.perf_counter() - start,
        "val_elbo": mean_elbo(vae, val_x),
        "test_elbo": mean_elbo(vae, torch.from_numpy(datamodule.splits.test.x)),
    }
    return vae, info


def vae_precision(vae_cfg: DictConfig, trainer_cfg: DictConfig) -> str:
    """M1's training precision: ``vae.precision``, or the trainer's when that is null (so that a
    run can train M2 in another precision on the same cached VAE)."""
    return str(vae_cfg.get("precision") or trainer_cfg.precision)


def pretrained_vae(
    vae_cfg: DictConfig,
    datamodule: SemiSupervisedDataModule,
    seed: int,
    trainer_cfg: DictConfig,
    cache_dir: Path,
) -> PretrainedVAE:
    """The cached VAE for these settings, training (and caching) it first if needed."""
    identity = datamodule.cache_identity()
    if identity is not None or datamodule.likelihood != "bernoulli":
        identity = {**(identity or {}), "likelihood": datamodule.likelihood}
    precision = vae_precision(vae_cfg, trainer_cfg)
    key = cache_key(datamodule.name, seed, vae_cfg, precision, identity)
    folder = Path(cache_dir) / f"vae-{datamodule.name}-seed{seed}-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vae.ckpt"
    with FileLock(str(folder / ".lock")):
        if path.is_file():
            log.info("reusing the cached M1 VAE %s", path)
            vae, info = _load(path), json.loads((folder / "info.json").read_text())
            trained_now = False
        else:
            log.info("training the M1 VAE (cached in %s)", folder)
            vae, info = _train(vae_cfg, datamodule, seed, trainer_cfg, precision, folder)
            buffer = io.BytesIO()
            torch.save({"hparams": dict(vae.hparams), "state_dict": vae.state_dict()}, buffer)
            write_bytes_atomic(path, buffer.getvalue())
            info["trained_at"] = time.time()
            trained_now = True
        if "latent_mean_std" not in info:  # caches written before it was recorded get it now
            train_x = torch.from_numpy(datamodule.splits.train.x)
            info["latent_mean_std"] = latent_mean_std(vae, train_x)
            write_json_atomic(folder / "info.json", info)
    vae.latent_mean_std = info["latent_mean_std"]
    return PretrainedVAE(vae, folder, trained_now, info)
