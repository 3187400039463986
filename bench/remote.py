"""The 8-customer load scenario (bench/load.py) with the model in the bot's process and on a llama.cpp server on the
same machine, one after the other in one run: replies per minute, p50/p95 time to reply, the bot's peak RSS.

    .venv/bin/python bench/remote.py   # about 3 minutes; run it alone (never beside another model process)

Both runs: the embedded SmolLM2-135M-Instruct, 8 customers x 4 messages sent at once, 96 new tokens at most, the
shipped config. Local: the torch engine, batches of model.batch_size. Remote: llama.cpp (xllamacpp, the Q4_1 GGUF as
shipped, 2 threads, 8 slots) behind backend = "openai" with max_concurrency 8.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.llama_server import LlamaServer  # noqa: E402

SCENARIO = ["--customers", "8", "--messages", "4"]
SLOTS = 8  # the server's parallel slots and the bot's max_concurrency: one per customer
NUMBERS = {"p50": r"p50 ([\d.]+) s", "p95": r"p95 ([\d.]+) s", "per_minute": r"throughput:\s+([\d.]+)",
           "rss": r"peak RSS:\s+(\d+) MB", "lost": r"lost:\s+(\d+)", "duplicated": r"duplicated:\s+(\d+)",
           "out_of_order": r"out of order:\s+(\d+)"}


def load_run(*extra: str) -> dict:
    """bench/load.py in a fresh process (so its peak RSS is the bot's alone); its printed numbers."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "load.py"), *SCENARIO, *extra],
                         capture_output=True, text=True, cwd=REPO)
    print(out.stdout, file=sys.stderr)
    if out.returncode:
        raise SystemExit(f"bench/load.py {' '.join(extra)} failed:\n{out.stderr[-2000:]}")
    return {name: float(re.search(pattern, out.stdout).group(1)) for name, pattern in NUMBERS.items()}


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def main() -> int:
    local = load_run()
    with LlamaServer(parallel=SLOTS, threads=2) as server:
        remote = load_run("--base-url", server.url, "--max-concurrency", str(SLOTS))
        server_rss = peak_rss_mb(server.process.pid)
    print(f"command: .venv/bin/python bench/remote.py   (bench/load.py {' '.join(SCENARIO)}, 96 new tokens max)")
    print("| model runs | replies/min | p50 s | p95 s | bot peak RSS MB | lost / duplicated / reordered |")
    print("|---|---|---|---|---|---|")
    for name, row in (("in the bot (torch, batches of 8)", local),
                      (f"llama.cpp server, {SLOTS} slots (server peak RSS {server_rss:.0f} MB)", remote)):
        print(f"| {name} | {row['per_minute']:.1f} | {row['p50']:.1f} | {row['p95']:.1f} | {row['rss']:.0f} | "
              f"{row['lost']:.0f} / {row['duplicated']:.0f} / {row['out_of_order']:.0f} |")
    print(f"remote / local replies per minute: {remote['per_minute'] / local['per_minute']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
