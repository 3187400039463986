#!/usr/bin/env bash
# Install the pinned torch into the venv of PYTHON (argument 1) as the CPU build, the only one shopbot uses.
# PyPI's Linux torch pulls several GB of CUDA libraries; PyTorch's CPU index has the same version without them.
# When pip's configured index already resolves the pin to a CPU build (a mirror, a pre-seeded wheel, macOS),
# that is used and the CPU index is never contacted. SHOPBOT_TORCH_INDEX replaces the CPU index (a mirror).
set -euo pipefail
python="$1"
pin="torch==2.13.0"
cpu_index="${SHOPBOT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
pip=("$python" -m pip --disable-pip-version-check -q)

if "$python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("torch").split("+")[0] != "2.13.0")' 2>/dev/null; then
    exit 0  # installed already
fi
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# A dry run reads the wheel's metadata only; a CUDA build lists nvidia-* packages among its requirements.
if "${pip[@]}" install --dry-run --no-deps --ignore-installed --report "$report" "$pin" >/dev/null 2>&1 \
        && ! grep -q '"nvidia-' "$report"; then
    echo "setup: $pin from pip's configured index (a CPU build)"
    "${pip[@]}" install "$pin"
else
    echo "setup: $pin, CPU build, from $cpu_index"
    "${pip[@]}" install --index-url "$cpu_index" "$pin"
fi
