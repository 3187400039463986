"""`shopbot analyze`: each comment's sentiment, intent, language and key phrases into rows.csv, in batches,
resumably."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import AsyncIterator, Iterable, Iterator

from tqdm import tqdm

from bot.evals.comments import Comment, Encoding, Skipped, read_comments
from bot.evals.phrases import key_phrases, language
from bot.llm.intents import Reading

ROW_FIELDS = ("ref", "id", "date", "source", "language", "sentiment", "confidence", "intent", "key_phrases", "text")
SKIPPED_FIELDS = ("ref", "reason")
WINDOW = 512  # rows read ahead and sorted by length, so long comments go together into the smaller calls
BATCH_ROWS = 128  # comments per local model call, which reads them in passes of about one token length (README)
BATCH_CHARS = 6144  # long comments make smaller calls: one stays far below model.timeout_seconds
CHARS_PER_TOKEN = 2  # the model reads a comment's first 2 x chat.max_message_tokens characters
STORED_PAGE = 1000  # stored messages fetched per query with --from-db
SHOWN_SKIPS = 10  # skipped rows named on stderr as they happen; all of them are in skipped.csv
MANIFEST = "analyze.json"
# RFC 4180's line end: with it csv quotes a text holding a lone \r too, which a reader would take for a row's end.
ROW_END = "\r\n"


class AnalyzeError(ValueError):
    """The output folder holds another input's rows (or no rows file of ours); the message says what to do."""


@dataclass(frozen=True)
class Refused:
    """A comment the model server would not read (its answer is the reason): skipped and listed, tried again on a
    rerun, while the other comments are read."""

    reason: str


@dataclass
class Run:
    """What one `shopbot analyze` run did, for the closing lines on stderr and the report."""

    out: Path
    analysed: int = 0  # rows read by the model in this run
    resumed: int = 0  # rows found in rows.csv from an earlier run
    skipped: list[Skipped] = field(default_factory=list)


