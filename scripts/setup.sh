#!/usr/bin/env bash
# Create .venv and install ssvae into it (editable, so conf/ and scripts/ are used in place).
# torch is installed first and pinned: that takes the local CPU build; an unpinned torch would
# pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
