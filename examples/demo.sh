#!/usr/bin/env bash
# The README's main command: set up .venv if needed, then run the demo (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/naftiko ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
fi
exec .venv/bin/python -m examples.demo "$@"
