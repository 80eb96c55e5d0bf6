"""Fill the README's leaderboard block(s) from the committed results, or check them (--check).

A block is the text between ``<!-- leaderboard: ARGS -->`` and ``<!-- /leaderboard -->``; ARGS
are ``ssvae-report --leaderboard`` filters (``--dataset mnist --labels 100``). The table is
``ssvae-report docs/runs --leaderboard --paper ARGS``, so the README shows the report's output.
    python scripts/readme_leaderboard.py            # rewrite README.md
    python scripts/readme_leaderboard.py --check    # exit 1 where it is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ssvae.io import write_text_atomic
from ssvae.report import (
    add_leaderboard_filters,
    collect_results,
    leaderboard,
    leaderboard_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- leaderboard: (.*?) -->\n)(.*?)(<!-- /leaderboard -->)", re.S)


def filled(readme: str, runs: Path) -> str:
    """``readme`` with every leaderboard block holding the report's current table."""
    results = collect_results([runs])

    def table(match: re.Match) -> str:
        parser = argparse.ArgumentParser()
        add_leaderboard_filters(parser)
        args = parser.parse_args(match.group(2).split())
        rows = leaderboard(results, args.dataset, args.labels)
        return match.group(1) + leaderboard_markdown(rows, paper=True) + match.group(4)

    return BLOCK.sub(table, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--runs", type=Path, default=ROOT / "docs" / "runs")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    new = filled(text, args.runs)
    if args.check:
        if new != text:
            print(f"{args.readme}: leaderboard is stale; run scripts/readme_leaderboard.py")
            return 1
        return 0
    write_text_atomic(args.readme, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
