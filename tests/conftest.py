from __future__ import annotations

import gzip
import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ssvae.train import CONFIG_DIR

REPO = Path(__file__).resolve().parent.parent
# The read-only MNIST copy beside the repository (present on developer machines and in CI).
SHARED_DATA = Path(os.environ.get("SSVAE_TEST_DATA", REPO.parent / "shared" / "data"))
HAS_MNIST = (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"no MNIST files under {SHARED_DATA}")


def load_script(name: str):
    """``scripts/<name>.py`` as a module (scripts/ is not a package), to call its functions."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Encode an array as IDX (uint8 by default)."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8 if type_code == 0x08 else array.dtype).tobytes()


def write_idx_gz(path: Path, array: np.ndarray) -> bytes:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw, mtime=0))
    return raw


@pytest.fixture
def compose_cfg(tmp_path: Path):
    """Compose the project's config with overrides; outputs go to a temporary folder."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(
                "config",
                overrides=[
                    f"paths.output_dir={tmp_path / 'run'}",
                    "trainer.enable_progress_bar=false",
                    *overrides,
                ],
            )

    return _compose


def train_command(*args: str) -> list[str]:
    """The command line of ``python -m ssvae.train`` with ``args``."""
    return [sys.executable, "-m", "ssvae.train", *args]


def two_job_sweep(sweep_dir: Path, *extra: str, max_epochs: int = 2) -> list[str]:
    """The arguments of a small two-job multirun (20 and 50 labels, tiny M2) into ``sweep_dir``."""
    return [
        "-m",
        "data.num_labels=20,50",
        "model.hidden_dims=[32]",
        "model.z_dim=4",
        f"trainer.max_epochs={max_epochs}",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep_dir}",
        *extra,
    ]


def run_train(cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m ssvae.train`` in ``cwd`` and capture its output."""
    return subprocess.run(
        train_command(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Pretend this CPU does (True) or does not (False) have native bf16, without CUDA."""

    def _set(native: bool) -> None:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    return _set
