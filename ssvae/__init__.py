"""ssvae: semi-supervised classification with deep generative models (Kingma et al., 2014)."""

__version__ = "0.1.0"

import logging as _logging

# Lightning advertises a cloud logger ("Tip: ... litlogger") on every Trainer it builds; ssvae
# writes CSV logs, so the tip is noise in every run's output.
_logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage()
)
