"""Score a sentiment or intent method on a labelled CSV, and fit a head from one: the runners behind
`shopbot eval/calibrate`."""

from __future__ import annotations

import csv
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from bot.llm.intents import INTENTS

LABELS = ("negative", "neutral", "positive")
TASK_LABELS = {"sentiment": LABELS, "intent": INTENTS}  # what each task's labelled files may hold
INTENT_METHODS = ("head", "keywords")
SEED = 20240611
# calibrate's least rows of each label: the held-out 20% then scores at least 4 of each, and the head (which replaces
# the one in use) is fitted on 16; below that one row moves the held-out macro-F1 by 0.1 or more.
MIN_ROWS_PER_LABEL = 20


class LabelledFileError(ValueError):
    """The labelled CSV is missing or not in the `text,label` shape; the message says which and why."""


@dataclass(frozen=True)
class Row:
    text: str
    label: str


def read_rows(path: str | Path, labels: Iterable[str] | None = None, known: Sequence[str] | None = None) -> list[Row]:
    """Rows of a `text,label` CSV whose labels are all `known` (sentiment LABELS when None), only those whose label
    is in `labels` (all when None)."""
    known = known or LABELS
    keep = set(labels or known)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # Excel writes a BOM
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
                raise LabelledFileError(f"{path}: needs a header with the columns text,label")
            rows = []
            for r in reader:
                if r["text"] is None:  # csv gives None for the fields a short row lacks
                    raise LabelledFileError(f"{path}: line {reader.line_num}: no text (the row has fewer fields than "
                                            "the header)")
                rows.append(Row(r["text"], (r["label"] or "").strip().lower()))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelledFileError(f"{path}: cannot read it as a UTF-8 CSV ({exc.__class__.__name__}: {exc})") from None
    unknown = {r.label for r in rows} - set(known)
    if unknown:
        raise LabelledFileError(f"{path}: unknown labels {sorted(unknown)} (expected {', '.join(known)})")
    if not rows:
        raise LabelledFileError(f"{path}: no rows below the header")
    kept = [r for r in rows if r.label in keep]
    if not kept:
        raise LabelledFileError(f"{path}: no rows labelled {', '.join(sorted(keep))}")
    return kept


def stratified_indices(labels: Sequence[str], n: int | None, seed: int = SEED) -> list[int]:
    """A seeded random sample of n positions keeping each label's share (files may be sorted by label)."""
    if n is None or n >= len(labels):
        return list(range(len(labels)))
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    # Largest-remainder rounding so the quotas add up to exactly n.
    exact = {label: n * len(group) / len(labels) for label, group in by_label.items()}
    quota = {label: int(share) for label, share in exact.items()}
    for label in sorted(exact, key=lambda k: exact[k] - quota[k], reverse=True)[: n - sum(quota.values())]:
        quota[label] += 1
    picked = [i for label in sorted(by_label) for i in rng.sample(by_label[label], quota[label])]
    rng.shuffle(picked)
    return picked


def stratified_sample(rows: Sequence[Row], n: int | None, seed: int = SEED) -> list[Row]:
    return [rows[i] for i in stratified_indices([row.label for row in rows], n, seed)]


def metrics(gold: Sequence[str], predicted: Sequence[str], classes: Sequence[str] | None = None) -> dict:
    """Accuracy, macro-F1 over `classes` (default: every label either side has), per-label precision/recall/F1 and
    the confusion counts. A class without rows counts as F1 0: a reader is not perfect for never meeting one."""
    classes = sorted(classes or set(gold) | set(predicted))
    shown = [*classes, *sorted(set(predicted) - set(classes))]  # a reading outside the classes is a wrong one
    confusion = {g: {p: 0 for p in shown} for g in classes}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    per_label = {}
    for label in classes:
        hit = confusion[label][label]
        said = sum(confusion[g][label] for g in classes)
        support = sum(confusion[label].values())
        precision = hit / said if said else 0.0
        recall = hit / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    n = len(gold)
    return {
        "n": n,
        "accuracy": sum(g == p for g, p in zip(gold, predicted)) / n if n else 0.0,
        "macro_f1": sum(v["f1"] for v in per_label.values()) / len(classes) if classes else 0.0,
        "labels": per_label,
        "confusion": confusion,
        "notes": comparability_notes(per_label),
    }


def comparability_notes(per_label: dict) -> list[str]:
    """What makes this macro-F1 not comparable with another file's: one class only, a scored label with no rows."""
    present = [label for label, v in per_label.items() if v["support"]]
    missing = [label for label, v in per_label.items() if not v["support"]]
    counted = f"{', '.join(missing)} count{'s' if len(missing) == 1 else ''} as F1 0"
    if len(present) == 1:
        return [f"note: every row is {present[0]}: macro-F1 over one class is not comparable with other files'"
                f"{f' ({counted})' if missing else ''}; accuracy is {present[0]}'s recall"]
    if missing:
        return [f"note: no rows are {', '.join(missing)}: macro-F1 counts {'it' if len(missing) == 1 else 'each'} "
                "as F1 0, so it is not comparable with a file that has every label"]
    return []


