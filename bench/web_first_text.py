"""Send to first visible reply text in a real browser, on the web chat with the embedded model.

    .venv/bin/python bench/web_first_text.py [--runs 3]     # run alone: it loads the model (~1 min on 2 cores)

The repo's config with no shop knowledge and chat.free_chat = "on" (so the model writes every reply), a fresh
database, the web chat on a free port, the distribution's headless Chromium. Each run is a new visitor who sends
bench/first_text.py's 20-token message after 6 turns of their own; the page's clock times the submit to the first
reply text on screen and to the finished reply, and the service's own first streamed text is timed beside it (in
this process), so the difference is what the web path (SSE, JSON, the page) adds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.first_text import HISTORY, MESSAGE  # noqa: E402
from bot.channels.web.server import serving_web  # noqa: E402
from bot.config import load_config  # noqa: E402
from bot.llm.engine import Engine  # noqa: E402
from bot.service import ConversationService  # noqa: E402
from storage.db import Database  # noqa: E402
from testkit.browser import TIMING, chromium  # noqa: E402
from testkit.web_helpers import free_port  # noqa: E402

SECRET = "bench-" + "0" * 40


async def one_visitor(browser, url: str, service: ConversationService) -> tuple[float, float, float]:
    """(browser first text, browser finished, service first partial) in seconds, for MESSAGE after 6 turns."""
    context = await browser.new_context()
    await context.add_init_script(TIMING)
    page = await context.new_page()
    await page.goto(url)
    box = page.locator("#message")
    await page.locator(".msg.note").wait_for()
    for role, text in HISTORY:
        if role == "customer":  # the bot's own replies become the history, as in a real conversation
            await box.fill(text)
            await box.press("Enter")
            await page.wait_for_function("() => window.__timing.at(-1).done !== null", timeout=120_000)
            print(f"  history turn answered: {text!r}", file=sys.stderr, flush=True)
    first_partial: list[float] = []
    original = service.handle_text

    async def timed(*args, on_partial=None, **kwargs):
        started = time.perf_counter()

        def seen(text: str) -> None:
            if not first_partial:
                first_partial.append(time.perf_counter() - started)
            on_partial(text)

        return await original(*args, on_partial=seen if on_partial else None, **kwargs)

    service.handle_text = timed
    try:
        await box.fill(MESSAGE)
        await box.press("Enter")
        await page.wait_for_function("() => window.__timing.at(-1).done !== null", timeout=120_000)
    finally:
        service.handle_text = original
    run = await page.evaluate("window.__timing.at(-1)")
    await context.close()
    return (run["first"] - run["sent"]) / 1000, (run["done"] - run["sent"]) / 1000, first_partial[0]


async def main(runs: int) -> int:
    config = load_config()
    config = replace(config, chat=replace(config.chat, free_chat="on"),  # the model writes (and streams) every reply
                     web=replace(config.web, listen=f"127.0.0.1:{free_port()}"), web_secret=SECRET)
    engine = await asyncio.to_thread(Engine.load, config)
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db")
        service = ConversationService(db, engine, config)
        async with serving_web(service, config) as chat, chromium() as browser:
            results = [await one_visitor(browser, chat.url, service) for _ in range(runs)]
        await db.close()
    engine.close()
    first, done, service_first = zip(*results)
    print(f"web chat, embedded model, {runs} visitors, message of {engine.count_tokens(MESSAGE)} tokens after "
          f"{len(HISTORY)} turns:")
    for name, values in (("browser: send -> first visible text", first), ("browser: send -> finished reply", done),
                         ("service: first streamed text", service_first)):
        print(f"  {name:38s} median {statistics.median(values):6.2f} s   runs: "
              + ", ".join(f"{v:.2f}" for v in values))
    overhead = statistics.median(f - s for f, s in zip(first, service_first))
    print(f"  web path adds (browser first text - service first text), median: {overhead * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args().runs)))
