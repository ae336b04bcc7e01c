#!/usr/bin/env bash
# Create .venv (first run) and install the app's requirements (and the test ones with --dev).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "--dev" ]; then
    .venv/bin/python -m pip install --quiet -r requirements-dev.txt
else
    .venv/bin/python -m pip install --quiet -r requirements.txt
fi
