"""Every command's --help prints its usage and exits 0: argparse formats help strings with %, so
a bare "%" in one ("test error %") crashes --help with a TypeError (it did, in ssvae-report)."""

from __future__ import annotations

import importlib
import tomllib

import pytest

from tests.conftest import REPO, load_script

ENTRY_POINTS = {
    name: target
    for name, target in tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "scripts"
    ].items()
    if name != "ssvae-train"  # Hydra's own --help; tests/test_train.py composes its configs
}
SCRIPTS = sorted(
    path.stem for path in (REPO / "scripts").glob("*.py") if "argparse" in path.read_text()
)


def _assert_help(main, name: str, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", [name, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_entry_point_help(name, monkeypatch, capsys):
    module, function = ENTRY_POINTS[name].split(":")
    _assert_help(getattr(importlib.import_module(module), function), name, monkeypatch, capsys)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help(name, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))  # as when run: profile_step imports bench
    _assert_help(load_script(name).main, name, monkeypatch, capsys)


def test_the_commands_are_found():
    assert {"ssvae-report", "ssvae-curves", "ssvae-predict", "ssvae-figures"} <= set(ENTRY_POINTS)
    assert {"bench", "keep_results", "readme_leaderboard"} <= set(SCRIPTS)
