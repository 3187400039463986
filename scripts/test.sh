#!/usr/bin/env bash
# Set up .venv with the test extras (first time only) and run the whole test suite, real-model tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
