#!/usr/bin/env bash
# The README's first command: install everything on a fresh Debian machine (as root) and run the
# main job -- validate, convert, execute every rule on the fixtures, and build dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip git >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
.venv/bin/detpack build
