"""The `shopbot` command: run (Telegram, or the console without a token), chat, eval, calibrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from bot.config import SENTIMENT_METHODS, TOKEN_ENV, Config, ConfigError, load_config
from bot.evaluation import LabelledFileError

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
    labelled = argparse.ArgumentParser(add_help=False, parents=[common])
    labelled.add_argument("file", help="CSV with the header text,label (positive/negative, optionally neutral)")
    labelled.add_argument("--limit", type=int, help="use a seeded random sample of N rows, stratified by label")
    labelled.add_argument("--labels", help="only rows with these labels, comma-separated (e.g. positive,negative)")
    labelled.add_argument("--seed", type=int, default=20240611, help="seed of the --limit sample")
    evaluate = sub.add_parser("eval", parents=[labelled], help="score the sentiment method on a labelled CSV")
    evaluate.add_argument("--method", choices=SENTIMENT_METHODS, help="method to score (default: the configured)")
    evaluate.add_argument("--json", action="store_true", help="print the report as one JSON object")
    calibrate = sub.add_parser("calibrate", parents=[labelled], help="fit a sentiment head on a labelled CSV")
    calibrate.add_argument("--l2", type=float, help="weight penalty of the fit (default: the shipped head's)")
    calibrate.add_argument("--out", help="where to save the head (default: next to the model cache)")
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
    except LabelledFileError as exc:
        print(f"shopbot {args.command}: {exc}", file=sys.stderr)
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


async def eval_command(config: Config, args: argparse.Namespace) -> int:
    from bot.evaluation import format_report, run_eval

    report = await asyncio.to_thread(run_eval, config, args.file, args.method, args.limit, _labels(args), args.seed)
    print(json.dumps(report) if args.json else format_report(report, args.file))
    return 0


async def calibrate_command(config: Config, args: argparse.Namespace) -> int:
    from bot.evaluation import run_calibrate

    result = await asyncio.to_thread(
        run_calibrate, config, args.file, args.limit, _labels(args), args.seed, args.l2, args.out)
    held_out = result["held_out"]
    print(f"saved a sentiment head fitted on {result['n']} rows to {result['path']}")
    print(f"held-out ({held_out['n']} rows): macro-F1 {held_out['macro_f1']:.3f}, accuracy {held_out['accuracy']:.3f}")
    for note in result["notes"]:
        print(note)
    return 0


def _labels(args: argparse.Namespace) -> list[str] | None:
    return [label.strip() for label in args.labels.split(",")] if args.labels else None


COMMANDS = {"run": run_command, "chat": chat_command, "eval": eval_command, "calibrate": calibrate_command}

if __name__ == "__main__":
    sys.exit(main())
