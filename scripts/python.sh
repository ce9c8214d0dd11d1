#!/usr/bin/env bash
# Check the Python that builds the project's venv: 3.11 or newer, with venv + ensurepip.
# Debian's python3 ships venv support separately (python3-venv): installed here when missing.
#
#   bash scripts/python.sh python3
set -euo pipefail

PY="${1:-python3}"
command -v "$PY" >/dev/null || { echo "python.sh: $PY not found; install Python 3.11+ (Debian: apt-get install python3)" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "python.sh: $("$PY" --version 2>&1) is too old: the project needs Python 3.11+ (make PYTHON=python3.11 ...)" >&2; exit 1; }

if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  [[ "$(id -u)" == 0 ]] && sudo=() || sudo=(sudo)
  echo "python.sh: $PY has no venv/ensurepip; installing python3-venv (python$ver-venv) with apt-get" >&2
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-venv "python$ver-venv" >/dev/null
fi
