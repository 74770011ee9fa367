#!/usr/bin/env bash
# The README's second command: install what the tests need and run the whole suite
# (lint, format check, type check, tests). .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
# Splunk AppInspect checks the Splunk app in the tests; it pins its own dependencies, so it lives in its own
# environment (tests/test_publish_splunk.py runs .venv-appinspect/bin/splunk-appinspect).
python3 -m venv .venv-appinspect
.venv-appinspect/bin/pip install -q --upgrade pip
.venv-appinspect/bin/pip install -q splunk-appinspect==4.3.1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy detpack scripts tests benchmarks
.venv/bin/pytest -q
