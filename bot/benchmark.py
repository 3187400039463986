"""`shopbot bench`: the configured model's speed and memory on this machine, as a shop owner would meet them."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bot.config import Config
from bot.llm.engine import Engine
from bot.llm.slots import InSlots, Row

PROMPT = [{"role": "system", "content": "You are a helpful shop assistant."},
          {"role": "user", "content": "My teapot arrived broken. What should I do? Please explain the return "
                                      "process in detail."}]
DECODE_TOKENS = 64
BATCH_ROWS, BATCH_STEPS, BATCH_CONTEXT = 8, 32, 100
SENTIMENT_MESSAGES = ["My order arrived broken and nobody answers!", "Thank you, the tea is lovely.",
                      "Where is my parcel? It has been two weeks.", "我的快递三天了还没到，太慢了"]
# The first-text scenario (README, "Speed"): a 20-token message after 6 stored turns, sentiment included.
HISTORY = [("customer", "Hi, I ordered a teapot last week."), ("bot", "Thank you for your order! How can I help?"),
           ("customer", "It has not arrived yet."), ("bot", "I am sorry to hear that. Do you have the order number?"),
           ("customer", "Yes, it is 48213."), ("bot", "Thank you. Let me check the delivery status for you.")]
MESSAGE = "Could you please tell me when my blue teapot will finally be delivered to my home address?"
RUNS = 3


def peak_rss_mb() -> float:
    """Peak RSS since the process started or `reset_peak_rss()`, in MB."""
    status = Path("/proc/self/status")
    if status.is_file():  # Linux: VmHWM, which reset_peak_rss() restarts
        return next(int(line.split()[1]) for line in status.read_text().splitlines()
                    if line.startswith("VmHWM:")) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # macOS: bytes, since the start


def reset_peak_rss() -> None:
    """Start a new peak from the current RSS (Linux), so serving is measured apart from loading."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


@torch.inference_mode()
def _decode_speeds(engine: Engine) -> dict[str, float]:
    """Prefill and decode tokens/s for one row (greedy, stop tokens ignored, like llama-bench), and the
    aggregate decode tokens/s of BATCH_ROWS rows at BATCH_CONTEXT tokens of context each."""
    decoder, slots = engine.decoder, engine.caches
    ids = engine.tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_dict=True)["input_ids"]
    prefill, decode = [], []
    for _ in range(RUNS):
        row = Row(slot=0, held=0)
        started = time.perf_counter()
        hidden, _ = decoder.forward(torch.tensor([ids]), torch.arange(len(ids))[None], InSlots(slots, [row]))
        token = int(decoder.logits(hidden[:, -1]).argmax())
        prefill.append(time.perf_counter() - started)
        row.held = len(ids)
        started = time.perf_counter()
        for _ in range(DECODE_TOKENS):
            hidden, _ = decoder.forward(torch.tensor([[token]]), torch.tensor([[row.held]]), InSlots(slots, [row]))
            row.held += 1
            token = int(decoder.logits(hidden[:, -1]).argmax())
        decode.append(time.perf_counter() - started)
    rows = [Row(slot=i % slots.count, held=BATCH_CONTEXT) for i in range(min(BATCH_ROWS, slots.count))]
    tokens = torch.full((len(rows), 1), ids[-1])
    started = time.perf_counter()
    for _ in range(BATCH_STEPS):
        hidden, _ = decoder.forward(tokens, torch.tensor([[r.held] for r in rows]), InSlots(slots, rows))
        for r in rows:
            r.held += 1
        tokens = decoder.logits(hidden[:, -1]).argmax(-1, keepdim=True)
    batch = time.perf_counter() - started
    return {"prefill_tok_s": len(ids) / statistics.median(prefill),
            "decode_tok_s": DECODE_TOKENS / statistics.median(decode),
            "batch8_tok_s": len(rows) * BATCH_STEPS / batch}


def _sentiment_ms(engine: Engine) -> float:
    reader = engine.sentiment_reader
    reader.read(SENTIMENT_MESSAGES[0])  # builds the prompt's cached prefix
    started = time.perf_counter()
    for text in SENTIMENT_MESSAGES * RUNS:
        reader.read(text)
    return (time.perf_counter() - started) / (len(SENTIMENT_MESSAGES) * RUNS) * 1000


async def _first_text_s(engine: Engine, config: Config) -> float:
    """Median seconds from a customer's message to the first reply text they see (streamed)."""
    from bot.service import ConversationService, Sender
    from storage.db import Database

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.db")
        service = ConversationService(db, engine, config)
        try:
            for run in range(RUNS):
                sender = Sender("bench", str(run))
                customer = await service.customer(sender)
                for role, text in HISTORY:
                    await db.add_message(customer.id, role, text)
                first: list[float] = []
                started = time.perf_counter()
                await service.handle_text(sender, MESSAGE, on_partial=lambda _: first or first.append(
                    time.perf_counter()))
                times.append((first[0] if first else time.perf_counter()) - started)
        finally:
            await db.close()
    return statistics.median(times)


def run_bench(config: Config) -> dict[str, float]:
    """Every figure of `shopbot bench`, measured on one engine loaded here."""
    started = time.perf_counter()
    engine = Engine.load_to_serve(config)
    result = {"load_s": time.perf_counter() - started, "weights": config.model.weights,
              "load_rss_mb": peak_rss_mb()}
    reset_peak_rss()
    try:
        result.update(engine.on_model_thread(_decode_speeds, engine))
        result["sentiment_ms"] = engine.on_model_thread(_sentiment_ms, engine)
        result["first_text_s"] = asyncio.run(_first_text_s(engine, config))
    finally:
        engine.close()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


LABELS = {"load_s": ("load", "s"), "prefill_tok_s": ("prefill, one customer", "tokens/s"),
          "decode_tok_s": ("decode, one customer", "tokens/s"),
          "batch8_tok_s": (f"decode, {BATCH_ROWS} customers at once (all rows)", "tokens/s"),
          "sentiment_ms": ("sentiment", "ms/message"), "first_text_s": ("first reply text after 6 turns", "s"),
          "load_rss_mb": ("peak memory while loading (RSS)", "MB"),
          "peak_rss_mb": ("peak memory while serving (RSS)", "MB")}


def table(result: dict) -> str:
    lines = [f"model {result.get('model', '')} weights {result['weights']}", "| | |", "|---|---|"]
    for key, (label, unit) in LABELS.items():
        lines.append(f"| {label} | {result[key]:.2f} {unit} |" if result[key] < 10 else
                     f"| {label} | {result[key]:.0f} {unit} |")
    return "\n".join(lines)
