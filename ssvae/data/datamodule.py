"""The Lightning data module: a labeled subset and an unlabeled pool, batched together."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader

from ssvae.data.batches import TensorBatches
from ssvae.data.datasets import DATASETS, SplitData, load_splits
from ssvae.data.labels import resolve_num_labels, select_labeled
from ssvae.data.sources import IDX_DATASETS, find_or_download, resolve_data_root
from ssvae.errors import ConfigError

log = logging.getLogger(__name__)


class SemiSupervisedDataModule(L.LightningDataModule):
    """Yields ``{"labeled": (x, y), "unlabeled": x}`` training batches.

    The labeled loader is cycled (Lightning's ``max_size_cycle``): an epoch is one pass over the
    unlabeled pool, and the small labeled set restarts, reshuffled, whenever it runs out.
    Validation and test loaders yield ``(x, y)`` from the fixed validation and test splits.
    """

    def __init__(
        self,
        name: str = "digits",
        root: str | None = None,
        download: bool = True,
        num_labels: int | None = None,
        label_fraction: float | None = None,
        seed: int = 0,
        labeled_batch_size: int = 100,
        unlabeled_batch_size: int = 100,
        eval_batch_size: int = 1000,
        unlabeled_includes_labeled: bool = False,
    ) -> None:
        super().__init__()
        if name not in DATASETS:
            raise ConfigError(f"data.name={name!r} is not known; allowed: {list(DATASETS)}")
        for field in ("labeled_batch_size", "unlabeled_batch_size", "eval_batch_size"):
            value = locals()[field]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"data.{field}={value} must be a positive integer")
        self.name = name
        self.root = resolve_data_root(root)
        self.download = download
        self.num_labels_requested = num_labels
        self.label_fraction = label_fraction
        self.seed = seed
        self.labeled_batch_size = labeled_batch_size
        self.unlabeled_batch_size = unlabeled_batch_size
        self.eval_batch_size = eval_batch_size
        self.unlabeled_includes_labeled = unlabeled_includes_labeled
        self.splits: SplitData | None = None
        self._train_batches: dict[str, TensorBatches] = {}
        self._batch_order_to_restore: dict[str, torch.Tensor] = {}

    def prepare_data(self) -> None:
        # Runs on one process: fetch missing files (verified on download), set no state.
        if self.name in IDX_DATASETS:
            find_or_download(IDX_DATASETS[self.name], self.root, self.download)

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        splits = load_splits(self.name, self.root, self.download)
        train = splits.train
        self.num_labels = resolve_num_labels(
            self.num_labels_requested, self.label_fraction, len(train.y), splits.num_classes
        )
        self.labeled_idx = select_labeled(train.y, self.num_labels, splits.num_classes, self.seed)
        if self.unlabeled_includes_labeled:
            unlabeled_idx = np.arange(len(train.y))
        else:
            unlabeled_idx = np.setdiff1d(np.arange(len(train.y)), self.labeled_idx)
        self.splits = splits
        self._x_labeled = torch.from_numpy(train.x[self.labeled_idx])
        self._y_labeled = torch.from_numpy(train.y[self.labeled_idx])
        self._x_unlabeled = torch.from_numpy(train.x[unlabeled_idx])
        self._val = (torch.from_numpy(splits.val.x), torch.from_numpy(splits.val.y))
        self._test = (torch.from_numpy(splits.test.x), torch.from_numpy(splits.test.y))
        log.info(
            "%s: %d labeled, %d unlabeled, %d validation, %d test images",
            self.name,
            self.num_labeled,
            self.num_unlabeled,
            len(self._val[1]),
            len(self._test[1]),
        )

    @property
    def x_dim(self) -> int:
        return self._x_labeled.shape[1]

    @property
    def num_classes(self) -> int:
        return self.splits.num_classes

    @property
    def num_labeled(self) -> int:
        return len(self._y_labeled)

    @property
    def num_unlabeled(self) -> int:
        return len(self._x_unlabeled)

    def _on_device(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The tensors on the trainer's device: on a GPU the data stays resident there, so a
        batch is a gather on the device instead of a copy from the host every step."""
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        return tuple(t.to(device) for t in tensors)

    def train_dataloader(self) -> CombinedLoader:
        x_labeled, y_labeled, x_unlabeled = self._on_device(
            self._x_labeled, self._y_labeled, self._x_unlabeled
        )
        # Separate generators so the labeled order does not depend on the unlabeled pool's size.
        loaders = {
            "labeled": TensorBatches(
                x_labeled,
                y_labeled,
                batch_size=min(self.labeled_batch_size, self.num_labeled),
                shuffle=True,
                seed=self.seed,
                even_shards=True,
            )
        }
        if self.num_unlabeled:
            loaders["unlabeled"] = TensorBatches(
                x_unlabeled,
                batch_size=min(self.unlabeled_batch_size, self.num_unlabeled),
                shuffle=True,
                seed=self.seed + 1,
                even_shards=True,
            )
        self._train_batches = loaders
        self._restore_batch_order()
        return CombinedLoader(loaders, mode="max_size_cycle")

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Where each training batch order stands, saved in checkpoints so a resume continues it."""
        return {name: b.generator.get_state() for name, b in self._train_batches.items()}

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        self._batch_order_to_restore = dict(state_dict)
        self._restore_batch_order()  # now, if the loaders already exist; else when they are made

    def _restore_batch_order(self) -> None:
        pending = self._batch_order_to_restore
        if pending and self._train_batches:
            for name, state in pending.items():
                self._train_batches[name].generator.set_state(state)
            self._batch_order_to_restore = {}

    def val_dataloader(self) -> TensorBatches:
        return TensorBatches(*self._on_device(*self._val), batch_size=self.eval_batch_size)

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(*self._on_device(*self._test), batch_size=self.eval_batch_size)
