"""Data sets, IDX files, label selection and the Lightning data module."""
