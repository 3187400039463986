"""Peak RSS with the conversation KV caches full: many customers with long histories, one turn each.

    .venv/bin/python bench/kv_memory.py        # ~30 s, run alone

Each of 16 customers has a ~300-token history; one reply of 16 tokens each fills the caches up to
[chat] kv_cache_tokens (the least recently used are dropped beyond it). Prints the tokens held and the
process's peak RSS, with the caches on and, in a second process, off.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HISTORY = [("customer", "Hello, I ordered a ceramic teapot and two cups last week for my mother's birthday."),
           ("bot", "Thank you for your order! I hope your mother enjoys the teapot. How can I help you today?")] * 4


def child(tokens: int) -> dict:
    from bot.config import load_config
    from bot.llm.engine import Engine

    config = load_config()
    chat = replace(config.chat, kv_cache_tokens=tokens, generation=replace(config.chat.generation, max_new_tokens=16))
    engine = Engine.load(replace(config, chat=chat))
    for customer in range(16):
        engine.generate_reply(HISTORY, f"Customer {customer} here: when will my parcel arrive?", conversation=customer)
    held = sum(len(ids) for ids, _ in engine.caches._caches.values())
    return {"kv_cache_tokens": tokens, "held": held,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]))))
        return 0
    from bot.config import load_config

    print("| kv_cache_tokens | tokens held | peak RSS MB |\n|---|---|---|")
    for tokens in (load_config().chat.kv_cache_tokens, 0):
        out = subprocess.run([sys.executable, __file__, "--child", str(tokens)], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['kv_cache_tokens']} | {r['held']} | {r['peak_rss_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
