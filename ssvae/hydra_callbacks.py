"""Hydra callbacks: check the output folder before a run or sweep, report after a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ssvae.errors import ConfigError
from ssvae.report import REPORT_STEM, to_markdown, write_report
from ssvae.runs import check_output_dir


def _check(folder: str) -> None:
    # Hydra creates the folder before the job starts; a failure there would be a traceback.
    try:
        check_output_dir(Path(folder))
    except ConfigError as exc:
        raise SystemExit(f"ssvae: error: {exc}") from None


class CheckOutputDir(Callback):
    """Refuse to start when results could not be written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(config.hydra.sweep.dir)


class ReportOnMultirunEnd(Callback):
    """After a multirun, write and print the table for its sweep folder."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = write_report([sweep_dir])
        print(f"\nResults ({sweep_dir}/{REPORT_STEM}.md, .csv, .json, .png):\n")
        print(to_markdown(rows))