def scored_labels(task: str, rows: Sequence[Row], labels: Sequence[str] | None = None) -> tuple[str, ...]:
    """The labels a reading is scored over: the task's (or --labels'). A sentiment file (or --labels) without neutral
    asks for a polarity, so both poles only; the poles always, so a one-pole file is not scored as perfect."""
    if task != "sentiment":
        return tuple(labels or TASK_LABELS[task])
    asked = set(labels or (row.label for row in rows))
    return tuple(label for label in LABELS if label != "neutral" or "neutral" in asked)


def decision(sentiment, allowed: set[str]) -> str:
    """The method's label if it is scored (`allowed`: scored_labels), else its best-scored label among those.

    A file (or --labels) without neutral asks for a polarity: a method's "neutral" (unsure) there is replaced by the
    pole it leaned to. Files with neutral rows are scored on the method's own three-way label.
    """
    if sentiment.label in allowed:
        return sentiment.label
    return max((label for label in sentiment.scores if label in allowed), key=sentiment.scores.get)


class Progress:
    """Rows done and speed on stderr: a line redrawn every 2 s on a terminal, else a new line every 30 s."""

    def __init__(self, total: int, what: str):
        self.total, self.what = total, what
        self.started = self.shown = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.every = 2.0 if self.tty else 30.0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.shown < self.every and done < self.total:
            return
        self.shown = now
        rate = (now - self.started) / done * 1000 if done else 0.0
        end = "\r" if self.tty and done < self.total else "\n"
        print(f"{self.what}: {done}/{self.total} ({rate:.0f} ms/row)", end=end, file=sys.stderr, flush=True)


def evaluate(engine, rows: Sequence[Row], method: str, progress: bool = True, task: str = "sentiment",
             labels: Sequence[str] | None = None) -> dict:
    """Run the `task` `method` on the engine over the rows: metrics over scored_labels (`labels`: --labels) plus
    median ms per message (and for sentiment the unsure count).

    Each text is cut to chat.max_message_tokens first, as the service does; the time is the reading call's.
    """
    classes = scored_labels(task, rows, labels)
    allowed = set(classes)
    reader = engine.sentiment_reader
    shown = Progress(len(rows), f"eval {task} {method}") if progress else None
    predicted, millis, unsure = [], [], 0
    for i, row in enumerate(rows, 1):
        text = engine.truncate(row.text, engine.config.chat.max_message_tokens)
        started = time.perf_counter()
        if task == "intent":
            predicted.append(reader.intents([text], method)[0].label)
        else:
            sentiment = reader.read(text, method)
            unsure += sentiment.label == "neutral"
            predicted.append(decision(sentiment, allowed))
        millis.append((time.perf_counter() - started) * 1000)
        if shown:
            shown.update(i)
    report = metrics([row.label for row in rows], predicted, classes)
    report.update(task=task, method=method, ms_per_message=statistics.median(millis) if millis else 0.0)
    if task == "sentiment":
        report["unsure"] = unsure
    return report


def calibrate(engine, rows: Sequence[Row], save_to: Path, l2: float | None = None, held_out: float = 0.2,
              data: str = "", task: str = "sentiment") -> dict:
    """Fit a head on (1 - held_out) of the rows and score it on the rest; then refit on all rows and save it.

    An intent head reads the sentiment head's prompt and layers (when sentiment is read by a head), so one forward
    pass gives both."""
    from bot.llm.head import INTENT_L2

    reader = engine.sentiment_reader
    like = reader.head if task == "intent" and reader.method == "head" else None
    l2 = INTENT_L2 if l2 is None and task == "intent" else l2
    limit = engine.config.chat.max_message_tokens
    features = reader.head_features([engine.truncate(row.text, limit) for row in rows], Progress(len(rows), "features"),
                                    like=like)
    labels = [row.label for row in rows]
    test = sorted(stratified_indices(labels, round(len(rows) * held_out)))
    fit = sorted(set(range(len(rows))) - set(test))
    trial = reader.fit_head(features[fit], [labels[i] for i in fit], l2=l2, like=like)
    score = metrics([labels[i] for i in test], trial.predict(features[test]), sorted(set(labels)))  # the saved head's
    reader.fit_head(features, labels, l2=l2, data=data, like=like).save(save_to)
    return {"path": str(save_to), "n": len(rows), "held_out": score}


def load_engine(config):
    """The engine, with a sentiment head fitted first if the method is "head" and the model has none."""
    from bot.llm.engine import Engine

    engine = Engine.load(config)
    engine.prepare_roles()
    return engine


