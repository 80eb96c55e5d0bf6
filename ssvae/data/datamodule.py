"""The Lightning data module: a labeled subset and an unlabeled pool, batched together.

``SemiSupervisedDataModule`` owns what every data set shares: holding out validation and test
rows when a source has none, checking the classes, choosing the likelihood, standardising
real-valued features, choosing the labeled subset and batching. A data source is a subclass
that implements ``load()`` (``ssvae.data.builtin``, ``npz``, ``tabular``, ``image_folder``), with
one config under ``conf/data/``.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader

from ssvae.config_checks import positive_int
from ssvae.data.batches import TensorBatches
from ssvae.data.datasets import UNLABELED, Split, SplitData
from ssvae.data.holdout import hold_out
from ssvae.data.labels import resolve_num_labels, select_labeled
from ssvae.errors import ConfigError, DataError

log = logging.getLogger(__name__)

LIKELIHOODS = ("auto", "bernoulli", "gaussian")


class SemiSupervisedDataModule(L.LightningDataModule):
    """Yields ``{"labeled": (x, y), "unlabeled": x}`` training batches.

    The labeled loader is cycled (Lightning's ``max_size_cycle``): an epoch is one pass over the
    unlabeled pool, and the small labeled set restarts, reshuffled, whenever it runs out.
    Validation and test loaders yield ``(x, y)`` from the fixed validation and test splits.

    The labeled subset is ``num_labels`` (or ``label_fraction``) of the training rows that have a
    label, or all of them when neither is set; labeled rows not chosen join the unlabeled pool.
    """

    def __init__(
        self,
        name: str,
        num_labels: int | None = None,
        label_fraction: float | None = None,
        seed: int = 0,
        labeled_batch_size: int = 100,
        unlabeled_batch_size: int = 100,
        eval_batch_size: int = 1000,
        unlabeled_includes_labeled: bool = False,
        label_selection: str = "balanced",
        likelihood: str = "auto",
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        split_seed: int = 0,
    ) -> None:
        super().__init__()
        for field in ("labeled_batch_size", "unlabeled_batch_size", "eval_batch_size"):
            positive_int(locals()[field], f"data.{field}")
        if likelihood not in LIKELIHOODS:
            raise ConfigError(
                f"data.likelihood={likelihood!r} is not known; allowed: {LIKELIHOODS}"
            )
        self.name = name
        self.num_labels_requested = num_labels
        self.label_fraction = label_fraction
        self.seed = seed
        self.labeled_batch_size = labeled_batch_size
        self.unlabeled_batch_size = unlabeled_batch_size
        self.eval_batch_size = eval_batch_size
        self.unlabeled_includes_labeled = unlabeled_includes_labeled
        self.label_selection = label_selection
        self.likelihood_setting = likelihood
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.splits: SplitData | None = None
        self.split_record: dict = {}
        self.standardization: dict[str, list[float]] | None = None
        self._train_batches: dict[str, TensorBatches] = {}
        self._batch_order_to_restore: dict[str, torch.Tensor] = {}

    # --- what a data source implements -------------------------------------------------------
    def load(self) -> SplitData:
        """The source's rows: training rows (label -1 where unknown), optional val/test."""
        raise NotImplementedError

    @property
    def source(self) -> str:
        """How error messages name the data: a file or folder, or the data set's name."""
        return self.name

    def cache_identity(self) -> dict[str, Any] | None:
        """What, beyond ``name``, tells this data apart in the M1 VAE cache (files: path, size,
        time); None for the built-in data sets, whose name says it all."""
        return None

    # --- setup ---------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        splits = self.load()
        self._check_rows(splits)
        self._check_classes(splits)  # before the hold-out, which needs every class labeled
        if splits.val is None or splits.test is None:
            train, val, test, record = hold_out(
                splits.train,
                splits.val,
                splits.test,
                self.val_fraction,
                self.test_fraction,
                self.split_seed,
            )
            splits.train, splits.val, splits.test = train, val, test
            self.split_record = record
            held_out = [
                r for key in ("val", "test") if isinstance(record[key], list) for r in record[key]
            ]
            self.train_rows = np.setdiff1d(np.arange(len(train.y) + len(held_out)), held_out)
        else:
            self.split_record = {"val": "given", "test": "given"}
            self.train_rows = np.arange(len(splits.train.y))
        self._check_classes(splits)  # the hold-out may have taken a class's only labeled rows
        self.likelihood = self._resolve_likelihood(splits.train.x)
        if self.likelihood == "gaussian":
            self._standardize(splits)
        self.splits = splits
        self._choose_labeled(splits.train, splits.num_classes)
        self._val = (torch.from_numpy(splits.val.x), torch.from_numpy(splits.val.y))
        self._test = (torch.from_numpy(splits.test.x), torch.from_numpy(splits.test.y))
        log.info(
            "%s: %d labeled, %d unlabeled, %d validation, %d test rows; %s likelihood",
            self.name,
            self.num_labeled,
            self.num_unlabeled,
            len(self._val[1]),
            len(self._test[1]),
            self.likelihood,
        )
        if self.num_unlabeled == 0:
            log.warning(
                "%s: the unlabeled pool is empty; generative models train on their labeled "
                "terms only (set data.num_labels below the labeled rows to hide some labels)",
                self.source,
            )

    def _check_rows(self, splits: SplitData) -> None:
        named = (("train", splits.train), ("val", splits.val), ("test", splits.test))
        for split_name, split in named:
            if split is None:
                continue
            if len(split.x) != len(split.y):
                raise DataError(
                    f"{self.source}: {split_name} has {len(split.x)} rows of features but "
                    f"{len(split.y)} labels"
                )
            bad = np.flatnonzero(~np.isfinite(split.x).all(axis=1))
            if len(bad):
                raise DataError(
                    f"{self.source}: {split_name} row {bad[0]} has a NaN or infinite value"
                )
        if splits.val is not None and (splits.val.y < 0).any():
            raise DataError(f"{self.source}: every validation row needs a label")
        if splits.test is not None and (splits.test.y < 0).any():
            raise DataError(f"{self.source}: every test row needs a label")

    def _check_classes(self, splits: SplitData) -> None:
        names = splits.class_names
        if len(names) < 2:
            raise DataError(
                f"{self.source}: found {len(names)} class ({names}); classification needs at "
                "least two"
            )
        labeled = splits.train.y[splits.train.y != UNLABELED]
        counts = np.bincount(labeled, minlength=len(names))
        empty = [names[i] for i in np.flatnonzero(counts == 0)]
        if empty:
            raise DataError(
                f"{self.source}: class {empty[0]!r} has no labeled example among the training "
                f"rows ({len(empty)} such class(es)); label at least one, or drop the class"
            )

    def _resolve_likelihood(self, x: np.ndarray) -> str:
        """auto: Bernoulli when every training value is in [0, 1] (images), else Gaussian."""
        in_unit_range = bool(x.size) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        if self.likelihood_setting == "auto":
            return "bernoulli" if in_unit_range else "gaussian"
        if self.likelihood_setting == "bernoulli" and not in_unit_range:
            raise ConfigError(
                f"data.likelihood=bernoulli needs features in [0, 1], but {self.source} has "
                f"values in [{x.min():.3g}, {x.max():.3g}]; use data.likelihood=gaussian or auto"
            )
        return self.likelihood_setting

    def _standardize(self, splits: SplitData) -> None:
        """Zero mean, unit variance per feature, from the training rows only (never val/test)."""
        mean = splits.train.x.mean(0)
        std = splits.train.x.std(0)
        std = np.where(std > 1e-8, std, 1.0)  # a constant feature stays constant
        for split in (splits.train, splits.val, splits.test):
            split.x = ((split.x - mean) / std).astype(np.float32)
        self.standardization = {"mean": mean.tolist(), "std": std.tolist()}

    def _choose_labeled(self, train: Split, num_classes: int) -> None:
        has_label = train.y != UNLABELED
        self.num_labels = resolve_num_labels(
            self.num_labels_requested,
            self.label_fraction,
            len(train.y),
            num_classes,
            self.label_selection,
            available=int(has_label.sum()),
        )
        if self.num_labels_requested is None and self.label_fraction is None:
            # Every labeled row: nothing to choose or balance (classes may differ in size).
            self.labeled_idx = np.flatnonzero(has_label)
        else:
            self.labeled_idx = select_labeled(
                train.y, self.num_labels, num_classes, self.seed, self.label_selection
            )
        if self.unlabeled_includes_labeled:
            unlabeled_idx = np.arange(len(train.y))
        else:
            unlabeled_idx = np.setdiff1d(np.arange(len(train.y)), self.labeled_idx)
        self._x_labeled = torch.from_numpy(train.x[self.labeled_idx])
        self._y_labeled = torch.from_numpy(train.y[self.labeled_idx])
        self._x_unlabeled = torch.from_numpy(train.x[unlabeled_idx])
        self.unlabeled_idx = unlabeled_idx
        # The labels hidden in the pool (benchmark mode), -1 where the source had none.
        self._y_unlabeled_hidden = torch.from_numpy(train.y[unlabeled_idx])

    # --- what models and records read ----------------------------------------------------------
    @property
    def x_dim(self) -> int:
        return self._x_labeled.shape[1]

    @property
    def num_classes(self) -> int:
        return self.splits.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.splits.class_names

    @property
    def num_labeled(self) -> int:
        return len(self._y_labeled)

    @property
    def num_unlabeled(self) -> int:
        return len(self._x_unlabeled)

    @property
    def labeled_class_counts(self) -> list[int]:
        return torch.bincount(self._y_labeled, minlength=self.num_classes).tolist()

    def training_inputs(self) -> list[torch.Tensor]:
        """The training features, labeled then unlabeled (no labels): what the consistency
        models re-estimate batch-norm statistics over."""
        return [self._x_labeled, self._x_unlabeled]

    def model_facts(self) -> dict[str, Any]:
        """What a model may take from the data (each model's constructor names those it uses)."""
        return {
            "x_dim": self.x_dim,
            "num_classes": self.num_classes,
            "num_labeled": self.num_labeled,
            "num_unlabeled": self.num_unlabeled,
            "likelihood": self.likelihood,
            "labeled_class_counts": self.labeled_class_counts,
        }

    def record(self) -> dict[str, Any]:
        """Everything needed to read this run's data again the same way (the run's data.json):
        class names in index order, the likelihood, the standardisation and the split."""
        splits = self.splits
        return {
            "name": self.name,
            "source": self.source,
            "origin": splits.origin,
            "class_names": splits.class_names,
            "feature_names": splits.feature_names,
            "shape": list(splits.shape) or [self.x_dim],
            "likelihood": self.likelihood,
            "standardization": self.standardization,
            "split": self.split_record,
        }

    def prediction_rows(self, split: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Features, labels (-1 where unknown) and the source's row numbers of a split:
        "unlabeled" (the pool, with the labels benchmark mode hid), "val" or "test"."""
        if split == "unlabeled":
            rows = self.train_rows[self.unlabeled_idx]
            return self._x_unlabeled, self._y_unlabeled_hidden, rows
        if split not in ("val", "test"):
            raise ConfigError(f"split={split!r} is not known; allowed: unlabeled, val, test")
        x, y = self._val if split == "val" else self._test
        held_out = self.split_record.get(split)
        rows = np.asarray(held_out) if isinstance(held_out, list) else np.arange(len(y))
        return x, y, rows

    # --- loaders -------------------------------------------------------------------------------
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
