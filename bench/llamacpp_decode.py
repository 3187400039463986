"""Decode speed of shopbot's engine against llama.cpp on the same GGUF and the same prompt, one run, one after the other.

    python3 -m venv ../llamacpp-venv && ../llamacpp-venv/bin/pip install llama-cpp-python   # ~8 min: builds llama.cpp
    .venv/bin/python bench/llamacpp_decode.py --llama-python ../llamacpp-venv/bin/python   # ~1 min, run alone

llama-cpp-python is never a dependency of the bot: it lives in its own venv, used only here. Both sides: the
embedded SmolLM2-135M-Instruct (shopbot: the GGUF converted to fp32; llama.cpp: the Q4_1 GGUF as shipped),
2 threads, greedy, the bench's chat prompt (6 turns + a 20-token message), 64 new tokens, median of 3;
shopbot once as loaded (fp32) and once with model.quantize = "int8".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.first_text import HISTORY, MESSAGE  # noqa: E402

NEW_TOKENS, RUNS = 64, 3

LLAMA = """
import json, sys, time
from llama_cpp import Llama
path, prompt, new, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
llm = Llama(model_path=path, n_threads=2, n_ctx=2048, verbose=False)
rows = []
for _ in range(runs):
    llm.reset()
    start = time.perf_counter(); first = None; n = 0
    for _chunk in llm.create_completion(prompt, max_tokens=new, temperature=0.0, stream=True):
        n += 1
        first = first or time.perf_counter()
    end = time.perf_counter()
    rows.append({"first": first - start, "decode_tps": (n - 1) / (end - first), "tokens": n})
print(json.dumps(rows))
"""


def decode_runs(engine, prompt_messages) -> list[dict]:
    """Greedy decode of NEW_TOKENS on the prompt, RUNS times: first token s and decode tokens/s of each run."""
    import torch
    from transformers import TextStreamer

    tok, model = engine.tokenizer, engine.model
    ids = tok.apply_chat_template(prompt_messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)

    class Clock(TextStreamer):
        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    rows = []
    for _ in range(RUNS):
        clock = Clock(tok)
        clock.times = []
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                                 streamer=clock)
        end = time.perf_counter()
        n = out.shape[1] - ids["input_ids"].shape[1]
        first = clock.times[1]  # put() is called with the prompt first, then each new token
        rows.append({"first": first - start, "decode_tps": (n - 1) / (end - first), "tokens": n})
    return rows


def ours(prompt_messages, quantize: str = "none") -> list[dict]:
    """decode_runs on shopbot's engine as configured, 2 threads, quantized or not."""
    from dataclasses import replace

    from bot.config import load_config
    from bot.llm.engine import Engine

    config = load_config()
    engine = Engine.load(replace(config, model=replace(config.model, threads=2, quantize=quantize)))
    try:
        return decode_runs(engine, prompt_messages)
    finally:
        engine.close()


def llama_runs(llama_python: str, prompt_messages) -> list[dict]:
    """The same runs with llama.cpp on the embedded GGUF, in the venv of `llama_python`."""
    from transformers import AutoTokenizer

    from bot.config import load_config
    from bot.llm.loading import checkpoint_for, embedded_gguf

    tok = AutoTokenizer.from_pretrained(checkpoint_for(load_config().model))
    prompt = tok.apply_chat_template(prompt_messages, add_generation_prompt=True, tokenize=False)
    out = subprocess.run([llama_python, "-c", LLAMA, str(embedded_gguf()), prompt, str(NEW_TOKENS), str(RUNS)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def bench_messages() -> list[dict[str, str]]:
    """The chat prompt both engines decode from: the shop system prompt, 6 turns, a 20-token message."""
    from bot.config import load_config
    from bot.llm.prompts import chat_messages

    return chat_messages(load_config().chat.system_prompt, HISTORY, MESSAGE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-python", required=True, help="python of a venv with llama-cpp-python")
    args = parser.parse_args()
    messages = bench_messages()
    shop, shop_int8, llama = ours(messages), ours(messages, "int8"), llama_runs(args.llama_python, messages)
    print("| engine | first token s | decode tokens/s |\n|---|---|---|")
    for name, rows in (("shopbot (transformers, fp32)", shop), ("shopbot, model.quantize = int8", shop_int8),
                       ("llama.cpp (Q4_1 GGUF)", llama)):
        print(f"| {name} | {statistics.median(r['first'] for r in rows):.2f} | "
              f"{statistics.median(r['decode_tps'] for r in rows):.1f} |")
    llama_tps = statistics.median(r["decode_tps"] for r in llama)
    for name, rows in (("fp32", shop), ("int8", shop_int8)):
        print(f"decode ratio shopbot {name} / llama.cpp: {statistics.median(r['decode_tps'] for r in rows) / llama_tps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
