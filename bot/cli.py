"""The `shopbot` command: run (Telegram, the web chat, or the console in a terminal), web, chat, prepare, eval,
calibrate, kb, eval-replies, analyze, bench."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
import time
import warnings
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import AsyncIterator

from bot.config import SENTIMENT_METHODS, TOKEN_ENV, Config, ConfigError, listen_address, load_config, web_secret
from bot.evals.analyze import AnalyzeError
from bot.evals.comments import CommentFileError
from bot.evaluation import INTENT_METHODS, MIN_ROWS_PER_LABEL, TASK_LABELS, LabelledFileError
from bot.knowledge import KnowledgeFileError
from bot.llm.backends import ModelServerDown
from storage.db import DatabaseOpenError

log = logging.getLogger("shopbot")
DEFAULT_LISTEN = "127.0.0.1:8080"  # `shopbot web` without --listen or [web] listen: this machine only
UNANSWERED_DAYS = 30  # `shopbot kb unanswered` without --since: a month of questions


def _common_options(config_default, verbose_default) -> argparse.ArgumentParser:
    """--config and -v, with the given defaults."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=config_default,
                        help="path to config.toml (default: the one in the repo root; installed without "
                             "the repo, ./config.toml)")
    common.add_argument("-v", "--verbose", action="store_true", default=verbose_default, help="log more")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopbot", description=__doc__, parents=[_common_options(None, False)])
    # Accepted after the command too; there they default to SUPPRESS, so a command's parser never overwrites
    # `shopbot --config X eval ...`'s X with its own default.
    common = _common_options(argparse.SUPPRESS, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", parents=[common],
                   help=f"serve Telegram ({TOKEN_ENV} set; and the web chat if [web] listen is set); without it, the "
                   "web chat if [web] listen is set, else the console chat in a terminal, else an error")
    web = sub.add_parser("web", parents=[common], help=f"serve the web chat (and Telegram too if {TOKEN_ENV} is set)")
    web.add_argument("--listen", help=f"host:port (default: [web] listen, else {DEFAULT_LISTEN})")
    sub.add_parser("prepare", parents=[common], help="prepare the configured model once (its tokenizer and config), then exit (Docker build)")
    chat = sub.add_parser("chat", parents=[common], help="chat with the bot in this terminal")
    chat.add_argument("--user", default="local", help="customer id whose history to use (default: local)")
    chat.add_argument("--json", action="store_true", help="one JSON object per line out, for scripts")
    labelled = argparse.ArgumentParser(add_help=False, parents=[common])
    labelled.add_argument("file", help="CSV with the header text,label (sentiment: positive/negative, optionally "
                                       "neutral; intent: the nine intents, README \"Intents\")")
    labelled.add_argument("--task", choices=tuple(TASK_LABELS), default="sentiment",
                          help="what the labels are (default: sentiment)")
    labelled.add_argument("--limit", type=int, help="use a seeded random sample of N rows, stratified by label")
    labelled.add_argument("--labels", help="only rows with these labels, comma-separated (e.g. positive,negative)")
    labelled.add_argument("--seed", type=int, default=20240611, help="seed of the --limit sample")
    evaluate = sub.add_parser("eval", parents=[labelled], help="score the sentiment or intent reading on a labelled CSV")
    evaluate.add_argument("--method", choices=sorted({*SENTIMENT_METHODS, *INTENT_METHODS}),
                          help=f"method to score (default: the configured; intent: {' or '.join(INTENT_METHODS)}, "
                               "the head where there is one)")
    evaluate.add_argument("--json", action="store_true", help="print the report as one JSON object")
    calibrate = sub.add_parser("calibrate", parents=[labelled],
                               help="fit a sentiment head (or with --task intent an intent head) on a labelled CSV")
    calibrate.add_argument("--l2", type=float, help="weight penalty of the fit (default: the shipped head's)")
    calibrate.add_argument("--out", help="where to save the head (default: next to the model cache)")
    calibrate.add_argument("--force", action="store_true",
                           help=f"fit a sentiment head even on fewer than {MIN_ROWS_PER_LABEL} rows of a label")
    kb = sub.add_parser("kb", parents=[common], help="the shop's knowledge (FAQ) the bot answers from")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_import = kb_sub.add_parser("import", parents=[common], help="replace the knowledge with a CSV's entries")
    kb_import.add_argument("file", nargs="?", help="CSV with the header id,lang,question,answer[,also_asked] "
                                                   "(default: [knowledge] file)")
    kb_unanswered = kb_sub.add_parser("unanswered", parents=[common],
                                      help="the shop questions the bot handed to a person, to add to the knowledge")
    kb_unanswered.add_argument("--since", help=f"from this date on (YYYY-MM-DD, in [hours] timezone, else local time; "
                                               f"default: the last {UNANSWERED_DAYS} days)")
    kb_unanswered.add_argument("--csv", help="also write the questions to this CSV file (for a spreadsheet)")
    kb_unanswered.add_argument("--no-recheck", action="store_true",
                               help="list them as decided when asked, without asking today's knowledge (no model)")
    kb_unanswered.add_argument("--check-answered", action="store_true",
                               help="also ask the questions the bot answered again, and list those today's knowledge "
                                    "answers otherwise (after an edit: what it moved)")
    replies = sub.add_parser("eval-replies", parents=[common], help="score the replies to shop questions")
    replies.add_argument("file", help="CSV with the header lang,question,expect_any,kind")
    replies.add_argument("--knowledge", help="knowledge CSV to answer from (default: [knowledge] file)")
    replies.add_argument("--no-knowledge", action="store_true", help="the model's own words, as without knowledge")
    replies.add_argument("--json", action="store_true", help="print the report as one JSON object")
    analyze = sub.add_parser("analyze", parents=[common],
                             help="read a file of comments (or the stored messages): sentiment, topics, a report")
    analyze.add_argument("file", nargs="?", help="CSV with a text column (optional date, source, id), "
                                                 "JSON Lines, or plain text with one comment per line")
    analyze.add_argument("--from-db", action="store_true", help="analyse the customers' messages in the database")
    analyze.add_argument("--since", help="with --from-db: only messages from this date on (YYYY-MM-DD, in [hours] "
                                         "timezone, else local time)")
    analyze.add_argument("--out", help="folder for rows.csv, report.html, report.md "
                                       "(default: analysis-<file name>, or analysis-messages)")
    analyze.add_argument("--text-column", default="text", help="the CSV column / JSON field with the comment")
    bench = sub.add_parser("bench", parents=[common], help="speed and memory of the configured model here")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command in ("run", "web") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
        return asyncio.run(COMMANDS[args.command](config, args))
    except ConfigError as exc:
        print(f"shopbot: {exc}", file=sys.stderr)
        return 2
    except (UsageError, LabelledFileError, KnowledgeFileError, CommentFileError, AnalyzeError) as exc:
        print(f"shopbot {args.command}: {exc}", file=sys.stderr)
        return 2
    except DatabaseOpenError as exc:  # the wrong file, read-only, newer: the owner must act (exit 2, no restart)
        print(f"shopbot: storage.path: {exc}", file=sys.stderr)
        return 1 if exc.busy else 2  # held by another program (a backup): a service's restart may get it
    except ModelServerDown as exc:
        print(f"shopbot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _quiet_libraries() -> None:
    """No library deprecation notices or per-load progress bars: they are for the libraries' developers."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=FutureWarning)


def prepare_model(config: Config) -> str:
    """Save the configured GGUF's tokenizer and config once (the first start: seconds); the loads that follow
    show no progress bars."""
    if config.model.backend != "local":  # a remote server holds the model; torch is never imported
        return config.model.base_url
    from transformers.utils import logging as transformers_logging

    from bot.llm.loading import model_files

    try:
        return str(model_files(config.model))
    finally:
        transformers_logging.disable_progress_bar()


async def prepare_command(config: Config, args: argparse.Namespace) -> int:
    print(f"model ready in {await asyncio.to_thread(prepare_model, config)}")
    return 0


@asynccontextmanager
async def conversation_service(config: Config) -> AsyncIterator["ConversationService"]:
    """Open the database, load the engine (once) and the shop's knowledge; close them on the way out."""
    from bot.llm.backends import load_backend
    from bot.service import ConversationService
    from storage.db import Database

    await asyncio.to_thread(prepare_model, config)
    db = await Database.open(config.storage.path)
    try:
        engine = await asyncio.to_thread(load_backend, config)
        try:
            service = ConversationService(db, engine, config)
            await service.start()
            yield service
        finally:
            engine.close()
    finally:
        await db.close()


async def run_command(config: Config, args: argparse.Namespace) -> int:
    if config.web.listen:
        web_secret(config)  # a missing secret stops start-up before the model loads
    if config.telegram_token:
        from bot.telegram.app import run_telegram

        await asyncio.to_thread(prepare_model, config)
        return await run_telegram(config)
    if config.web.listen:
        print(f"{TOKEN_ENV} is not set: serving the web chat only; alerts wait in SQLite for the operator chat.",
              file=sys.stderr)
        return await _web_only(config)
    if not sys.stdin.isatty():
        # A service (systemd, Docker) without its token: exiting 0 on EOF would make it restart forever.
        print(f"shopbot run: {TOKEN_ENV} is not set, so there is no Telegram bot to serve. Create one with "
              f"@BotFather and set {TOKEN_ENV} in the environment (README, \"Deploy\"); "
              f"for the console chat run `shopbot chat`.", file=sys.stderr)
        return 2
    print(f"{TOKEN_ENV} is not set: starting the local console chat instead of Telegram.", file=sys.stderr)
    return await chat_command(config, argparse.Namespace(user="local", json=False))


async def web_command(config: Config, args: argparse.Namespace) -> int:
    listen = args.listen or config.web.listen or DEFAULT_LISTEN
    listen_address("--listen", listen)
    return await run_command(replace(config, web=replace(config.web, listen=listen)), args)


async def _web_only(config: Config) -> int:
    """The web chat without Telegram, with /healthz and /metrics on [monitoring] listen, until SIGINT/SIGTERM."""
    from bot import retention
    from bot.channels.web.server import serving_web
    from bot.monitoring import Monitor, monitoring

    stop = _stop_on_signals()
    serving: "ConversationService | None" = None  # set once the chat serves: till then /healthz says "starting"
    monitor = Monitor(config, lambda: serving)
    # Listening before the model loads, as with Telegram: a probe meanwhile gets 503 "starting", not a refusal.
    async with monitoring(monitor), conversation_service(config) as service, serving_web(service, config) as chat:
        serving = service
        purging = asyncio.create_task(retention.daily(service.db, config.storage.retention_days))
        print(f"web chat: open {chat.url} (Ctrl-C to stop)", file=sys.stderr)
        try:
            await stop.wait()
        finally:
            await monitor.stop()  # first, as with Telegram: no probe finds the database closing under it
            purging.cancel()  # a run in its transaction rolls back before the database closes
            await asyncio.gather(purging, return_exceptions=True)
    return 0


def _stop_on_signals() -> asyncio.Event:
    """An event SIGINT or SIGTERM sets."""
    import signal

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return stop


async def chat_command(config: Config, args: argparse.Namespace) -> int:
    from bot.channels.console import chat

    async with conversation_service(config) as service:
        return await chat(service, args.user, args.json)


def _in_process(config: Config, command: str) -> None:
    """eval and calibrate read the model's own scores and hidden states: the local backend only."""
    if config.model.backend != "local":
        raise ConfigError("model.backend", f"`shopbot {command}` runs the model in this process; with a model server "
                                           "use bench/remote_sentiment.py (README, \"A remote model server\")")


async def eval_command(config: Config, args: argparse.Namespace) -> int:
    from bot.evaluation import format_report, run_eval

    _in_process(config, "eval")
    methods = INTENT_METHODS if args.task == "intent" else SENTIMENT_METHODS
    if args.method and args.method not in methods:
        print(f"shopbot eval: --method {args.method} reads no {args.task}; choose {', '.join(methods)}", file=sys.stderr)
        return 2
    report = await asyncio.to_thread(run_eval, config, args.file, args.method, _limit(args), _labels(args), args.seed,
                                     args.task)
    print(json.dumps(report, ensure_ascii=False) if args.json else format_report(report, args.file))
    return 0


async def calibrate_command(config: Config, args: argparse.Namespace) -> int:
    from bot.evaluation import run_calibrate

    _in_process(config, "calibrate")
    result = await asyncio.to_thread(
        run_calibrate, config, args.file, _limit(args), _labels(args), args.seed, args.l2, args.out, args.task,
        args.force)
    held_out = result["held_out"]
    print(f"saved a{'n' if args.task == 'intent' else ''} {args.task} head fitted on {result['n']} rows to {result['path']}")
    print(f"held-out ({held_out['n']} rows): macro-F1 {held_out['macro_f1']:.3f}, accuracy {held_out['accuracy']:.3f}")
    for note in [*held_out["notes"], *result["notes"]]:
        print(note)
    return 0


async def kb_command(config: Config, args: argparse.Namespace) -> int:
    """`shopbot kb import` or `shopbot kb unanswered`."""
    return await (kb_unanswered_command if args.kb_command == "unanswered" else kb_import_command)(config, args)


async def kb_import_command(config: Config, args: argparse.Namespace) -> int:
    """The knowledge replaced by a CSV's entries (the model embeds the new and changed ones)."""
    from pathlib import Path

    path = Path(args.file) if args.file else config.knowledge.file
    if path is None:
        print("shopbot kb import: give a FILE, or set [knowledge] file in the config", file=sys.stderr)
        return 2
    # Without the configured file: the one given is imported (start-up re-imports [knowledge] file if it differs).
    async with conversation_service(replace(config, knowledge=replace(config.knowledge, file=None))) as service:
        count = await service.knowledge.import_file(path)
    print(f"imported {count} knowledge entries from {path} into {config.storage.path}")
    if config.knowledge.file is not None and path.resolve() != config.knowledge.file.resolve():
        print(f"note: [knowledge] file is {config.knowledge.file}; the bot re-imports it at start when it changes")
    return 0


async def kb_unanswered_command(config: Config, args: argparse.Namespace) -> int:
    """The stored questions the knowledge handed over, each asked again of today's knowledge (the model loads)."""
    from pathlib import Path

    from bot.unanswered import as_text, gather, recheck, write_csv
    from storage.db import Database

    if args.check_answered and args.no_recheck:
        print("shopbot kb unanswered: --check-answered asks today's knowledge again; not with --no-recheck",
              file=sys.stderr)
        return 2
    zone = _shop_zone(config)
    if args.since:  # a day in the shop's zone, the zone the listed dates are printed in
        since, shown = _day_start(args.since, "shopbot kb unanswered", zone), f"since {args.since}"
        if since is None:
            return 2
    else:
        since, shown = time.time() - UNANSWERED_DAYS * 86400, f"in the last {UNANSWERED_DAYS} days"
    if not Path(config.storage.path).is_file():  # Database.open would create an empty one
        print(f"shopbot kb unanswered: no database at {config.storage.path} ([storage] path): no questions stored",
              file=sys.stderr)
        return 2
    db = await Database.open(config.storage.path)
    try:
        found = gather(await db.knowledge_matches(since))
    finally:
        await db.close()
    asked_again = ([] if args.no_recheck else found.questions) + (found.answered if args.check_answered else [])
    if asked_again:
        async with conversation_service(config) as service:
            await recheck(service.knowledge, service.engine, asked_again, config.chat.max_message_tokens)
    print(as_text(found, shown, zone, answers_checked=args.check_answered))
    if args.csv:
        write_csv(found, Path(args.csv), zone)
        print(f"\nwrote {len(found.questions)} questions to {args.csv}")
    return 0


async def eval_replies_command(config: Config, args: argparse.Namespace) -> int:
    """Fresh customers in a throw-away database, so the shop's own history and operators see nothing of it."""
    import tempfile
    from pathlib import Path

    from bot.reply_evaluation import evaluate_replies, format_report, read_questions

    questions = read_questions(args.file)
    knowledge = None if args.no_knowledge else Path(args.knowledge) if args.knowledge else config.knowledge.file
    if knowledge is None and not args.no_knowledge:
        print("shopbot eval-replies: give --knowledge FILE, set [knowledge] file, or pass --no-knowledge",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="shopbot-eval-") as tmp:
        config = replace(config, storage=replace(config.storage, path=Path(tmp) / "eval.db"),
                         knowledge=replace(config.knowledge, file=knowledge))
        async with conversation_service(config) as service:
            report = await evaluate_replies(service, questions, _progress if not args.json else None)
    print(json.dumps(report, ensure_ascii=False) if args.json else format_report(report, args.file))
    return 0


def _seconds(when: datetime) -> float:
    """Seconds since 1970 of a local time; one the platform's clock cannot convert (0001-01-01, or 9999-12-31 east
    of UTC) is before, or after, every stored message."""
    try:
        return when.timestamp()
    except (ValueError, OverflowError, OSError):
        return -math.inf if when.year < 1970 else math.inf


def _shop_zone(config: Config) -> tzinfo | None:
    """The shop's time zone ([hours] timezone), in which an owner's dates are days; None: the server's own."""
    return config.hours.schedule().tz if config.hours else None


def _day_start(text: str, command: str, zone: tzinfo | None = None) -> float | None:
    """A --since date (in `zone`; None: the server's local time) in seconds since 1970; None, after saying why, when it
    is no date."""
    try:
        when = datetime.fromisoformat(text)
        return _seconds(when if when.tzinfo else when.replace(tzinfo=zone))
    except ValueError:
        print(f"{command}: --since {text!r} is not a date like 2024-05-31", file=sys.stderr)
        return None


async def analyze_command(config: Config, args: argparse.Namespace) -> int:
    """Rows into DIR/rows.csv (a rerun continues where the last one stopped), then the reports from those rows."""
    from pathlib import Path

    from bot.evals.analyze import analyse, file_comments, reader_for, stored_comments, write_reports
    from bot.evals.comments import check_readable, file_source, sniff_encoding
    from storage.db import Database

    if bool(args.file) == args.from_db:
        print("shopbot analyze: give a FILE, or --from-db (not both)", file=sys.stderr)
        return 2
    if args.since and not args.from_db:
        print("shopbot analyze: --since goes with --from-db (a file's rows are all read)", file=sys.stderr)
        return 2
    out = Path(args.out or ("analysis-messages" if args.from_db else f"analysis-{Path(args.file).stem}"))
    reader = reader_for(config)
    try:
        if args.from_db:
            zone = _shop_zone(config)  # --since and the rows' dates are the shop's days
            since = _day_start(args.since, "shopbot analyze", zone) if args.since else 0.0
            if since is None:
                return 2
            if not Path(config.storage.path).is_file():  # Database.open would create an empty one
                print(f"shopbot analyze: no database at {config.storage.path} ([storage] path): nothing stored to "
                      "analyse", file=sys.stderr)
                return 2
            title = f"customer messages in {config.storage.path}" + (f" since {args.since}" if args.since else "")
            db = await Database.open(config.storage.path)
            try:
                run = await analyse(reader, stored_comments(db, since, zone), out, title, None, title)
            finally:
                await db.close()
        else:
            path = Path(args.file)
            title = path.name
            encoding = sniff_encoding(path) if path.is_file() else None
            check_readable(path, encoding, args.text_column)
            if encoding.notice:
                print(f"analyze: {encoding.notice}", file=sys.stderr)
            total = encoding.lines - (path.suffix.lower() in (".csv", ".tsv"))  # the header is no comment
            run = await analyse(reader, file_comments(path, encoding, args.text_column), out, title, total,
                                file_source(path, args.text_column))
    except asyncio.CancelledError:  # Ctrl-C: what was read is in rows.csv already
        print(f"\nanalyze: stopped; the rows read so far are in {out / 'rows.csv'}. "
              "Run the same command again to continue.", file=sys.stderr)
        raise
    except (ModelServerDown, TimeoutError) as exc:  # the model server went away: what was read is kept as well
        reason = str(exc) or f"a request took over model.timeout_seconds ({config.model.timeout_seconds:g} s)"
        print(f"\nanalyze: stopped: {reason}; the rows read so far are in {out / 'rows.csv'}. "
              "Run the same command again to continue.", file=sys.stderr)
        return 1
    finally:
        reader.close()
    write_reports(out, title)
    print(f"analyze: {run.analysed} rows read now, {run.resumed} from an earlier run, {len(run.skipped)} skipped"
          f"{' (see skipped.csv)' if run.skipped else ''}; wrote {out / 'rows.csv'}, {out / 'report.html'}, "
          f"{out / 'report.md'}", file=sys.stderr)
    return 0


def _progress(done: int, total: int) -> None:
    print(f"\r{done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


class UsageError(ValueError):
    """A command-line option's value is wrong; the message names the option and why."""


def _limit(args: argparse.Namespace) -> int | None:
    """--limit, which samples at least one row."""
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: must be 1 or more")
    return args.limit


def _labels(args: argparse.Namespace) -> list[str] | None:
    """--labels as the task's label names, whatever their case (files' labels are read that way too)."""
    if not args.labels:
        return None
    labels = [label.strip().lower() for label in args.labels.split(",")]
    known = TASK_LABELS[args.task]
    for label in labels:
        if label not in known:
            raise UsageError(f"--labels: unknown label {label!r} (expected {', '.join(known)})")
    return labels


async def bench_command(config: Config, args: argparse.Namespace) -> int:
    from bot.benchmark import run_bench, table

    result = await asyncio.to_thread(run_bench, config)
    result["model"] = config.model.source
    print(json.dumps(result) if args.json else table(result))
    return 0


COMMANDS = {"run": run_command, "web": web_command, "chat": chat_command, "prepare": prepare_command,
            "eval": eval_command, "calibrate": calibrate_command,
            "kb": kb_command, "eval-replies": eval_replies_command, "analyze": analyze_command,
            "bench": bench_command}

if __name__ == "__main__":
    sys.exit(main())
