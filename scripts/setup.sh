#!/usr/bin/env bash
# The README's first command: install everything on a fresh Debian machine (as root) and run the
# main job -- validate, convert, execute every rule on the fixtures in all five engines, build dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-packages.sh
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
.venv/bin/detpack build
