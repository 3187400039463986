"""The README's "Choosing a model" table: the embedded SmolLM2-135M against the 0.5B stand-in, in one run.

    .venv/bin/python bench/choose_model.py [--models embedded,qwen]   # ~25 min on 2 cores, run alone

Each model is measured in a process of its own (so its RAM is its alone), one after the other, with the repo's
config.toml and only model.source changed (qwen: bench/qwen_gguf.py's Q4_K_M GGUF, fetched and checked once):
- load: seconds and peak RSS of Engine.load_to_serve; a model without a sentiment head has one fitted first (timed);
- sentiment: macro-F1 of the configured method on bench/devsets/customer_messages_{en,zh}.csv (the dev sets) and on
  the held-out sets (en_b + en_c, zh_b + zh_c + zh_d: never read while tuning);
- knowledge: bench/knowledge_dev.py's figures per language on the dev questions, with the defaults (token_layer
  "fifth", weights lexical 1 / tokens 1 / likelihood 1 / intents 2, first tuned on SmolLM2) and with the retrieval
  measured for the model in this run (token_layer and weights "auto", the cached choice removed first); and with the
  defaults on the held-out questions (shop_questions_k.csv, 24 unknown questions per language);
- decode: one customer's tokens/s (`shopbot bench`'s figure); peak RSS while serving all of the above.
Per-model results go to bench/out/choose_model/<model>.json; the table (markdown) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bot.config import load_config  # noqa: E402

OUT = HERE / "out" / "choose_model"
DEVSETS = HERE / "devsets"
HELD_OUT_MESSAGES = {"en": ("en_b", "en_c"), "zh": ("zh_b", "zh_c", "zh_d")}  # customer_messages_<set>.csv
HELD_OUT_QUESTIONS = DEVSETS / "shop_questions_k.csv"
NAMES = {"embedded": "SmolLM2-135M-Instruct (embedded, Q4_1)", "qwen": "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)"}


def model_config(model: str):
    config = load_config(environ={})
    if model == "qwen":
        from qwen_gguf import qwen_gguf

        config = replace(config, model=replace(config.model, source=str(qwen_gguf())))
    return config


def with_retrieval(config, layer, weights):
    languages = {lang: replace(s, weights=weights) for lang, s in config.knowledge.languages.items()}
    return replace(config, knowledge=replace(config.knowledge, token_layer=layer, languages=languages))


def measure(model: str) -> dict:
    """Every figure of one model's row, in this process."""
    from bot.benchmark import _decode_speeds, peak_rss_mb, reset_peak_rss
    from bot.evaluation import evaluate, read_rows
    from bot.llm.auto_head import ensure_heads
    from bot.llm.engine import Engine
    from bot.retrieval_choice import choose
    from knowledge_dev import read_intents, read_questions, score

    config = model_config(model)
    questions, held_out = (read_questions(path) for path in (DEVSETS / "shop_questions_dev.csv", HELD_OUT_QUESTIONS))
    started = time.perf_counter()
    engine = Engine.load_to_serve(config)
    result = {"model": NAMES[model], "load_s": time.perf_counter() - started, "load_rss_mb": peak_rss_mb(),
              "layers": engine.decoder.shape.layers}
    started = time.perf_counter()
    fitted = ensure_heads(engine)  # what prepare_roles does before serving: a model without heads gets them, once
    result["heads_fitted"] = [path.name for path in fitted]
    result["head_fit_s"] = time.perf_counter() - started if fitted else None
    reset_peak_rss()
    try:
        for lang in ("en", "zh"):
            report = evaluate(engine, read_rows(DEVSETS / f"customer_messages_{lang}.csv"),
                              engine.sentiment_reader.method, progress=False)
            result[f"sentiment_{lang}"] = report["macro_f1"]
            result["sentiment_ms"] = report["ms_per_message"]
            rows = [row for name in HELD_OUT_MESSAGES[lang]
                    for row in read_rows(DEVSETS / f"customer_messages_{name}.csv")]
            report = evaluate(engine, rows, engine.sentiment_reader.method, progress=False)
            result[f"sentiment_{lang}_held_out"] = (report["macro_f1"], len(rows))
        result.update(engine.on_model_thread(_decode_speeds, engine))
        save(model, result)  # each stage as it ends: a run cut short keeps what it measured
        measured = with_retrieval(config, "auto", "auto")
        (config.model.cache_dir / "retrieval" / f"{engine.name}.json").unlink(missing_ok=True)
        started = time.perf_counter()
        chosen = asyncio.run(choose(engine, measured.knowledge))  # what a model's first knowledge import measures
        result["retrieval_measure_s"] = time.perf_counter() - started
        result["retrieval_choice"] = json.loads((config.model.cache_dir / "retrieval" / f"{engine.name}.json")
                                                .read_text(encoding="utf-8"))
        save(model, result)
        intents = asyncio.run(read_intents(engine, questions + held_out))  # as the service reads each message first
        defaults = config.knowledge.languages["en"].weights
        for name, cfg in (("auto", measured), ("constants", config)):
            if name == "constants" and chosen.layer == engine.token_layers[0] and all(
                    w == defaults for w in chosen.weights.values()):
                result["knowledge_constants"] = result["knowledge_auto"]  # the same settings: the same answers
                continue
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                result[f"knowledge_{name}"] = asyncio.run(score(engine, cfg, questions, Path(tmp), intents))
                result[f"knowledge_{name}_s"] = time.perf_counter() - started
            save(model, result)
            result[f"token_layer_{name}"] = engine.token_layer
        with tempfile.TemporaryDirectory() as tmp:
            result["knowledge_held_out"] = asyncio.run(score(engine, config, held_out, Path(tmp), intents))
        save(model, result)
    finally:
        engine.close()
    return result


