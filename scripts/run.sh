#!/usr/bin/env bash
# Set up .venv (first time only) and run the bot: Telegram when TELEGRAM_BOT_TOKEN is set, else the console chat.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/shopbot run "$@"
