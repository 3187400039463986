"""Comments to analyse, streamed from a CSV, JSON Lines or plain-text file: each row a Comment or a Skipped one."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bot.lexicon import storable

FALLBACK_ENCODING = "gb18030"  # what Chinese spreadsheet tools export when they do not write UTF-8
UNDECODED = re.compile("[\udc80-\udcff]")  # bytes kept by errors="surrogateescape"
CHUNK = 1 << 20


class CommentFileError(ValueError):
    """The file as a whole cannot be read (missing, no text column); the message names the line and the fix."""


@dataclass(frozen=True)
class Comment:
    ref: str  # where it came from: the line it starts on, or "message:ID" for stored customer messages
    text: str
    date: str = ""  # as given; bot.evals.report reads it
    source: str = ""
    id: str = ""


@dataclass(frozen=True)
class Skipped:
    ref: str
    reason: str


@dataclass(frozen=True)
class Encoding:
    """How the file's bytes are decoded, its line count (for the progress bar), what ends a line and what the user
    should know."""

    name: str
    errors: str
    lines: int
    notice: str = ""
    newline: str = "\n"  # "\r" in a file without any "\n" (old Mac line endings)


def sniff_encoding(path: Path) -> Encoding:
    """UTF-16 when the file starts with its byte-order mark (Excel's "Unicode Text"); else UTF-8 if the whole file
    decodes as it; else GB18030 if that does and most lines with non-ASCII bytes are not UTF-8 (a UTF-8 file with a
    stray bad byte often decodes as GB18030 too, as nonsense); else UTF-8 with the bad rows skipped.

    One streaming pass per candidate (a few hundred MB/s), so a bad byte near the end is found before any row."""
    with open(path, "rb") as f:
        if f.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            lines, newline = _count_lines(path, "utf-16")
            return Encoding("utf-16", "strict", lines, newline=newline)
    lines, newline = _count_lines(path)
    utf8_error = _first_error(path, "utf-8")
    if utf8_error is None:
        return Encoding("utf-8-sig", "strict", lines, newline=newline)
    utf8, not_utf8 = _utf8_lines(path)
    if not_utf8 > utf8 and _first_error(path, FALLBACK_ENCODING) is None:
        return Encoding(FALLBACK_ENCODING, "strict", lines,
                        f"{path}: line {utf8_error}: not UTF-8; the file decodes as GB18030, reading it as that",
                        newline)
    return Encoding("utf-8-sig", "surrogateescape", lines,
                    f"{path}: line {utf8_error}: not UTF-8 (nor GB18030); rows with undecodable bytes are skipped",
                    newline)


def _utf8_lines(path: Path) -> tuple[int, int]:
    """How many lines with non-ASCII bytes decode as UTF-8, and how many do not."""
    counts = [0, 0]
    with open(path, "rb") as f:
        for line in f:
            if not line.isascii():
                try:
                    line.decode("utf-8")
                    counts[0] += 1
                except UnicodeDecodeError:
                    counts[1] += 1
    return counts[0], counts[1]


def file_source(path: Path, text_column: str) -> str:
    """What tells this input from any other: the file, its contents (a re-export under the same name is another
    input: its line numbers mean other rows) and the column read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return f"{path.resolve()} (column {text_column!r}, sha256 {digest.hexdigest()[:16]})"


def _first_error(path: Path, encoding: str) -> int | None:
    """The line of the first byte that does not decode, or None when the whole file does."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + chunk[:exc.start].count(b"\n")
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return line
    return None


def _count_lines(path: Path, encoding: str | None = None) -> tuple[int, str]:
    """Lines in the file (for the progress bar) and what ends them: "\n" (or "\r\n"; a "\r" alone is part of a
    comment), or "\r" in a file with no "\n" at all. Bytes are counted unless the encoding's newline is not one byte."""
    if encoding is None:
        f, lf, cr = open(path, "rb"), b"\n", b"\r"
    else:
        f, lf, cr = open(path, encoding=encoding, errors="replace", newline=""), "\n", "\r"
    lines = returns = 0
    last = lf
    with f:
        while chunk := f.read(CHUNK):
            lines += chunk.count(lf)
            returns += chunk.count(cr)
            last = chunk[-1:]
    if not lines and returns:
        return returns + (last != cr), "\r"
    return lines + (last != lf), "\n"


def read_comments(path: Path, encoding: Encoding | None, text_column: str = "text") -> Iterator[Comment | Skipped]:
    """Every row of the file in order. The format follows the extension: .csv/.tsv, .jsonl/.ndjson, else one
    comment per line. Raises CommentFileError before the first row when the text column is missing."""
    if not path.is_file():
        raise CommentFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    # Not universal newlines: they would end a line at a stray "\r" inside a comment.
    with open(path, encoding=encoding.name, errors=encoding.errors, newline=encoding.newline) as f:
        if suffix in (".csv", ".tsv"):
            rows = _csv_rows(f, path, "\t" if suffix == ".tsv" else ",", text_column)
        elif suffix in (".jsonl", ".ndjson"):
            rows = _json_rows(f, path, text_column)
        else:
            rows = ((str(n), {"text": line}) for n, line in enumerate(f, 1))
        for ref, fields in rows:
            if isinstance(fields, str):
                yield Skipped(ref, fields)
                continue
            text = fields["text"].strip()
            if not text and suffix not in (".csv", ".tsv", ".jsonl", ".ndjson"):
                continue  # a blank line between comments, not an empty comment
            if not text:
                yield Skipped(ref, "empty text")
            elif UNDECODED.search("".join(fields.values())):
                yield Skipped(ref, "bytes that are neither UTF-8 nor GB18030")
            else:
                yield Comment(ref, text, fields.get("date", "").strip(), fields.get("source", "").strip(),
                              fields.get("id", "").strip())


def check_readable(path: Path, encoding: Encoding | None, text_column: str) -> None:
    """Raise CommentFileError now, before a model is loaded, when the file is missing or lacks the text column."""
    next(read_comments(path, encoding, text_column), None)


def _csv_rows(f, path: Path, delimiter: str, text_column: str) -> Iterator[tuple[str, dict[str, str] | str]]:
    """(line the row starts on, its fields by our names) or (line, why it cannot be read)."""
    reader = csv.reader(f, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CommentFileError(f"{path}: line 1: {_csv_error(exc)}") from None
    if header is None:
        raise CommentFileError(f"{path}: the file is empty")
    names = [name.strip().lstrip("\ufeff").lower() for name in header]
    wanted = {"text": text_column.lower(), "date": "date", "source": "source", "id": "id"}
    if wanted["text"] not in names:
        raise CommentFileError(
            f"{path}: line 1: no column named {text_column!r} (the header has: {', '.join(header)}); "
            f"name the comments' column {text_column!r}, or pass --text-column NAME")
    where = {ours: names.index(theirs) for ours, theirs in wanted.items() if theirs in names}
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield str(start), _csv_error(exc)
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not row:
            continue  # a blank line
        if len(row) != len(names):
            # A quote never closed makes one row of every line up to the next quote (or the end of the file).
            spans = f"; it runs over lines {line}-{start - 1}: a double quote not closed?" if start - 1 > line else ""
            yield str(line), (f"{len(row)} fields where the header has {len(names)} "
                              f"(a comma or quote inside an unquoted text?){spans}")
            continue
        yield str(line), {ours: row[i] for ours, i in where.items()}


def _csv_error(exc: csv.Error) -> str:
    """Why a row is unreadable, in the user's terms: the csv module's own words are about opening files."""
    if "new-line character seen in unquoted field" in str(exc):
        # Only "\n" ends a line here, and csv ends a record at any "\r" outside quotes.
        return "a carriage return (\\r) in a text not in double quotes; quote the text"
    return f"unreadable CSV ({exc})"


def _json_rows(f, path: Path, text_column: str) -> Iterator[tuple[str, dict[str, str] | str]]:
    seen_text = False
    for n, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield str(n), f"not JSON ({exc.msg}, column {exc.colno})"
            continue
        if not isinstance(value, dict):
            yield str(n), f"a JSON {type(value).__name__}, not an object with a {text_column!r} field"
            continue
        if text_column not in value:
            if not seen_text:  # the first object already lacks it: the name is wrong, not this row
                raise CommentFileError(
                    f"{path}: line {n}: no {text_column!r} field (this object has: {', '.join(value)}); "
                    f"name the comments' field {text_column!r}, or pass --text-column NAME")
            yield str(n), f"no {text_column!r} field"
            continue
        seen_text = True
        text = value[text_column]
        if text is not None and not isinstance(text, str):  # 5 is no comment; null is an empty one
            yield str(n), f"{text_column!r} is {_json_kind(text)}, not a string"
            continue
        fields = {"text": text, **{k: value[k] for k in ("date", "source", "id") if k in value}}
        # json.loads keeps a lone surrogate ("\\ud83d"): it becomes U+FFFD, or rows.csv and the tokenizer would fail.
        yield str(n), {k: storable("" if v is None else str(v)) for k, v in fields.items()}


def _json_kind(value) -> str:
    """What a JSON value that is not a string is, for a skipped row's reason."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return f"a number ({json.dumps(value)})"
    return "a list" if isinstance(value, list) else "an object"
