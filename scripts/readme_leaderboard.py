"""Fill the leaderboard blocks of the README and docs/results.md from the committed results, or
check them (--check).

A block is the text between ``<!-- leaderboard: ARGS -->`` and ``<!-- /leaderboard -->``; ARGS
are ``ssvae-report --leaderboard`` options (``--dataset mnist --labels 100``, ``--by-labels``).
The table is ``ssvae-report docs/runs --leaderboard --paper ARGS``, so the docs show the
report's output.
    python scripts/readme_leaderboard.py            # rewrite README.md and docs/results.md
    python scripts/readme_leaderboard.py --check    # exit 1 where one is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ssvae.io import write_text_atomic
from ssvae.report import (
    add_leaderboard_options,
    by_labels_markdown,
    collect_results,
    leaderboard,
    leaderboard_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- leaderboard: (.*?) -->\n)(.*?)(<!-- /leaderboard -->)", re.S)
DOCS_WITH_BLOCKS = (ROOT / "README.md", ROOT / "docs" / "results.md")


def filled(text: str, results: list[dict]) -> str:
    """``text`` with every leaderboard block holding the report's table of ``results`` (the
    records ``collect_results`` reads from docs/runs)."""

    def table(match: re.Match) -> str:
        parser = argparse.ArgumentParser()
        add_leaderboard_options(parser)
        args = parser.parse_args(match.group(2).split())
        rows = leaderboard(results, args.dataset, args.labels)
        layout = by_labels_markdown if args.by_labels else leaderboard_markdown
        return match.group(1) + layout(rows, paper=True) + match.group(4)

    return BLOCK.sub(table, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    parser.add_argument("files", nargs="*", type=Path, default=list(DOCS_WITH_BLOCKS))
    parser.add_argument("--runs", type=Path, default=ROOT / "docs" / "runs")
    args = parser.parse_args(argv)
    results = collect_results([args.runs])  # read once for every file's blocks
    stale = []
    for path in args.files:
        text = path.read_text()
        new = filled(text, results)
        if new == text:
            continue
        if args.check:
            stale.append(path)
        else:
            write_text_atomic(path, new)
    for path in stale:
        print(f"{path}: leaderboard is stale; run scripts/readme_leaderboard.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
