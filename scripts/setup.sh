#!/usr/bin/env bash
# Create .venv (first run) and install the app's requirements (and the test ones with --dev).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "--dev" ]; then
    .venv/bin/python -m pip install --quiet -r requirements-dev.txt
    # lxt, the AttnLRP authors' package, is what the tests hold explorer/lenses/explain/attnlrp.py
    # to. Without its dependencies: its metadata asks for transformers, bitsandbytes and open_clip
    # for its language-model patches, which its rule functions do not import (torch only).
    .venv/bin/python -m pip install --quiet --no-deps "lxt==2.1"
else
    .venv/bin/python -m pip install --quiet -r requirements.txt
fi
