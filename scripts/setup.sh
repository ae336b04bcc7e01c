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
# AttnLRP's rules (explorer/lenses/explain/attnlrp.py). Without its dependencies: lxt's metadata
# asks for transformers, bitsandbytes and open_clip for its language-model patches, which the
# explicit rules used here do not import (they need torch only). Without lxt the page says so.
.venv/bin/python -m pip install --quiet --no-deps "lxt==2.1"
