"""Headless Chromium from the distribution (Playwright drives it; its own browser download can't run offline).

Shared by the browser tests and bench/web_first_text.py."""

from __future__ import annotations

import shutil
from contextlib import asynccontextmanager
from typing import AsyncIterator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]

# Installed before the page's own script: times, in the page's clock, from the moment the visitor sends
# (the form's submit) to the first reply text on screen and to the finished reply.
TIMING = """
window.__timing = [];
document.addEventListener("submit", () => {
  const run = {sent: performance.now(), first: null, done: null};
  window.__timing.push(run);
  const log = document.getElementById("log");
  const seen = new MutationObserver(() => {
    const bubble = log.querySelector(".msg.bot:last-child");
    if (!bubble) return;
    if (run.first === null && bubble.querySelector("p").textContent) run.first = performance.now();
    if (run.done === null && !bubble.classList.contains("writing")) { run.done = performance.now(); seen.disconnect(); }
  });
  seen.observe(log, {subtree: true, childList: true, characterData: true, attributes: true});
}, true);
"""


@asynccontextmanager
async def chromium() -> AsyncIterator[object]:
    """A launched headless Chromium (playwright's Browser)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()
