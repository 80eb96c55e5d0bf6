"""Models: each a LightningModule that classifies, sharing evaluation through the base class."""
