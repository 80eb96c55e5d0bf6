"""Copy the small files of finished runs (result.json, curve.json) into a folder kept in git.

    python scripts/keep_results.py outputs/sweeps/table1 --into docs/runs/table1

Every run folder below the given folders that has a ``result.json`` is copied to
``INTO/<its path below the given folder>/``, flattened into one folder name (checkpoints and
logs stay behind), so that ``ssvae-report`` and ``ssvae-curves`` rebuild the tables and curves
from a clean clone.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

KEPT = ("result.json", "curve.json")


def kept_name(run: Path, folder: Path) -> str:
    """The run's folder name in the kept copy: its path below ``folder``, flattened. A group
    override in a sweep (``model/scheduler=cosine``) nests Hydra's job folder, and the leaf alone
    would be the same for every label count; a time-to-accuracy output keeps its run in ``run/``,
    which its outer folder names."""
    parts = [part for part in run.relative_to(folder).parts if part != "run"]
    return ".".join(parts) if parts else (folder.name if run.name == "run" else run.name)


def keep(folders: list[Path], into: Path) -> list[Path]:
    copied = []
    for folder in folders:
        for result in sorted(folder.rglob("result.json")):
            run = result.parent
            target = into / kept_name(run, folder)
            target.mkdir(parents=True, exist_ok=True)
            for file in KEPT:
                if (run / file).is_file():
                    shutil.copy2(run / file, target / file)
            copied.append(target)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--into", type=Path, required=True)
    args = parser.parse_args()
    for target in keep(args.folders, args.into):
        print(target)


if __name__ == "__main__":
    main()
