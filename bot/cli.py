"""The `shopbot` command: run (Telegram, or the console without a token), chat, eval, calibrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from bot.config import TOKEN_ENV, Config, ConfigError, load_config

log = logging.getLogger("shopbot")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="path to config.toml (default: the one in the repo root)")
    common.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser = argparse.ArgumentParser(prog="shopbot", description=__doc__, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", parents=[common], help=f"serve Telegram if {TOKEN_ENV} is set, else the console chat")
    chat = sub.add_parser("chat", parents=[common], help="chat with the bot in this terminal")
    chat.add_argument("--user", default="local", help="customer id whose history to use (default: local)")
    chat.add_argument("--json", action="store_true", help="one JSON object per line out, for scripts")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "run" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
        return asyncio.run(COMMANDS[args.command](config, args))
    except ConfigError as exc:
        print(f"shopbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


@asynccontextmanager
async def conversation_service(config: Config) -> AsyncIterator["ConversationService"]:
    """Open the database and load the engine (once), close both on the way out."""
    from bot.llm.engine import Engine
    from bot.service import ConversationService
    from storage.db import Database

    db = await Database.open(config.storage.path)
    try:
        engine = await asyncio.to_thread(Engine.load, config)
        try:
            yield ConversationService(db, engine, config)
        finally:
            engine.close()
    finally:
        await db.close()


async def run_command(config: Config, args: argparse.Namespace) -> int:
    if config.telegram_token:
        from bot.app import run_telegram

        return await run_telegram(config)
    print(f"{TOKEN_ENV} is not set: starting the local console chat instead of Telegram.", file=sys.stderr)
    return await chat_command(config, argparse.Namespace(user="local", json=False))


async def chat_command(config: Config, args: argparse.Namespace) -> int:
    from bot.console import chat

    async with conversation_service(config) as service:
        return await chat(service, args.user, args.json)


COMMANDS = {"run": run_command, "chat": chat_command}

if __name__ == "__main__":
    sys.exit(main())