def run_eval(config, file: str, method: str | None, limit: int | None, labels: list[str] | None,
             seed: int = SEED, task: str = "sentiment") -> dict:
    """`shopbot eval`: load the engine once, score the (sampled) file."""
    rows = stratified_sample(read_rows(file, labels, TASK_LABELS[task]), limit, seed)
    engine = load_engine(config)
    reader = engine.sentiment_reader
    default = reader.method if task == "sentiment" else "head" if reader.intent_head else "keywords"
    try:
        # On the engine's thread, where the model was loaded (see model_thread): from another, twice as slow.
        return {"file": str(file), **engine.on_model_thread(
            lambda: evaluate(engine, rows, method or default, task=task, labels=labels))}
    finally:
        engine.close()


def check_fit_rows(file: str, rows: Sequence[Row], force: bool = False) -> None:
    """Refuse rows a head cannot be fitted on, or (unless forced) too few of a label to fit one worth saving over the
    head in use; before the model loads."""
    counts = Counter(row.label for row in rows)
    if len(counts) < 2:
        raise LabelledFileError(f"{file}: all {len(rows)} rows are {rows[0].label}: a head needs rows of at least two "
                                "labels")
    if not force and min(counts.values()) < MIN_ROWS_PER_LABEL:
        have = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
        raise LabelledFileError(f"{file}: too few rows to fit a head that means anything: {have} (at least "
                                f"{MIN_ROWS_PER_LABEL} of each; --force fits one anyway)")


def run_calibrate(config, file: str, limit: int | None, labels: list[str] | None, seed: int = SEED,
                  l2: float | None = None, out: str | None = None, task: str = "sentiment",
                  force: bool = False) -> dict:
    """`shopbot calibrate`: fit a head on the (sampled) file, save it next to the model cache (or to `out`).

    An intent head is fitted on the file's rows plus the shipped intent rows: a shop's few labelled messages add
    its own words to the nine labels rather than replace them."""
    from bot.llm.head import INTENT_TRAINING_DIR, calibrated_path, training_rows
    from bot.llm.loading import model_slug

    rows = stratified_sample(read_rows(file, labels, TASK_LABELS[task]), limit, seed)
    if task == "sentiment":
        check_fit_rows(file, rows, force)
    data = Path(file).name
    if task == "intent":
        rows += training_rows(INTENT_TRAINING_DIR, INTENTS)
        data += " + shipped intent rows (heads/train/intent)"
        engine = load_engine(config)  # the intent head reads the sentiment head's pass
    else:  # making a sentiment head needs none loaded: load the engine as if the method were "logits"
        engine = load_engine(replace(config, sentiment=replace(config.sentiment, method="logits")))
    save_to = Path(out) if out else calibrated_path(config.model.cache_dir, model_slug(config.model), task)
    try:
        result = engine.on_model_thread(lambda: calibrate(engine, rows, save_to, l2, data=data, task=task))
    finally:
        engine.close()
    if task == "intent":
        return {**result, "notes": []}
    notes = []
    if config.sentiment.head_path and Path(config.sentiment.head_path).resolve() != save_to.resolve():
        notes.append(f"note: sentiment.head_path = {config.sentiment.head_path} is used instead of this head")
    if config.sentiment.method != "head":
        notes.append('note: set sentiment.method = "head" in config.toml to use it')
    return {**result, "notes": notes}


def format_report(report: dict, title: str) -> str:
    """The eval report as plain text: headline numbers, per-label table, confusion matrix."""
    unsure = f"   unsure (neutral) {report['unsure']}" if "unsure" in report else ""
    predicted = list(next(iter(report["confusion"].values()), {}))
    w = max(map(len, [*report["labels"], *predicted, "label"])) + 2  # intent labels are longer than sentiment's
    lines = [
        f"{title}  task={report.get('task', 'sentiment')}  method={report['method']}  n={report['n']}",
        f"accuracy {report['accuracy']:.3f}   macro-F1 {report['macro_f1']:.3f}   "
        f"median {report['ms_per_message']:.0f} ms/message{unsure}",
        "",
        f"{'label':<{w}}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>7}",
    ]
    for label, v in report["labels"].items():
        lines.append(f"{label:<{w}}{v['precision']:>10.3f}{v['recall']:>8.3f}{v['f1']:>7.3f}{v['support']:>7}")
    lines += ["", "confusion (rows: gold, columns: predicted)", f"{'':<{w}}" + "".join(f"{p:>{w}}" for p in predicted)]
    for gold, row in report["confusion"].items():
        lines.append(f"{gold:<{w}}" + "".join(f"{row[p]:>{w}}" for p in predicted))
    return "\n".join([*lines, *([""] + report["notes"] if report["notes"] else [])])
