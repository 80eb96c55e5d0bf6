"""ssvae: semi-supervised classification with deep generative models (Kingma et al., 2014)."""

__version__ = "0.1.0"
