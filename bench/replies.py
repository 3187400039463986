"""Replies to the sample shop's questions, without and with the shop's knowledge, in one run on one loaded model.

    .venv/bin/python bench/replies.py            # ~6 min on 2 cores, run alone
    .venv/bin/python bench/replies.py --remote   # with knowledge, the model on a llama.cpp server (~1 min)

"free chat" is the bot as it was before shop knowledge (#8) and before #16: without knowledge the model writes
every reply itself (chat.free_chat = "on"). "no free chat" is chat.free_chat as configured ("auto": off for the
embedded model). "with knowledge" answers from ../shared/data/shop/faq.csv as configured. Both use the repo's config.toml otherwise, fresh customers in a
throw-away database. Prints a markdown table; every reply goes to bench/out/replies.json.
--remote: "with knowledge" on backend = "openai" against a llama.cpp server serving the same embedded model, once
with the server's embeddings and once with a server without them (shared words alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import load_config  # noqa: E402
from bot.llm.backends import ModelBackend, load_backend  # noqa: E402
from bot.reply_evaluation import evaluate_replies, read_questions  # noqa: E402
from bot.service import ConversationService  # noqa: E402
from storage.db import Database  # noqa: E402

SHOP = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "shop"
OUT = Path(__file__).resolve().parent / "out"


async def run(engine: ModelBackend, config, knowledge: Path | None, free_chat: str, tmp: Path) -> dict:
    config = replace(config, storage=replace(config.storage, path=tmp / f"{knowledge is not None}-{free_chat}.db"),
                     knowledge=replace(config.knowledge, file=knowledge), chat=replace(config.chat, free_chat=free_chat))
    db = await Database.open(config.storage.path)
    try:
        service = ConversationService(db, engine, config)
        await service.start()
        return await evaluate_replies(service, read_questions(SHOP / "questions.csv"))
    finally:
        await db.close()


async def local(config, tmp: Path) -> dict[str, dict]:
    engine = await asyncio.to_thread(load_backend, config)
    reports = {}
    for name, knowledge, free_chat in (
            ("without knowledge, free chat (before #8)", None, "on"),
            (f"without knowledge, chat.free_chat = {config.chat.free_chat}", None, config.chat.free_chat),
            ("with knowledge", SHOP / "faq.csv", config.chat.free_chat)):
        reports[name] = await run(engine, config, knowledge, free_chat, tmp)
    engine.close()
    return reports


async def remote(config, tmp: Path) -> dict[str, dict]:
    from testkit.llama_server import LlamaServer, on_server

    reports = {}
    for name, embeddings in (("with knowledge, llama.cpp server, its embeddings", True),
                             ("with knowledge, llama.cpp server, shared words alone", False)):
        with LlamaServer(embeddings=embeddings) as server:
            remote_config = on_server(config, server.url)
            engine = await asyncio.to_thread(load_backend, remote_config)
            db_dir = tmp / ("embeddings" if embeddings else "lexical")
            db_dir.mkdir()
            reports[name] = await run(engine, remote_config, SHOP / "faq.csv", config.chat.free_chat, db_dir)
            engine.close()
    return reports


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remote", action="store_true", help="with knowledge, the model on a llama.cpp server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reports = await (remote if args.remote else local)(load_config(), Path(tmp))
    print("| replies | fact accuracy (en / zh) | wrong language | invented | made-up facts | facts handed over "
          "| ms/reply (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in reports.items():
        by = r["fact_accuracy_by_language"]
        made_up = "-" if r["made_up_facts"] is None else r["made_up_facts"]
        print(f"| {name} | {r['fact_accuracy']:.2f} ({by['en']:.2f} / {by['zh']:.2f}) | {r['wrong_language']} | "
              f"{r['invented']} | {made_up} | {r['facts_handed_over']} | {r['ms_per_reply']:.0f} |")
    OUT.mkdir(exist_ok=True)
    (OUT / ("replies_remote.json" if args.remote else "replies.json")).write_text(json.dumps(reports, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
