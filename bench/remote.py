"""The 8-customer load scenario (bench/load.py) with the model in the bot's process and on a llama.cpp server on the
same machine, one after the other in one run: replies per minute, p50/p95 time to reply, the bot's peak RSS.

    .venv/bin/python bench/remote.py   # about 3 minutes; run it alone (never beside another model process)

Both runs: the embedded SmolLM2-135M-Instruct, 8 customers x 4 messages sent at once, 96 new tokens at most, the
shipped config with chat.free_chat = "on" (its "auto" is off for the 135M model, so no reply would be the model's; and
a server that does not tell its model's size would turn it on). Local: shopbot's int4 engine (bot/llm/engine.py),
batches of model.batch_size. Remote: llama.cpp (xllamacpp, the Q4_1 GGUF as shipped, 2 threads, 8 slots, in a process
of its own) behind backend = "openai" with max_concurrency 8. A third run SIGKILLs that server process KILL_AFTER
seconds in and starts it again on the same port DOWN_FOR seconds later: nothing may be lost, duplicated or reordered
(customers writing meanwhile get the fallback reply; their messages stay stored).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from testkit.llama_server import LlamaServer  # noqa: E402

# Every reply written by the model; a message still unanswered after --timeout counts as lost (the run goes on).
SCENARIO = ["--customers", "8", "--messages", "4", "--free-chat", "on", "--timeout", "240"]
SLOTS = 8  # the server's parallel slots and the bot's max_concurrency: one per customer
KILL_AFTER, DOWN_FOR = 10.0, 5.0
NUMBERS = {"p50": r"p50 ([\d.]+) s", "p95": r"p95 ([\d.]+) s", "per_minute": r"throughput:\s+([\d.]+)",
           "rss": r"peak RSS:\s+(\d+) MB", "lost": r"lost:\s+(\d+)", "duplicated": r"duplicated:\s+(\d+)",
           "out_of_order": r"out of order:\s+(\d+)", "fallback": r"fallback replies:\s+(\d+)"}


def load_run(*extra: str, meanwhile: Callable[[], None] = lambda: None) -> dict:
    """bench/load.py in a fresh process (so its peak RSS is the bot's alone), `meanwhile` run as it starts; its
    printed numbers."""
    process = subprocess.Popen([sys.executable, str(REPO / "bench" / "load.py"), *SCENARIO, *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    meanwhile()
    stdout, stderr = process.communicate()
    print(stdout, file=sys.stderr)
    found = {name: re.search(pattern, stdout) for name, pattern in NUMBERS.items()}
    if not all(found.values()):  # it crashed; exit code 1 alone means something was lost, which the table shows
        raise SystemExit(f"bench/load.py {' '.join(extra)} failed:\n{stdout}\n{stderr[-2000:]}")
    return {name: float(match.group(1)) for name, match in found.items()}


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def main() -> int:
    local = load_run()
    with LlamaServer(parallel=SLOTS, threads=2) as server:
        remote_args = ("--base-url", server.url, "--max-concurrency", str(SLOTS))
        remote = load_run(*remote_args)
        server_rss = peak_rss_mb(server.process.pid)

        def kill_and_restart() -> None:
            time.sleep(KILL_AFTER)
            server.kill()
            time.sleep(DOWN_FOR)
            server.start()

        restarted = load_run(*remote_args, meanwhile=kill_and_restart)
    print(f"command: .venv/bin/python bench/remote.py   (bench/load.py {' '.join(SCENARIO)}, 96 new tokens max)")
    print("| model runs | replies/min | p50 s | p95 s | bot peak RSS MB | fallback replies "
          "| lost / duplicated / reordered |")
    print("|---|---|---|---|---|---|---|")
    for name, row in (("in the bot (shopbot's int4 engine, batches of 8)", local),
                      (f"llama.cpp server, {SLOTS} slots (server peak RSS {server_rss:.0f} MB)", remote),
                      (f"the same, server killed at {KILL_AFTER:.0f} s and back {DOWN_FOR:.0f} s later", restarted)):
        print(f"| {name} | {row['per_minute']:.1f} | {row['p50']:.1f} | {row['p95']:.1f} | {row['rss']:.0f} | "
              f"{row['fallback']:.0f} | {row['lost']:.0f} / {row['duplicated']:.0f} / {row['out_of_order']:.0f} |")
    print(f"remote / local replies per minute: {remote['per_minute'] / local['per_minute']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
