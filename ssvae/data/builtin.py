"""The data sets ssvae knows by name: scikit-learn's digits (bundled), MNIST and Fashion-MNIST
(found under ``data.root`` or downloaded, digest-verified). Their splits are fixed."""

from __future__ import annotations

from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.data.datasets import SplitData, load_digits_splits, load_idx_splits
from ssvae.data.sources import IDX_DATASETS, find_or_download, resolve_data_root
from ssvae.errors import ConfigError

BUILTIN = ("digits", *IDX_DATASETS)


class BuiltinData(SemiSupervisedDataModule):
    def __init__(
        self, name: str = "digits", root: str | None = None, download: bool = True, **settings
    ) -> None:
        if name not in BUILTIN:
            raise ConfigError(
                f"data.name={name!r} is not a built-in data set; allowed: {list(BUILTIN)} "
                "(your own data: data=npz, data=csv or data=image_folder)"
            )
        super().__init__(name=name, **settings)
        self.root = resolve_data_root(root)
        self.download = download

    def prepare_data(self) -> None:
        # Runs on one process: fetch missing files (verified on download), set no state.
        if self.name in IDX_DATASETS:
            find_or_download(IDX_DATASETS[self.name], self.root, self.download)

    def load(self) -> SplitData:
        if self.name == "digits":
            return load_digits_splits()
        return load_idx_splits(self.name, self.root, self.download)
