"""Which layer's token vectors and which signal weights retrieval uses with the loaded model: the configured ones
(by default a fifth of the depth and weights 1/1/1/2), or, where configured "auto", measured once per model on a
shipped calibration shop (bot/retrieval_set: another shop than any the figures are checked on), cached beside the
converted model. An opt-in: on the dev questions it did not beat the defaults on either model (README)."""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bot.concepts import intents
from bot.config import KnowledgeSettings, SignalWeights
from bot.ranking import Language, candidates, first_scores, verdict
from storage.db import KnowledgeEntry

log = logging.getLogger(__name__)

SET_DIR = Path(__file__).parent / "retrieval_set"  # faq.csv, questions.csv; SOURCE.md
# (tokens, likelihood) tried: how the model's two signals share a total of 2. The total stays, so scores keep the
# scale sure_margin is set in (more weight overall would only make every match look surer); shared words 1 and
# intents 2 need no model.
MODEL_MIXES = ((0.0, 2.0), (0.5, 1.5), (1.0, 1.0), (1.5, 0.5), (2.0, 0.0))
DEFAULT = SignalWeights(lexical=1.0, tokens=1.0, likelihood=1.0, intents=2.0)  # first tuned on SmolLM2-135M
MIN_GAIN = 2  # questions (merit) another layer or weights must win by: one question is noise on this set
MEASURE = 3  # bump when the set or the measure changes: cached choices are measured again


@dataclass(frozen=True)
class Tally:
    """How one layer and weights do on a language's calibration questions."""

    right: int  # a sure match on the right entry: answered, no person needed
    wrong: int  # a sure match on another entry
    unknown_answered: int  # a question no entry answers, matched surely
    top: int  # the right entry ranked first, sure or not
    facts: int
    unknowns: int

    def merit(self) -> tuple[int, int]:
        """Higher is better: a false answer costs two right ones; then the right entry ranked first."""
        return self.right - 2 * (self.wrong + self.unknown_answered), self.top

    def __str__(self) -> str:
        return (f"sure & right {self.right}/{self.facts}, sure & wrong {self.wrong}, "
                f"unknown answered {self.unknown_answered}/{self.unknowns}")


@dataclass(frozen=True)
class RetrievalChoice:
    layer: int | None  # the token vectors' layer; None: the backend's vectors have none (a server's embedding)
    weights: dict[str, SignalWeights]  # measured, per language whose weights are "auto"; others: SignalWeights()


@dataclass(frozen=True)
class _Question:
    text: str
    entry: str  # "" when no entry answers it
    asks: frozenset[str]
    vectors: list[np.ndarray]  # per candidate layer (content tokens, hidden)
    likelihood: np.ndarray  # (entries,)


async def choose(engine, settings: KnowledgeSettings) -> RetrievalChoice:
    """The layer and weights for this model, measured on first use and cached when configured "auto"; sets the
    engine's token layer."""
    auto = {lang for lang, s in settings.languages.items() if s.weights == "auto"}
    if not engine.token_layers:
        return RetrievalChoice(None, {})
    configured = {"auto": None, "fifth": engine.token_layers[0]}.get(settings.token_layer, settings.token_layer)
    if configured is not None:
        engine.use_token_layer(configured)  # checked against the model's depth here
        if not auto:
            return RetrievalChoice(configured, {})
    path = Path(engine.config.model.cache_dir) / "retrieval" / f"{engine.name}.json"
    key = (f"measure {MEASURE}, layer {configured or 'auto'}, sure_margin {settings.sure_margin}, "
           f"candidates {settings.candidates}")
    cached = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if key not in cached:
        started = time.perf_counter()
        cached[key] = await _measure(engine, settings, (configured,) if configured else engine.token_layers)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(cached, ensure_ascii=False, indent=1), encoding="utf-8")
        partial.replace(path)  # atomic: a crash never leaves half a file
        log.info("retrieval for %s measured in %.1f s on %s, cached in %s", engine.name,
                 time.perf_counter() - started, SET_DIR, path)
    choice = cached[key]
    engine.use_token_layer(choice["layer"])
    log.info("retrieval for %s: token layer %d of %s; %s", engine.name, choice["layer"], choice["tried"], "; ".join(
        f"{lang}: weights {w}, {choice['tally'][lang]}" for lang, w in choice["weights"].items()))
    return RetrievalChoice(choice["layer"], {lang: SignalWeights(**w) for lang, w in choice["weights"].items()
                                             if lang in auto})


