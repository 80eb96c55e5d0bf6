"""A run folder's state: is the job finished, can it resume, which settings does it belong to?

Re-running a sweep into the same folder skips jobs whose ``result.json`` is complete and was made
with the same settings, and resumes unfinished ones from ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from omegaconf import DictConfig, OmegaConf

from ssvae.errors import ConfigError, DataError
from ssvae.models.needs import takes_pretrained_vae

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
# How the run read its data: class names in index order, standardisation, held-out rows.
DATA_FILE = "data.json"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
# Settings that change where or how fast a job runs, not what it computes. (conf/config.yaml's
# hydra.job.config.override_dirname.exclude_keys lists the ones users commonly override.)
PLUMBING_KEYS = (
    "paths",
    "num_threads",
    "compile",
    "ckpt_path",
    "resume",
    "sweep_name",
    "logger",
)
PLUMBING_DATA_KEYS = ("root", "download")
# Your own data's files: they do change the result, but data.name (the file's name by default)
# names the data in job folders and tables, where a path's "/" would nest folders.
DATA_FILE_KEYS = ("data.path", "data.val_path", "data.test_path", "data.unlabeled_path")
PLUMBING_TRAINER_KEYS = ("enable_progress_bar", "accelerator", "devices", "strategy", "num_nodes")


def is_plumbing(key: str) -> bool:
    """Whether a dotted config key (as in a command-line override) is plumbing."""
    head, _, rest = key.partition(".")
    return (
        key in ("callbacks", "logger")  # what records a run (curves, logs) does not change it
        or head in PLUMBING_KEYS
        or (head == "data" and rest in PLUMBING_DATA_KEYS)
        or (head == "trainer" and rest in PLUMBING_TRAINER_KEYS)
    )


# Settings added after sweeps were made, at the values that reproduce what those sweeps did: left
# out of the digest, so that an unfinished sweep resumes after an upgrade instead of restarting.
ADDED_LATER = {
    "data.label_selection": "balanced",
    "data.likelihood": "auto",
    "data.val_fraction": 0.1,
    "data.test_fraction": 0.2,
    "data.split_seed": 0,
    "model.prior_y": "uniform",
    "calibrate": False,
    "reliability_diagram": False,
    "log_likelihood_samples": 0,
    "vae.model.kl_warmup_epochs": 0,
    "model.alpha_per_label": None,
    "vae.precision": None,
    "model.init": "torch",
    "model.gradient_clip_value": None,
    "model.q_a": "learned",
    "model.kl_warmup_epochs": 0,
    "trainer.gradient_clip_val": None,
    "model.bound_unlabeled": None,
    "weight_averaging": {},  # weight_averaging=none
}


# Settings added later whose digest did include them from the start (so they cannot join
# ADDED_LATER without changing the fingerprints of the runs made since): what older runs ran with.
# ssvae-report fills them in, so that an older run and a newer one of one recipe compare equal.
ADDED_LATER_IN_DIGEST = {
    "model.latent_std_threshold": 0.0,
}


def drop_added_later(settings: dict[str, Any], prefix: str = "") -> None:
    """Remove, in place, the ADDED_LATER settings that sit at their neutral values. ``prefix``
    says where ``settings`` sits in the whole config (e.g. "vae." for the VAE's settings)."""
    for dotted, value in ADDED_LATER.items():
        if not dotted.startswith(prefix):
            continue
        *parents, key = dotted[len(prefix) :].split(".")
        node = settings
        for parent in parents:
            node = node.get(parent) or {}
        if key in node and node[key] == value:
            del node[key]


# Classes renamed since: the digest keeps their old names, for the same reason.
RENAMED_TARGETS = {
    "data": {"ssvae.data.builtin.BuiltinData": "ssvae.data.datamodule.SemiSupervisedDataModule"}
}


# Until 2026-11 a model config's ``uses_vae: true`` marked the models built on M1's VAE; now
# their constructors take a ``vae`` (ssvae.models.needs), and M1, then an EstimatorClassifier
# with that key, is its own class. Digests keep the old form, so that unfinished sweeps resume.
M1_BEFORE, M1_NOW = "ssvae.models.estimator.EstimatorClassifier", "ssvae.models.m1.M1"


def upgrade_config(cfg: DictConfig) -> DictConfig:
    """A saved run config with renamed classes given their current names, so old runs load."""
    for group, renamed in RENAMED_TARGETS.items():
        node = cfg.get(group)
        for new, old in renamed.items():
            if node is not None and node.get("_target_") == old:
                node._target_ = new
    model = cfg.get("model")
    if model is not None and "uses_vae" in model:
        if model.uses_vae and model.get("_target_") == M1_BEFORE:
            model._target_ = M1_NOW
        model.pop("uses_vae")
    return cfg


def _as_before_uses_vae_went(model: dict[str, Any]) -> None:
    if takes_pretrained_vae(model.get("_target_", "")):
        model["uses_vae"] = True
        if model["_target_"] == M1_NOW:
            model["_target_"] = M1_BEFORE


def fingerprint(cfg: DictConfig) -> str:
    """A digest of the settings that determine a job's result."""
    settings = OmegaConf.to_container(cfg, resolve=True)
    drop_added_later(settings)
    for group, renamed in RENAMED_TARGETS.items():
        node = settings.get(group) or {}
        node["_target_"] = renamed.get(node.get("_target_"), node.get("_target_"))
    _as_before_uses_vae_went(settings.get("model") or {})
    for key in PLUMBING_KEYS:
        settings.pop(key, None)
    for key in PLUMBING_DATA_KEYS:
        settings.get("data", {}).pop(key, None)
    for key in PLUMBING_TRAINER_KEYS:
        settings.get("trainer", {}).pop(key, None)
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def finished_result(output_dir: Path, expected_fingerprint: str) -> dict[str, Any] | None:
    """The folder's result if it is complete, successful and made with the same settings."""
    path = output_dir / RESULT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    if not isinstance(record, dict) or record.get("status") != "ok" or "test_acc" not in record:
        return None
    if record.get("fingerprint") != expected_fingerprint:
        log.warning("%s was made with other settings; running the job again", path)
        return None
    return record


def best_checkpoint(run_dir: Path) -> Path:
    """The newest best-validation checkpoint a run kept."""
    candidates = sorted(
        (run_dir / "checkpoints").glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime
    )
    if not candidates:
        raise DataError(f"{run_dir / 'checkpoints'} has no best-*.ckpt; the run kept no model")
    return candidates[-1]


def saved_identity(path: Path) -> dict[str, Any] | None:
    """The model/data/settings identity stored in a checkpoint (None if it has none)."""
    return torch.load(path, map_location="cpu", weights_only=True).get("ssvae")


def resumable_checkpoint(output_dir: Path, expected_fingerprint: str) -> Path | None:
    """``last.ckpt`` if it loads and belongs to these settings; a bad one is moved aside."""
    path = output_dir / LAST_CHECKPOINT
    if not path.is_file():
        return None
    try:
        identity = saved_identity(path)
    except Exception as exc:  # any unreadable checkpoint: start again rather than fail the sweep
        log.warning("cannot resume from %s (%s); starting the job afresh", path, exc)
        identity = None
    if identity and identity.get("fingerprint") == expected_fingerprint:
        log.info("resuming from %s", path)
        return path
    aside = path.with_suffix(".ckpt.stale")
    path.replace(aside)
    log.warning("%s does not match this job's settings; moved it to %s", path, aside.name)
    return None


def check_identity(saved: dict[str, Any] | None, current: dict[str, Any], path: str) -> None:
    """Refuse a checkpoint made by another model or for another data set."""
    if saved is None:
        raise ConfigError(f"{path} is not an ssvae checkpoint (it has no 'ssvae' identity)")
    for key in ("model", "dataset", "x_dim", "num_classes"):
        if saved.get(key) != current.get(key):
            raise ConfigError(
                f"checkpoint {path} was saved for {key}={saved.get(key)!r}, but this run has "
                f"{key}={current.get(key)!r}; pick a checkpoint of the same model and data set"
            )


def time_before_resume_s(trainer: L.Trainer) -> float:
    """Training seconds of a resumed run's earlier segments, from the Timer state its checkpoint
    carried (0 for a run trained in one go, or a trainer without a Timer)."""
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    if timer is None:
        return 0.0
    start, end = timer.start_time("train"), timer.end_time("train")
    this_segment = end - start if start is not None and end is not None else 0.0
    return max(0.0, timer.time_elapsed("train") - this_segment)


def check_output_dir(output_dir: Path) -> None:
    """Fail early, with the path, if results could not be written there."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        # A probe of its own: jobs sharing the folder must not remove each other's.
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as exc:
        raise ConfigError(
            f"output folder {output_dir} is not writable ({exc.strerror or exc}); "
            "choose another with hydra.run.dir=... or hydra.sweep.dir=..."
        ) from exc


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_of(root_device: torch.device, processes: int = 1) -> str:
    """What a run trained on, for tables: the GPU's name, or the CPU's and torch's threads
    (speeds differ between machines, so a number's device belongs beside it)."""
    if root_device.type == "cuda":
        name = torch.cuda.get_device_name(root_device)
        return f"GPU: {name}" + (f" x{processes}" if processes > 1 else "")
    threads = torch.get_num_threads()
    return f"CPU: {cpu_name()}, {threads} thread{'s' if threads > 1 else ''}"
