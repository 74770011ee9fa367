#!/usr/bin/env bash
# Debian packages the pack needs: Python, and the Java runtime + compiler with Apache Lucene 8 for the
# Lucene engine (detpack/engines/lucene.py); Chromium and its driver, which open the analyst catalog in the
# tests (tests/test_publish_catalog.py); libmagic1 for splunk-appinspect (python-magic), which inspects the
# Splunk app in the tests. Idempotent; skipped when everything is already there.
set -euo pipefail
PACKAGES=(python3 python3-venv python3-pip git openjdk-17-jdk-headless liblucene8-java chromium chromium-driver libmagic1)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
