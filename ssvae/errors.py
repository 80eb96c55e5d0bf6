"""The project's own exceptions: each message says what was wrong and what is allowed."""


class SsvaeError(Exception):
    """Base class for every error ssvae raises on purpose."""


class ConfigError(SsvaeError, ValueError):
    """A configuration value is invalid; the message names the field and the allowed values."""


class DataError(SsvaeError):
    """A data file is missing, unreadable, corrupt or fails verification."""


class TrainingError(SsvaeError, RuntimeError):
    """Training cannot go on (for example, a non-finite loss)."""