async def _measure(engine, settings: KnowledgeSettings, layers: tuple[int, ...]) -> dict:
    """Every candidate layer and weights on the calibration questions of each language. A layer or a language's
    weights other than the first ones (layers[0], DEFAULT) must beat them by MIN_GAIN: the set is small, and a
    model is not moved off the values that served it for noise."""
    entries, questions = _calibration_set()
    grid = [SignalWeights(lexical=1.0, tokens=t, likelihood=li, intents=2.0) for t, li in MODEL_MIXES]
    picked: dict[int, dict[str, tuple[Tally, SignalWeights]]] = {layer: {} for layer in layers}
    for lang in sorted({e.lang for e in entries}):
        mine = [e for e in entries if e.lang == lang]
        pairs = [(e.question, e.answer) for e in mine]
        vectors = await engine.layer_vectors([f"{e.question} {e.answer}" for e in mine], layers)
        rows = [(text, entry) for q_lang, text, entry in questions if q_lang == lang]
        texts = [text for text, _ in rows]
        # (questions, entries), one model call per entry: each stays well under model.timeout_seconds (all of a
        # language's entries in one call took over 60 s on a 0.5B model, whose vocabulary is 150k tokens)
        likelihood = np.hstack([await engine.likelihood_table([pair], texts) for pair in pairs])
        asked = [_Question(text, entry, intents(text), v, li)
                 for (text, entry), v, li in zip(rows, await engine.layer_vectors(texts, layers), likelihood)]
        for i, layer in enumerate(layers):
            known = Language(mine, [v[i] for v in vectors])
            tallies = [(_tally(known, asked, i, w, settings), w) for w in grid]
            default = next(t for t in tallies if t[1] == DEFAULT)
            best = max(tallies, key=lambda t: (t[0].merit(), -abs(t[1].tokens - 1) - abs(t[1].likelihood - 1)))
            picked[layer][lang] = best if best[0].merit()[0] >= default[0].merit()[0] + MIN_GAIN else default

    def merit(layer: int) -> tuple:
        return tuple(map(sum, zip(*(t.merit() for t, _ in picked[layer].values()))))

    layer = max(layers, key=merit)
    if merit(layer)[0] < merit(layers[0])[0] + MIN_GAIN:
        layer = layers[0]
    return {"layer": layer, "tried": list(layers),
            "weights": {lang: asdict(w) for lang, (_, w) in picked[layer].items()},
            "tally": {lang: str(t) for lang, (t, _) in picked[layer].items()},
            "by_layer": {str(n): {lang: f"{t} with tokens {w.tokens:g}, likelihood {w.likelihood:g}"
                                  for lang, (t, w) in picked[n].items()} for n in layers}}


def _tally(known: Language, asked: list[_Question], layer: int, w: SignalWeights,
           settings: KnowledgeSettings) -> Tally:
    """The questions answered as Knowledge.find would, with the layer at index `layer` and weights `w`."""
    right = wrong = unknown_answered = top = 0
    for q in asked:
        first = first_scores(known, q.text, q.asks, q.vectors[layer], w)
        best_first = candidates(first, settings.candidates)
        likelihood = q.likelihood[best_first] if w.likelihood else None
        best, sure = verdict(known, q.text, q.asks, first, best_first, w.likelihood, likelihood, settings.sure_margin)
        got = known.entries[best].entry_id
        top += got == q.entry
        right += sure and got == q.entry
        wrong += sure and bool(q.entry) and got != q.entry
        unknown_answered += sure and not q.entry
    facts = sum(1 for q in asked if q.entry)
    return Tally(right, wrong, unknown_answered, top, facts, len(asked) - facts)


def _calibration_set() -> tuple[list[KnowledgeEntry], list[tuple[str, str, str]]]:
    """The shipped calibration shop: its entries, and (lang, question, entry id or "") rows."""
    with open(SET_DIR / "faq.csv", encoding="utf-8", newline="") as f:
        entries = [KnowledgeEntry(r["id"], r["lang"], r["question"], r["answer"]) for r in csv.DictReader(f)]
    with open(SET_DIR / "questions.csv", encoding="utf-8", newline="") as f:
        questions = [(r["lang"], r["question"], r["entry"]) for r in csv.DictReader(f)]
    return entries, questions
