#!/usr/bin/env bash
# The benchmark (issues 5 and 16), in one command:
#   bash bench/run.sh [--quick] [--only SECTION]... [--save-baseline]
# Installs what it needs (wrk and nginx via apt if missing; two venvs under bench/), then runs
# bench/run.py, which writes bench/results/report.{md,json,png}. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null || ! command -v curl >/dev/null; then
  echo "bench: installing wrk, nginx-light and curl with apt-get" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq wrk nginx-light curl >/dev/null
fi

# naftiko as a user gets it: only the dependencies pyproject declares, and the source tree installed
# editable (without its extras) so `python -m naftiko` runs what is checked out.
if [ ! -x bench/.venv-naftiko/bin/python ]; then
  "$PY" -m venv bench/.venv-naftiko
fi
DEPS=$("$PY" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
echo "$DEPS" | bench/.venv-naftiko/bin/pip install -q --disable-pip-version-check -r /dev/stdin 2> >(grep -v "^WARNING: Location" >&2)
bench/.venv-naftiko/bin/pip install -q --disable-pip-version-check --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
# The source tree's bytecode, as installing a wheel leaves it: where PYTHONDONTWRITEBYTECODE=1 is set (as on
# the machines this runs on), every start would otherwise compile naftiko's modules again (seed: 0.24 s, not 0.15).
bench/.venv-naftiko/bin/python -m compileall -q __init__.py __main__.py engine adapters

# Peers, the pure proxy's stack, the chart and the profiler.
if [ ! -x bench/.venv/bin/python ]; then
  "$PY" -m venv bench/.venv
fi
bench/.venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt 2> >(grep -v "^WARNING: Location" >&2)

exec bench/.venv/bin/python bench/run.py "$@"
