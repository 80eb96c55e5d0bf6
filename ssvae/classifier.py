"""``ssvae.SemiSupervisedClassifier``: any ssvae model as a scikit-learn estimator.

    clf = SemiSupervisedClassifier(model="ladder", max_epochs=50)
    clf.fit(X, y)               # y == -1 marks unlabeled rows, as in sklearn.semi_supervised
    clf.predict_proba(X_new)

``fit`` writes the arrays as an ``.npz`` file and trains through ``ssvae.train.train`` with the
project's composed Hydra config (``data=npz``), so the estimator runs exactly the CLI's data
module, Lightning module and trainer; there is no second copy of the training logic. The
labeled rows give a stratified validation split (``validation_fraction``), which picks the
checkpoint, as ``ssvae-train`` does; the run's "test" record is scored on those same rows
(there is no test set inside ``fit``). Any other setting is a Hydra override in ``overrides``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

UNLABELED = -1


def unlabeled_mask(y: np.ndarray) -> np.ndarray:
    """True where ``y`` is -1 (numbers, or -1 / "-1" / None in an object array)."""
    if y.dtype.kind in "iuf":
        return y == UNLABELED
    return np.array([v is None or str(v) == "-1" for v in y], dtype=bool)


class SemiSupervisedClassifier(ClassifierMixin, BaseEstimator):
    """A semi-supervised classifier trained by ssvae.

    model: a config of conf/model/ (m2, sdgm, vat, ladder, mean_teacher, supervised, ...).
    max_epochs, seed, num_threads: as ``trainer.max_epochs``, ``seed`` and ``num_threads``.
    validation_fraction: share of the labeled rows held out to choose the checkpoint.
    overrides: further Hydra overrides, e.g. ``("model.epsilon=1.0",)``.
    work_dir: where the run's folder goes; None: a temporary folder removed after ``fit``.
    """

    def __init__(
        self,
        model: str = "m2",
        max_epochs: int = 50,
        seed: int = 0,
        validation_fraction: float = 0.1,
        overrides: Sequence[str] = (),
        num_threads: int | None = None,
        work_dir: str | None = None,
    ) -> None:
        self.model = model
        self.max_epochs = max_epochs
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.overrides = overrides
        self.num_threads = num_threads
        self.work_dir = work_dir

    def fit(self, X: Any, y: Any) -> SemiSupervisedClassifier:
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=False)
        unlabeled = unlabeled_mask(np.asarray(y))
        if unlabeled.all():
            raise ValueError("y has no labeled row: mark only the unlabeled rows with -1")
        check_classification_targets(np.asarray(y)[~unlabeled])  # no continuous targets
        self.classes_ = np.unique(np.asarray(y)[~unlabeled])
        if len(self.classes_) < 2:
            raise ValueError(f"y has {len(self.classes_)} class; classification needs two")
        codes = np.full(len(y), UNLABELED, dtype=np.int64)
        codes[~unlabeled] = np.searchsorted(self.classes_, np.asarray(y)[~unlabeled])
        folder = Path(self.work_dir or tempfile.mkdtemp(prefix="ssvae-"))
        try:
            self._train(X, codes, folder)
        finally:
            if self.work_dir is None:
                shutil.rmtree(folder, ignore_errors=True)
        return self

    def _train(self, X: np.ndarray, codes: np.ndarray, folder: Path) -> None:
        from hydra import compose, initialize_config_dir

        from ssvae.predict import run_model
        from ssvae.train import CONFIG_DIR, train

        labeled = np.flatnonzero(codes != UNLABELED)
        size = max(len(self.classes_), round(self.validation_fraction * len(labeled)))
        try:
            rest, held = train_test_split(
                labeled, test_size=size, stratify=codes[labeled], random_state=self.seed
            )
        except ValueError as exc:
            raise ValueError(
                f"cannot hold out a stratified validation split of {size} labeled rows "
                f"(validation_fraction={self.validation_fraction}): {exc}"
            ) from None
        train_rows = np.setdiff1d(np.arange(len(codes)), held)
        folder.mkdir(parents=True, exist_ok=True)
        data = folder / "data.npz"
        np.savez(
            data,
            x=X[train_rows],
            y=codes[train_rows],
            x_val=X[held],
            y_val=codes[held],
            x_test=X[held],
            y_test=codes[held],
            class_names=np.array([str(c) for c in self.classes_]),
        )
        overrides = [
            f"model={self.model}",
            "data=npz",
            f"data.path={data}",
            "data.name=arrays",
            f"seed={self.seed}",
            f"trainer.max_epochs={self.max_epochs}",
            "trainer.enable_progress_bar=false",
            f"paths.output_dir={folder / 'run'}",
            f"paths.cache_dir={folder / 'cache'}",
            *([f"num_threads={self.num_threads}"] if self.num_threads else []),
            *self.overrides,
        ]
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        record = train(cfg)
        if record.get("status") != "ok":
            raise RuntimeError(f"training failed: {record.get('error')}")
        _, datamodule, self.model_ = run_model(folder / "run")
        self.standardization_ = datamodule.standardization
        self.result_ = {k: v for k, v in record.items() if k != "config"}

    def predict_proba(self, X: Any) -> np.ndarray:
        from ssvae.predict import probabilities

        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        if self.standardization_:  # as the training rows were
            scale = self.standardization_
            X = ((X - np.asarray(scale["mean"])) / np.asarray(scale["std"])).astype(np.float32)
        import torch

        temperature = float(self.result_.get("calibration", {}).get("temperature", 1.0))
        return probabilities(self.model_, torch.from_numpy(X), temperature).numpy()

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.classes_[self.predict_proba(X).argmax(1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