def save(model: str, result: dict) -> None:
    """The figures so far, with the serving peak RSS so far (VmHWM since the reset after loading)."""
    from bot.benchmark import peak_rss_mb

    result["peak_rss_mb"] = peak_rss_mb()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{model}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))


def knowledge_cell(report: dict, lang: str) -> str:
    r = report[lang]
    return (f"{r['answered_right']}/{r['facts']} right, {r['handed_over']} handed over, {r['answered_wrong']} wrong;"
            f" unknown answered {r['unknown_answered']}/{r['unknown']}")


def table(results: list[dict]) -> str:
    rows = [("sentiment macro-F1, English (customer_messages_en, 90)", lambda r: f"{r['sentiment_en']:.3f}"),
            ("sentiment macro-F1, Chinese (customer_messages_zh, 90)", lambda r: f"{r['sentiment_zh']:.3f}"),
            ("sentiment macro-F1, English held out (en_b + en_c)", lambda r: held_out_cell(r, "en")),
            ("sentiment macro-F1, Chinese held out (zh_b + zh_c + zh_d)", lambda r: held_out_cell(r, "zh")),
            ("sentiment, ms/message (median)", lambda r: f"{r['sentiment_ms']:.0f}"),
            ("knowledge, English: the defaults", lambda r: knowledge_cell(r["knowledge_constants"], "en")),
            ("knowledge, Chinese: the defaults", lambda r: knowledge_cell(r["knowledge_constants"], "zh")),
            ("knowledge, English: measured for the model (\"auto\")", lambda r: knowledge_cell(r["knowledge_auto"], "en")),
            ("knowledge, Chinese: measured for the model (\"auto\")", lambda r: knowledge_cell(r["knowledge_auto"], "zh")),
            ("knowledge, English held out (shop_questions_k): the defaults",
             lambda r: knowledge_cell(r["knowledge_held_out"], "en")),
            ("knowledge, Chinese held out (shop_questions_k): the defaults",
             lambda r: knowledge_cell(r["knowledge_held_out"], "zh")),
            ('"auto" chose (token layer / weights en; zh)', retrieval_cell),
            ("\"auto\": measuring it on the first knowledge (s)", lambda r: f"{r['retrieval_measure_s']:.1f}"),
            ("decode, one customer (tokens/s)", lambda r: f"{r['decode_tok_s']:.1f}"),
            ("load (s)", lambda r: f"{r['load_s']:.1f}"),
            ("first load: heads fitted (s)", heads_cell),
            ("RAM: peak RSS loading / serving (MB)", lambda r: f"{r['load_rss_mb']:.0f} / {r['peak_rss_mb']:.0f}")]
    lines = ["| | " + " | ".join(r["model"] for r in results) + " |", "|---" * (len(results) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(shown(cell, r) for r in results) + " |" for label, cell in rows]
    return "\n".join(lines)


def held_out_cell(r: dict, lang: str) -> str:
    f1, rows = r[f"sentiment_{lang}_held_out"]
    return f"{f1:.3f} ({rows} messages)"


def shown(cell, result: dict) -> str:
    try:
        return cell(result)
    except KeyError:  # a run cut short
        return "not measured"


def heads_cell(r: dict) -> str:
    if r["head_fit_s"] is None:
        return "had them"
    return f"{r['head_fit_s']:.0f} ({', '.join(r.get('heads_fitted', ['sentiment']))})"


def retrieval_cell(r: dict) -> str:
    choice = next(iter(r["retrieval_choice"].values()))

    def w(lang: str) -> str:
        weights = choice["weights"][lang]
        return f"tokens {weights['tokens']:g}, likelihood {weights['likelihood']:g}"

    return f"layer {choice['layer']} of {r['layers']} / {w('en')}; {w('zh')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="embedded,qwen")
    parser.add_argument("--table-only", action="store_true", help="print the table of the last run's figures")
    parser.add_argument("--one", choices=sorted(NAMES), help=argparse.SUPPRESS)  # the per-model child process
    args = parser.parse_args()
    if args.one:
        save(args.one, measure(args.one))
        return 0
    results = []
    for model in args.models.split(","):
        if not args.table_only:
            subprocess.run([sys.executable, __file__, "--one", model], check=True)
        results.append(json.loads((OUT / f"{model}.json").read_text()))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
