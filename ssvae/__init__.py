"""ssvae: semi-supervised classification with deep generative models (Kingma et al., 2014)."""

import logging as _logging
import warnings as _warnings

from ssvae.precision import register_resolver as _register_resolver

__version__ = "0.1.0"

# Lightning advertises a cloud logger ("Tip: ... litlogger") on every Trainer it builds; ssvae
# writes CSV logs, so the tip is noise in every run's output.
_logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage()
)

# Lightning 2.6's own pytree helper trips torch 2.13's deprecation of LeafSpec on every
# evaluation; nothing a user can act on, so it is not shown.
_warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")

# The MNIST experiments' precision is ${bf16_where_native:...}: every entry point that composes
# or reloads a config (train, predict, report, tests) imports this package first.
_register_resolver()


def __getattr__(name: str):
    # ssvae.SemiSupervisedClassifier, imported on first use: the package import stays light.
    if name == "SemiSupervisedClassifier":
        from ssvae.classifier import SemiSupervisedClassifier

        return SemiSupervisedClassifier
    raise AttributeError(f"module 'ssvae' has no attribute {name!r}")
