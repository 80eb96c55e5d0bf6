#!/usr/bin/env bash
# Install with the dev extra, lint, and run the test suite (the README's second command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
.venv/bin/ruff check ssvae tests scripts
.venv/bin/ruff format --check ssvae tests scripts
# pytest exits 5 when it collects no tests: that must fail, and it does under set -e.
.venv/bin/python -m pytest "$@"
