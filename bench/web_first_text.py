"""Send to first visible reply text in a real browser, on `shopbot web` with the embedded model.

    PYTHONPATH=$PWD .venv/bin/python bench/web_first_text.py     # ~1 min on 2 cores; run alone

Starts `shopbot web` as its own process (the real command: its event loop, its model thread) with the shipped
config except a fresh database and chat.free_chat = "on": with no shop knowledge the model then writes, and
streams, every reply. One visitor in the distribution's headless Chromium sends MESSAGES one after another in
one conversation, after one warm-up message of another visitor (shown, not counted: the first reply after
start pays one-off costs). The page's own clock times the form's submit to the first reply text on screen and
to the finished reply. Chromium runs on the same cores as the model, as it would not for a real visitor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testkit.browser import TIMING, chromium  # noqa: E402
from testkit import free_port  # noqa: E402
from testkit.web_helpers import SECRET  # noqa: E402

MESSAGES = [
    ("en complaint", "My order arrived broken and nobody answers my emails!"),
    ("en question", "Do you ship to Canada, and how long does delivery take?"),
    ("zh complaint", "我的订单已经三天了还没发货，太让人失望了！"),
    ("zh question", "请问你们的茶壶可以退货吗？"),
    ("en thanks", "Thanks, that helps a lot."),
]
WARM_UP = ("warm-up", "Hello, are you there?")
REPLY_TIMEOUT_MS = 120_000  # far above a 96-token reply at ~35 tokens/s; a hang shows the page and the log
START_TIMEOUT_SECONDS = 180.0  # loading the model


def bench_config(folder: Path) -> Path:
    """The shipped config.toml with a fresh database and free chat; the repo's model cache."""
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    for old, new in [('path = "data/shopbot.db"', f'path = "{folder / "web.db"}"'),
                     ('cache_dir = "data/models"', f'cache_dir = "{REPO / "data" / "models"}"'),
                     ('free_chat = "auto"', 'free_chat = "on"')]:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "web.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"shopbot web exited ({server.returncode}):\n{log.read_text()[-3000:]}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"shopbot web did not answer within {START_TIMEOUT_SECONDS:.0f} s:\n{log.read_text()[-3000:]}")


async def send(page, text: str, log: Path) -> tuple[float, float, str]:
    """(ms to the first reply text on screen, ms to the finished reply, the reply shown) for one message."""
    box = page.locator("#message")
    await box.fill(text)
    await box.press("Enter")
    try:  # finished, or the page's status line says what went wrong
        await page.wait_for_function("() => window.__timing.at(-1).done !== null"
                                     " || document.getElementById('status').textContent", timeout=REPLY_TIMEOUT_MS)
    except Exception:
        shown = await page.locator("#log").inner_text()
        raise RuntimeError(f"no reply to {text!r}; the page shows:\n{shown}\nserver log:\n{log.read_text()[-3000:]}")
    status = await page.locator("#status").text_content()
    if status:
        raise RuntimeError(f"{text!r}: the page says {status!r}; server log:\n{log.read_text()[-3000:]}")
    run = await page.evaluate("window.__timing.at(-1)")
    reply = await page.locator(".msg.bot").last.locator("p").text_content()
    return run["first"] - run["sent"], run["done"] - run["sent"], reply


async def visitor(browser, url: str):
    """A new visitor's page, with the timing script installed, showing its greeting."""
    context = await browser.new_context()
    await context.add_init_script(TIMING)
    page = await context.new_page()
    await page.goto(url)
    await page.locator(".msg.note").wait_for()
    return context, page


def row(name: str, first: float, done: float, reply: str) -> str:
    shown = reply.replace("\n", " ")
    return f"  {name:13s} {first:8.0f} {done:9.0f}   {shown[:60]}{'…' if len(shown) > 60 else ''}"


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port, log = free_port(), folder / "web.log"
        url = f"http://127.0.0.1:{port}/"
        env = {k: v for k, v in os.environ.items() if k != "TELEGRAM_BOT_TOKEN"} | {"SHOPBOT_WEB_SECRET": SECRET}
        with log.open("wb") as out:
            server = subprocess.Popen([sys.executable, "-m", "bot.cli", "web", "--config", str(bench_config(folder)),
                                       "--listen", f"127.0.0.1:{port}"], cwd=REPO, env=env, stdout=out,
                                      stderr=subprocess.STDOUT)
        try:
            await until_serving(url, server, log)
            async with chromium() as browser:
                context, page = await visitor(browser, url)
                warm = await send(page, WARM_UP[1], log)
                await context.close()
                context, page = await visitor(browser, url)
                results = [(name, *await send(page, text, log)) for name, text in MESSAGES]
                await context.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"shopbot web, embedded model, free chat, headless Chromium; one visitor, {len(MESSAGES)} messages "
          "in one conversation (ms from pressing send, in the page's clock):")
    print(f"  {'message':13s} {'first text':>8s} {'finished':>9s}   reply shown")
    print(row(WARM_UP[0], *warm))
    for name, first, done, reply in results:
        print(row(name, first, done, reply))
    for label, values in (("first text", [r[1] for r in results]), ("finished", [r[2] for r in results])):
        print(f"  {label:13s} median {statistics.median(values):6.0f} ms   max {max(values):6.0f} ms")
    return 0


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    sys.exit(asyncio.run(main()))