class RowsFile:
    """DIR/rows.csv, appended window by window; refs already in it are not analysed again. DIR/analyze.json names
    the input and how its rows are read: a rerun with another input, or another model or backend, is refused, so
    one report never mixes two readings."""

    def __init__(self, out: Path, source: str, reading: str):
        self.path = out / "rows.csv"
        if out.exists() and not out.is_dir():
            raise AnalyzeError(f"--out {out} is a file, not a folder; pass another --out DIR")
        out.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            earlier = manifest(out)
            if earlier.get("input") != source:
                raise AnalyzeError(f"{self.path} holds the rows of {earlier.get('input') or 'another run'}, not of "
                                   f"{source}; pass another --out DIR, or delete that folder to start over")
            if earlier.get("reading", reading) != reading:  # files of before the reading was recorded: the same
                raise AnalyzeError(f"{self.path} holds rows read by {earlier['reading']}, and this run reads with "
                                   f"{reading}; pass another --out DIR, or delete that folder to start over")
        else:
            (out / MANIFEST).write_text(json.dumps({"input": source, "reading": reading}, ensure_ascii=False)
                                        + "\n", encoding="utf-8")
        self.done = self._resume()

    def _resume(self) -> set[str]:
        """Refs of the complete rows in the file; a row cut short (the process was killed mid-write) is dropped.

        The file is read twice, streaming, and rewritten only when a row was cut: rows.csv may be larger than memory."""
        if not self.path.exists():
            # A BOM, so that spreadsheet programs read the Chinese text as UTF-8.
            with open(self.path, "w", encoding="utf-8-sig", newline="") as f:
                csv.writer(f, lineterminator=ROW_END).writerow(ROW_FIELDS)
            return set()
        done, cut = set(), 0
        for row, whole in self._records():
            if whole:
                done.add(row[0])
            else:
                cut += 1
        if cut:
            print(f"analyze: {self.path}: dropped {cut} row(s) cut short by an earlier stop; they are read again",
                  file=sys.stderr)
            kept = self.path.with_name(self.path.name + ".kept")
            with open(kept, "w", encoding="utf-8-sig", newline="") as f:
                writer = csv.writer(f, lineterminator=ROW_END)
                writer.writerow(ROW_FIELDS)
                writer.writerows(row for row, whole in self._records() if whole)
            kept.replace(self.path)
        return done

    def _records(self) -> Iterator[tuple[list[str], bool]]:
        """Each row after the header and whether it is whole. A row is cut when fields are missing, when the file
        ends inside its quoted text (strict reading fails there), or when it is the last and the file does not end
        with a newline (text is the last field: a cut inside it leaves every field there)."""
        with open(self.path, "rb") as f:
            f.seek(max(f.seek(0, io.SEEK_END) - 1, 0))
            ends_with_newline = f.read(1) == b"\n"
        with open(self.path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
            if header is None or tuple(header) != ROW_FIELDS:
                raise AnalyzeError(f"{self.path} is not a rows file of shopbot analyze; pass another --out DIR")
            last = None  # held back one row: only the end of the file tells whether the last row is whole
            try:
                for row in reader:
                    if last is not None:
                        yield last, len(last) == len(ROW_FIELDS)
                    last = row
            except csv.Error:  # the file ends inside a quoted text: from its row on, one cut row
                if last is not None:
                    yield last, len(last) == len(ROW_FIELDS)
                yield [], False
                return
            if last is not None:
                yield last, len(last) == len(ROW_FIELDS) and ends_with_newline

    def append(self, rows: Iterable[tuple]) -> None:
        """One write and flush per window: an interrupted run leaves whole rows behind."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=ROW_END).writerows(rows)
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(buffer.getvalue())


def manifest(out: Path) -> dict:
    """DIR/analyze.json: {"input": which input was analysed, "reading": how} ({} when there is none)."""
    path = out / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_skipped(out: Path, skipped: list[Skipped]) -> None:
    """DIR/skipped.csv: every row of the input that could not be read, with why (rewritten each run)."""
    with open(out / "skipped.csv", "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator=ROW_END)
        writer.writerow(SKIPPED_FIELDS)
        writer.writerows((s.ref, s.reason) for s in skipped)


class Reader:
    """The model, loaded on the first window that needs it (a rerun with nothing new loads no model). A reader of
    one backend gives `_load()` (blocking, off the event loop) and `_read(texts)`."""

    reading: str  # which model read the labels, and how (kept in analyze.json, shown in the report)
    batch_rows: int  # comments per readings() call; the rows of finished calls are kept when a run stops

    def __init__(self, config):
        self.config, self.model = config, None
        self.max_chars = CHARS_PER_TOKEN * config.chat.max_message_tokens

    async def readings(self, texts: list[str]) -> list[Reading | Refused]:
        """Each text's sentiment and intent (a long text by its first max_chars characters)."""
        if self.model is None:
            self.model = await asyncio.to_thread(self._load)
        return await self._read([text[:self.max_chars] for text in texts])

    def close(self) -> None:
        if self.model is not None:
            self.model.close()


class LocalReader(Reader):
    """The engine in this process: batched forward passes up to the heads' layer, both heads on one pass."""

    batch_rows = BATCH_ROWS

    def __init__(self, config):
        super().__init__(config)
        model = "the embedded model" if config.model.source == "embedded" else Path(config.model.source).name
        self.reading = f"{model} in shopbot's engine (sentiment: {config.sentiment.method})"

    def _load(self):
        from bot.evaluation import load_engine  # the local engine, with its sentiment and intent heads ready

        engine = load_engine(self.config)
        engine.decoder.keep_unpacked()
        return engine

    async def _read(self, texts: list[str]) -> list[Reading]:
        return await self.model.run(self.model.sentiment_reader.read_messages, texts)


class ServerReader(Reader):
    """[model] backend = "openai": one sentiment request per comment, up to model.max_concurrency in flight (the
    server batches them); intents by keywords, as the bot reads them on a server."""

    def __init__(self, config):
        super().__init__(config)
        # A call is only how often progress shows and rows are kept: a few requests a slot keep every slot busy
        # until the call's last ones.
        self.batch_rows = 4 * config.model.max_concurrency
        how = {"generate": "a constrained choice",
               "logits": "label probabilities (a constrained choice where the server gives none)",
               "head": "a head on its embeddings where it gives them (llama.cpp), else label probabilities"}[
            config.sentiment.method]
        self.reading = f"the model server at {config.model.base_url} (sentiment from {how}, intents from keywords)"

    def _load(self):
        from bot.llm.backends.openai import RemoteEngine

        engine = RemoteEngine.load(self.config)
        engine.prepare_roles()  # the sentiment head on the server's embeddings: fitted on a first start, else loaded
        return engine

    async def _read(self, texts: list[str]) -> list[Reading | Refused]:
        from bot.llm.backends import ModelRefused

        async def read(text: str) -> Reading | Refused:
            try:
                return await self.model.read_message(text)
            except ModelRefused as exc:
                return Refused(str(exc))

        tasks = [asyncio.ensure_future(read(text)) for text in texts]
        try:
            return list(await asyncio.gather(*tasks))
        finally:  # one request failed (the server is down): the rest are not waited for
            for task in tasks:
                task.cancel()


def reader_for(config) -> Reader:
    """The reader of the configured backend."""
    return ServerReader(config) if config.model.backend == "openai" else LocalReader(config)


async def analyse(reader: Reader, comments: AsyncIterator[Comment | Skipped], out: Path, input_name: str,
                  total: int | None, source: str) -> Run:
    """Stream the comments through the model window by window into DIR/rows.csv; skip refs already there.
    `input_name` names the input in messages; `source` tells it from any other (comments.file_source)."""
    rows = RowsFile(out, source, reader.reading)
    run = Run(out, resumed=len(rows.done))
    window: list[Comment] = []
    remaining = None if total is None else max(total - len(rows.done), 0)
    with tqdm(total=remaining, unit="rows", desc="analyze", file=sys.stderr, dynamic_ncols=True,
              mininterval=1.0 if sys.stderr.isatty() else 30.0, smoothing=0.1) as bar:
        async for item in comments:
            if isinstance(item, Skipped):
                _skip(item, run, bar, input_name)
                bar.update(1)
            elif item.ref not in rows.done:
                window.append(item)
                if len(window) == WINDOW:
                    await _read_window(reader, window, rows, run, bar, input_name)
                    window = []
        if window:
            await _read_window(reader, window, rows, run, bar, input_name)
    write_skipped(out, run.skipped)
    return run


def _skip(item: Skipped, run: Run, bar: tqdm, input_name: str) -> None:
    run.skipped.append(item)
    if len(run.skipped) <= SHOWN_SKIPS:
        bar.write(f"analyze: {input_name}: line {item.ref}: skipped, {item.reason}", file=sys.stderr)


async def _read_window(reader: Reader, window: list[Comment], rows: RowsFile, run: Run, bar: tqdm,
                       input_name: str) -> None:
    """Calls of similar length, each text read once; the window's rows are written in input order, also
    when the run is stopped half-way (those read so far)."""
    texts = sorted(dict.fromkeys(c.text for c in window), key=len)  # the same comment twice is read once
    read: dict[str, Reading | Refused] = {}
    try:
        for batch in _batches(texts, reader.batch_rows):
            read.update(zip(batch, await reader.readings(batch)))
            batch_texts = set(batch)
            bar.update(sum(1 for c in window if c.text in batch_texts))
    finally:
        done = [c for c in window if isinstance(read.get(c.text), Reading)]
        rows.append(_row(c, read[c.text]) for c in done)
        run.analysed += len(done)
        for c in window:
            if isinstance(read.get(c.text), Refused):
                _skip(Skipped(c.ref, read[c.text].reason), run, bar, input_name)


def _batches(texts: list[str], rows: int) -> Iterable[list[str]]:
    batch: list[str] = []
    for text in texts:
        if batch and (len(batch) == rows or (len(batch) + 1) * len(text) > BATCH_CHARS):
            yield batch
            batch = []
        batch.append(text)
    if batch:
        yield batch


def _row(comment: Comment, reading: Reading) -> tuple:
    lang, sentiment = language(comment.text), reading.sentiment
    return (comment.ref, comment.id, comment.date, comment.source, lang, sentiment.label, f"{sentiment.confidence:.3f}",
            reading.intent.label, "; ".join(key_phrases(comment.text, lang)), comment.text)


def write_reports(out: Path, title: str) -> None:
    """DIR/report.md and DIR/report.html, counted from DIR/rows.csv (and skipped.csv) alone."""
    from bot.evals.report import markdown, summarise
    from bot.evals.report_html import html

    summary = summarise(out, title, manifest(out).get("reading", ""))
    (out / "report.md").write_text(markdown(summary), encoding="utf-8")
    (out / "report.html").write_text(html(summary), encoding="utf-8")


async def file_comments(path: Path, encoding: Encoding, text_column: str) -> AsyncIterator[Comment | Skipped]:
    for item in read_comments(path, encoding, text_column):
        yield item


async def stored_comments(db, since: float, zone: tzinfo | None = None) -> AsyncIterator[Comment]:
    """Customers' text messages from the shop's database, oldest first, a page at a time; dated in `zone` (None: the
    server's local time)."""
    after = 0
    while page := await db.customer_texts(since, after, STORED_PAGE):
        for m in page:
            if not m["text"].strip():  # stored as sent (the customer got empty_reply): no comment to read
                continue
            when = datetime.fromtimestamp(m["created_at"], zone).isoformat(sep=" ", timespec="seconds")
            yield Comment(f"message:{m['id']}", m["text"], when, m["channel"], str(m["id"]))
        after = page[-1]["id"]
