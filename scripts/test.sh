#!/usr/bin/env bash
# The README's second command: install what the tests need and run the whole suite
# (lint, format check, type check, tests). .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy detpack scripts
.venv/bin/pytest -q
