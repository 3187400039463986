"""`shopbot analyze`: reading comment files (bad ones too), rows.csv and resuming, the report's numbers, --from-db."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from bot.cli import main
from bot.evals.analyze import ROW_FIELDS, write_reports
from bot.llm.intents import INTENTS
from bot.evals.comments import Comment, CommentFileError, Skipped, read_comments, sniff_encoding
from bot.evals.report import markdown, parse_date, summarise
from tests.conftest import backdate, dump_config


def comments(path: Path, text_column: str = "text") -> list[Comment | Skipped]:
    return list(read_comments(path, sniff_encoding(path), text_column))


def rows_of(out: Path) -> list[dict]:
    with open(out / "rows.csv", encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- reading files ---------------------------------------------------------------------------------------


def test_csv_rows_keep_their_line_and_optional_columns_and_bad_rows_say_why(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('Date,TEXT,source\n2024-05-01,"送餐太慢了\n等了一个小时",meituan\n'
                    "2024-05-02,,web\n2024-05-02,great shop,web,extra\n\n2024-05-03,thanks!,web\n", encoding="utf-8")
    got = comments(path)
    assert got == [
        Comment("2", "送餐太慢了\n等了一个小时", "2024-05-01", "meituan"),
        Skipped("4", "empty text"),
        Skipped("5", "4 fields where the header has 3 (a comma or quote inside an unquoted text?)"),
        Comment("7", "thanks!", "2024-05-03", "web"),
    ]


def test_a_csv_without_the_text_column_names_the_line_the_columns_and_the_fix(tmp_path):
    path = write_csv(tmp_path / "export.csv", ["review", "stars"], [["bad", "1"]])
    with pytest.raises(CommentFileError, match=r"line 1: no column named 'text' \(the header has: review, stars\).*"
                                                r"--text-column"):
        comments(path)
    assert comments(path, "review") == [Comment("2", "bad")]


def test_json_lines_bad_lines_are_skipped_by_line_and_a_wrong_field_name_stops_at_once(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "不错", "id": 7, "date": null}\n{"text": "slow\n[1, 2]\n{"comment": "x"}\n'
                    '{"text": "ok"}\n', encoding="utf-8")
    got = comments(path)
    assert got[1].ref == "2" and got[1].reason.startswith("not JSON (")
    assert got[:1] + got[2:] == [Comment("1", "不错", id="7"), Skipped("3", "a JSON list, not an object with a 'text' "
                                 "field"), Skipped("4", "no 'text' field"), Comment("5", "ok")]
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"comment": "x"}\n', encoding="utf-8")
    with pytest.raises(CommentFileError, match=r"line 1: no 'text' field \(this object has: comment\)"):
        comments(wrong)


def test_a_json_text_that_is_not_a_string_is_skipped_by_line_not_read_as_its_digits(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": 5}\n{"text": "five stars"}\n{"text": true}\n{"text": ["a", "b"]}\n'
                    '{"text": {"body": "x"}}\n{"text": null}\n', encoding="utf-8")
    assert comments(path) == [Skipped("1", "'text' is a number (5), not a string"), Comment("2", "five stars"),
                              Skipped("3", "'text' is true, not a string"),
                              Skipped("4", "'text' is a list, not a string"),
                              Skipped("5", "'text' is an object, not a string"), Skipped("6", "empty text")]


def test_plain_text_is_one_comment_a_line_and_blank_lines_are_no_comments(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first one\r\n\n  second 第二  \n", encoding="utf-8")
    assert comments(path) == [Comment("1", "first one"), Comment("3", "second 第二")]


def test_a_lone_carriage_return_does_not_split_a_comment_but_ends_lines_in_an_old_mac_file(tmp_path):
    text = tmp_path / "c.txt"
    text.write_bytes(b"cold soup\rand late\nsecond\r\nthird\n")
    assert comments(text) == [Comment("1", "cold soup\rand late"), Comment("2", "second"), Comment("3", "third")]
    table = tmp_path / "c.csv"  # a lone \r outside quotes cannot be told from a row's end: the row says so
    table.write_bytes(b'text,date\r\ncold\rsoup,2024-05-01\r\n"quoted\rtext",2024-05-02\r\nok,2024-05-03\r\n')
    assert comments(table) == [Skipped("2", "a carriage return (\\r) in a text not in double quotes; quote the text"),
                               Comment("3", "quoted\rtext", "2024-05-02"), Comment("4", "ok", "2024-05-03")]
    mac = tmp_path / "mac.csv"  # no \n anywhere: "\r" alone ends each line (old Mac line endings)
    mac.write_bytes(b'text\rone\r"two\rlines"\r')
    assert comments(mac) == [Comment("2", "one"), Comment("3", "two\rlines")] and sniff_encoding(mac).lines == 4


def test_a_gb18030_export_is_read_as_gb18030_and_the_notice_names_the_first_line_that_is_not_utf8(tmp_path):
    path = write_csv(tmp_path / "gbk.csv", ["text"], [["fine"], ["菜凉了，差评"]], encoding="gb18030")
    encoding = sniff_encoding(path)
    assert encoding.name == "gb18030" and "line 3: not UTF-8" in encoding.notice
    assert [c.text for c in comments(path)] == ["fine", "菜凉了，差评"]


def test_rows_with_bytes_of_no_known_encoding_are_skipped_by_line_the_rest_is_read(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("text\n好吃\n".encode() + b"caf\xe9 \xff\xfe bad\n" + "送得快\n".encode())
    encoding = sniff_encoding(path)
    assert encoding.notice.endswith("line 3: not UTF-8 (nor GB18030); rows with undecodable bytes are skipped")
    assert comments(path) == [Comment("2", "好吃"), Skipped("3", "bytes that are neither UTF-8 nor GB18030"),
                              Comment("4", "送得快")]


def test_a_utf8_file_with_one_stray_byte_is_not_read_as_gb18030_nonsense(tmp_path):
    # Even runs of UTF-8 Chinese decode as GB18030 too: the whole file does, as mojibake.
    path = tmp_path / "mixed.csv"
    path.write_bytes("text\n味道很好\n送餐太慢\n".encode() + b"na\xefve design\n" + "服务态度很差\n".encode())
    assert sniff_encoding(path).name == "utf-8-sig"
    assert comments(path) == [Comment("2", "味道很好"), Comment("3", "送餐太慢"),
                              Skipped("4", "bytes that are neither UTF-8 nor GB18030"), Comment("5", "服务态度很差")]


def test_a_utf16_export_is_read_as_utf16(tmp_path):
    path = tmp_path / "unicode.txt"  # Excel's "Unicode Text": UTF-16 with a byte-order mark
    path.write_text("great noodles\r\n送餐太慢了\r\n", encoding="utf-16")
    assert comments(path) == [Comment("1", "great noodles"), Comment("2", "送餐太慢了")]
    assert sniff_encoding(path).lines == 2


def test_a_quote_never_closed_names_every_line_it_swallowed(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('text,date\ncold soup,2024-05-01\n"worst order ever,2024-05-02\nthe driver was rude,2024-05-03\n'
                    'late again,2024-05-04\n', encoding="utf-8")
    got = comments(path)
    assert got[0] == Comment("2", "cold soup", "2024-05-01")
    assert got[1].ref == "3" and got[1].reason.endswith("it runs over lines 3-5: a double quote not closed?")


def test_half_an_emoji_in_json_is_read_with_a_replacement_character(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "great noodles"}\n{"text": "cut emoji \\ud83d"}\n', encoding="utf-8")
    assert comments(path) == [Comment("1", "great noodles"), Comment("2", "cut emoji \ufffd")]


def test_dates_in_the_forms_shop_exports_use():
    assert {parse_date(v).isoformat() for v in ("2024-05-01", "2024-05-01T23:10:00Z", "2024/5/1", "2024.05.01",
                                                 "2024年5月1日", "2024-05-01 08:00")} == {"2024-05-01"}
    assert parse_date("yesterday") is None and parse_date("2024-13-45") is None


# --- the report, from rows.csv alone ----------------------------------------------------------------------


def write_rows(out: Path, rows: list[tuple]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "rows.csv", "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ROW_FIELDS)
        writer.writerows(rows)


def sample_rows() -> list[tuple]:
    """15 rows over three weeks: delivery (送餐) complaints, food (味道) both praised and criticised."""
    rows = []
    for i in range(15):
        day = f"2024-05-{1 + i * 2:02d}"
        if i < 6:
            rows.append((str(i + 2), "", day, "app", "zh", "negative", f"0.{90 - i}", "complaint", "送餐; 太慢",
                         f"送餐太慢了 {i}"))
        elif i < 9:
            rows.append((str(i + 2), "", day, "app", "zh", "negative", "0.70", "product", "味道",
                         f"味道一般 {i}"))
        elif i < 13:
            rows.append((str(i + 2), "", day, "web", "en", "positive", "0.80", "praise", "味道; food",
                         f"great food {i}"))
        else:
            rows.append((str(i + 2), "", "someday", "web", "en", "neutral", "0.65", "other", "", f"ok {i}"))
    return rows


def test_report_counts_shares_topics_and_most_negative_come_from_the_rows(tmp_path):
    write_rows(tmp_path, sample_rows())
    (tmp_path / "skipped.csv").write_text("ref,reason\n99,empty text\n", encoding="utf-8")
    s = summarise(tmp_path, "t")
    assert (s.rows, s.by_sentiment["negative"], s.by_sentiment["positive"], s.by_sentiment["neutral"]) == (15, 9, 4, 2)
    assert s.by_language["zh"]["negative"] == 9 and s.by_source["web"]["positive"] == 4
    assert s.by_intent["complaint"]["negative"] == 6 and s.by_intent["praise"]["positive"] == 4
    assert s.period == "day" and s.undated == 2 and sum(sum(c.values()) for c in s.by_period.values()) == 13
    # 送餐 and 太慢 only come up in complaints; 味道 as often in praise (4 of 7), so it is no complaint topic.
    assert [(t.phrase, t.negative, t.mentions) for t in s.topics] == [("太慢", 6, 6), ("送餐", 6, 6)]
    assert s.topics[0].examples == ["送餐太慢了 0", "送餐太慢了 1", "送餐太慢了 2"]  # the surest first, verbatim
    assert [text for _, _, text in s.most_negative][:2] == ["送餐太慢了 0", "送餐太慢了 1"]
    report = markdown(s)
    assert "| negative | 9 | 60.0% |" in report and "### 太慢: 6 negative comments (100.0% of the 6" in report
    assert "2 rows have a date that could not be read" in report and "| 99 | empty text |" in report


def test_a_long_span_is_counted_by_week(tmp_path):
    write_rows(tmp_path, [(str(i), "", f"2024-{1 + i // 2:02d}-0{1 + i % 2}", "", "en", "positive", "0.9", "praise", "", "x")
                          for i in range(12)])
    s = summarise(tmp_path, "t")
    assert s.period == "week" and all(start.weekday() == 0 for start in s.by_period)



def test_periods_without_comments_are_shown_as_empty_not_left_out(tmp_path):
    write_rows(tmp_path, [(str(i), "", day, "", "en", "negative", "0.9", "complaint", "", "x")
                          for i, day in enumerate(["2024-05-01", "2024-05-02", "2024-06-10"])])
    s = summarise(tmp_path, "t")
    assert s.period == "day" and len(s.by_period) == 41 and sum(sum(c.values()) for c in s.by_period.values()) == 3
    assert "| 2024-05-20 | 0 |" in markdown(s)

def test_a_few_rows_dated_far_from_the_rest_are_left_out_of_the_chart_and_named(tmp_path):
    days = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(40)] + ["1970-01-01", "0001-01-01"]
    write_rows(tmp_path, [(str(i), "", day, "", "en", "negative", "0.9", "complaint", "", "x")
                          for i, day in enumerate(days)])
    s = summarise(tmp_path, "t")
    assert s.period == "week" and len(s.by_period) <= 53 and sum(sum(c.values()) for c in s.by_period.values()) == 40
    assert s.rows == 42 and s.by_sentiment["negative"] == 42  # every other number counts them
    assert ("2 rows dated far from the others (0001-01-01 to 1970-01-01) are left out of this table"
            in markdown(s))
    write_rows(tmp_path, [(str(i), "", f"{2000 + i}-06-01", "", "en", "positive", "0.9", "praise", "", "x")
                          for i in range(25)])  # spread evenly over 25 years: none is far from the others
    s = summarise(tmp_path, "t")
    assert (s.period, len(s.by_period), s.far) == ("year", 25, 0) and "| 2012 | 1 |" in markdown(s)


# --- the command, end to end on the tiny model ---------------------------------------------------------------


@pytest.fixture
def cli_config(tiny_config, tmp_path) -> str:
    return str(dump_config(tiny_config, tmp_path))


def test_analyze_writes_every_readable_row_then_a_rerun_reads_nothing_again(cli_config, tmp_path, capsys):
    data = write_csv(tmp_path / "c.csv", ["id", "date", "text"],
                     [[str(i), f"2024-05-0{1 + i % 5}", t] for i, t in
                      enumerate(["送餐太慢了", "great service, thanks", "菜是凉的", "", "where is my parcel?"] * 4)])
    out = tmp_path / "out"
    assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
    assert "16 rows read now, 0 from an earlier run, 4 skipped" in capsys.readouterr().err
    rows = rows_of(out)
    assert [r["ref"] for r in rows] == [str(n) for n in range(2, 22) if (n - 2) % 5 != 3]  # input order
    assert {r["sentiment"] for r in rows} <= {"negative", "neutral", "positive"}
    assert {r["language"] for r in rows if r["text"] == "菜是凉的"} == {"zh"} and rows[0]["id"] == "0"
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in rows)
    assert {r["intent"] for r in rows} <= set(INTENTS)
    assert [r["ref"] for r in csv.DictReader(open(out / "skipped.csv", encoding="utf-8-sig"))] == ["5", "10", "15",
                                                                                                  "20"]
    assert f"{len(rows)} comments analysed; 4 rows" in (out / "report.md").read_text(encoding="utf-8")
    assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
    assert "0 rows read now, 16 from an earlier run" in capsys.readouterr().err
    assert rows_of(out) == rows


def test_an_interrupted_run_continues_where_it_stopped_and_a_row_cut_short_is_read_again(cli_config, tmp_path,
                                                                                          capsys):
    data = write_csv(tmp_path / "c.csv", ["text"], [[f"comment number {i}"] for i in range(30)])
    out = tmp_path / "out"
    assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
    whole = rows_of(out)
    lines = (out / "rows.csv").read_text(encoding="utf-8-sig").splitlines()
    # As a killed run leaves it: 10 rows written, the 11th cut off mid-write.
    (out / "rows.csv").write_text("\n".join(lines[:11]) + "\n" + lines[11][:12], encoding="utf-8-sig")
    capsys.readouterr()
    assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
    err = capsys.readouterr().err
    assert "dropped 1 row(s) cut short" in err and "20 rows read now, 10 from an earlier run" in err
    again = rows_of(out)
    assert sorted(r["ref"] for r in again) == sorted(r["ref"] for r in whole)
    assert {r["ref"]: r["sentiment"] for r in again} == {r["ref"]: r["sentiment"] for r in whole}


@pytest.mark.parametrize("cut", ["inside a text of several lines", "inside the last row's text"])
def test_a_rows_file_cut_inside_a_text_is_read_again_not_glued_to_the_next_rows(cli_config, tmp_path, capsys, cut):
    texts = ["the soup was cold", "first line of a long review\nsecond line of it", "the driver was late",
             "where is my parcel", "very slow refund", "great noodles"]
    data = write_csv(tmp_path / "c.csv", ["text"], [[t] for t in texts])
    out = tmp_path / "out"
    assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
    whole = (out / "rows.csv").read_text(encoding="utf-8-sig")
    # As a killed run leaves it: cut in the middle of a text (text is the last field, so every field is there).
    at = whole.index("second line") if cut == "inside a text of several lines" else len(whole) - 6
    (out / "rows.csv").write_text(whole[:at], encoding="utf-8-sig")
    capsys.readouterr()
    for _ in range(2):
        assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
        assert sorted((r["ref"], r["text"]) for r in rows_of(out)) == sorted(
            (str(n), t) for n, t in zip([2, 3, 5, 6, 7, 8], texts))
    assert "dropped 1 row(s) cut short" in capsys.readouterr().err
    assert "6 comments analysed" in (out / "report.md").read_text(encoding="utf-8")


def test_a_comment_longer_than_csv_fields_usually_are_is_read_and_kept_whole(cli_config, tmp_path):
    data = tmp_path / "c.txt"
    long = "terrible delivery " * 8000  # 144,000 characters: over the csv module's default field limit
    data.write_text(f"fine\n{long}\nok\n", encoding="utf-8")
    out = tmp_path / "out"
    for _ in range(2):  # the rerun reads rows.csv back
        assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
    assert [r["text"] for r in rows_of(out)] == ["fine", long.strip(), "ok"]


def test_a_comment_with_a_carriage_return_is_kept_whole_in_rows_csv(cli_config, tmp_path, capsys):
    data = tmp_path / "c.jsonl"
    data.write_text('{"text": "cold soup\\rand late"}\n{"text": "great noodles"}\n', encoding="utf-8")
    out = tmp_path / "out"
    for _ in range(2):  # the rerun reads rows.csv back
        assert main(["analyze", str(data), "--out", str(out), "--config", cli_config]) == 0
    assert [(r["ref"], r["text"]) for r in rows_of(out)] == [("1", "cold soup\rand late"), ("2", "great noodles")]
    assert "cut short" not in capsys.readouterr().err


def test_ctrl_c_keeps_whole_rows_and_the_same_command_continues(cli_config, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    data = write_csv(tmp_path / "c.csv", ["text"], [[f"comment number {i}, 第{i}条"] for i in range(1500)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bot.cli", "analyze", str(data), "--out", str(out), "--config", cli_config]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ((out / "rows.csv").exists() and len((out / "rows.csv").read_bytes().splitlines()) > 1):
        assert child.poll() is None and time.monotonic() < deadline, "no row written before the run ended"
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    err = child.communicate(timeout=300)[1]
    assert child.returncode == 130 and "Run the same command again to continue" in err
    first = rows_of(out)
    assert 0 < len(first) < 1500 and all(None not in r.values() for r in first)
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0 and f"{1500 - len(first)} rows read now, {len(first)} from an earlier run" \
        in finished.stderr
    assert sorted(int(r["ref"]) for r in rows_of(out)) == list(range(2, 1502))


def test_analyze_refuses_to_mix_two_inputs_or_two_readings_in_one_folder_and_names_bad_arguments(
        cli_config, tiny_config, tmp_path, capsys):
    one = write_csv(tmp_path / "one.csv", ["text"], [["a"], ["b"]])
    two = write_csv(tmp_path / "two.csv", ["text"], [["b"]])
    out = tmp_path / "out"
    assert main(["analyze", str(one), "--out", str(out), "--config", cli_config]) == 0
    assert main(["analyze", str(two), "--out", str(out), "--config", cli_config]) == 2
    assert f"holds the rows of {one.resolve()} (column 'text', sha256 " in capsys.readouterr().err
    (tmp_path / "june").mkdir()  # another file of the same name, and the same file read by another column
    write_csv(tmp_path / "june" / "one.csv", ["text"], [["c"], ["d"]])
    assert main(["analyze", str(tmp_path / "june" / "one.csv"), "--out", str(out), "--config", cli_config]) == 2
    assert main(["analyze", str(one), "--text-column", "TEXT", "--out", str(out), "--config", cli_config]) == 2
    assert "not of " in capsys.readouterr().err and [r["text"] for r in rows_of(out)] == ["a", "b"]
    (tmp_path / "generate").mkdir()
    generate = dump_config(replace(tiny_config, sentiment=replace(tiny_config.sentiment, method="generate")),
                           tmp_path / "generate")
    assert main(["analyze", str(one), "--out", str(out), "--config", str(generate)]) == 2
    assert "(sentiment: logits), and this run reads with" in capsys.readouterr().err  # one report, one reading
    assert "Labels were read by " in (out / "report.md").read_text(encoding="utf-8")
    assert main(["analyze", str(tmp_path / "none.csv"), "--config", cli_config]) == 2
    assert "none.csv: no such file" in capsys.readouterr().err
    assert main(["analyze", "--config", cli_config]) == 2
    assert main(["analyze", "--from-db", "--since", "last week", "--config", cli_config]) == 2
    assert "is not a date like 2024-05-31" in capsys.readouterr().err
    assert main(["analyze", "--from-db", "--config", cli_config]) == 2  # no database yet: none is created
    assert "no database at " in capsys.readouterr().err and not tiny_config.storage.path.exists()
    assert main(["analyze", str(one), "--since", "2024-05-01", "--config", cli_config]) == 2
    assert "--since goes with --from-db" in capsys.readouterr().err
    assert main(["analyze", str(one), "--out", str(one), "--config", cli_config]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


async def test_from_db_reads_customers_text_messages_since_the_date(tiny_config, tmp_path):
    import time

    from bot.evals.analyze import analyse, reader_for, stored_comments
    from storage.db import Database

    db = await Database.open(tiny_config.storage.path)
    ann = await db.customer("telegram", "1", "Ann")
    await backdate(db, await db.add_message(ann.id, "customer", "last year's message"), time.time() - 400 * 86400)
    new = await db.add_message(ann.id, "customer", "my order is late")
    await db.add_message(ann.id, "bot", "Sorry to hear that")
    await db.add_message(ann.id, "customer", "[photo]", kind="photo")
    await db.add_message(ann.id, "customer", "  \n")  # stored as sent, no comment to read
    reader = reader_for(tiny_config)
    try:
        run = await analyse(reader, stored_comments(db, time.time() - 86400), tmp_path / "out", "db", None, "db")
    finally:
        reader.close()
        await db.close()
    [row] = rows_of(tmp_path / "out")
    assert (run.analysed, row["ref"], row["id"], row["source"], row["text"]) == (
        1, f"message:{new}", str(new), "telegram", "my order is late")
    assert parse_date(row["date"]) is not None


@pytest.mark.parametrize("since, read", [("0001-01-01", 1), ("9999-12-31T23:59:59", 0)])
def test_since_the_first_or_last_day_a_calendar_has_reads_everything_or_nothing(cli_config, tiny_config, tmp_path,
                                                                                  since, read):
    import asyncio
    import os
    import subprocess
    import sys

    from storage.db import Database
    from tests.conftest import REPO

    async def store() -> None:
        db = await Database.open(tiny_config.storage.path)
        ann = await db.customer("telegram", "1", "Ann")
        await db.add_message(ann.id, "customer", "my order is late")
        await db.close()

    asyncio.run(store())
    out = tmp_path / "out"
    # Seconds since 1970 of these local times are out of the platform's range (in UTC+8 both of them).
    command = [sys.executable, "-m", "bot.cli", "analyze", "--from-db", "--since", since, "--out", str(out),
               "--config", cli_config]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(REPO), "TZ": "Asia/Shanghai"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and f"{read} rows read now" in done.stderr and len(rows_of(out)) == read


def test_from_db_since_and_the_rows_dates_are_days_in_the_shops_timezone(cli_config, tiny_config, tmp_path):
    """A Shanghai shop on a server kept in UTC: "--since 2026-03-01" is 1 March in Shanghai, and a message sent at
    01:00 that day is dated 1 March in the report, not 28 February."""
    import asyncio
    import os
    import subprocess
    import sys
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from storage.db import Database
    from tests.conftest import REPO

    shanghai = ZoneInfo("Asia/Shanghai")

    async def store() -> None:
        db = await Database.open(tiny_config.storage.path)
        ann = await db.customer("telegram", "1", "Ann")
        for text, at in [("my order is late", datetime(2026, 3, 1, 1, 0, tzinfo=shanghai)),  # 28 Feb 17:00 UTC
                         ("the box was torn", datetime(2026, 2, 28, 23, 0, tzinfo=shanghai))]:  # 28 Feb 15:00 UTC
            await backdate(db, await db.add_message(ann.id, "customer", text), at.timestamp())
        await db.close()

    asyncio.run(store())
    with open(cli_config, "a", encoding="utf-8") as f:
        f.write('\n[hours]\ntimezone = "Asia/Shanghai"\nmon = "09:00-18:00"\n')
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bot.cli", "analyze", "--from-db", "--since", "2026-03-01", "--out", str(out),
               "--config", cli_config]
    done = subprocess.run(command, env={**os.environ, "PYTHONPATH": str(REPO), "TZ": "UTC"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [row] = rows_of(out)
    assert row["text"] == "my order is late" and parse_date(row["date"]) == datetime(2026, 3, 1).date()


# --- the page in a real browser ------------------------------------------------------------------------------


def test_report_html_renders_in_headless_chromium_with_its_charts(tmp_path):
    import shutil
    import subprocess

    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: `bash scripts/setup.sh test` installs it (apt)"
    write_rows(tmp_path, sample_rows())
    write_reports(tmp_path, "sample <shop>")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # A copy with a probe that writes the charts' laid-out sizes into the DOM the browser dumps.
    probe = ("<script>for (const id of ['sentiment-chart', 'time-chart']) { const r = document.getElementById(id)"
             ".getBoundingClientRect(); document.body.dataset[id.replace('-c', 'C')] = r.width + 'x' + r.height; }"
             "</script></body>")
    (tmp_path / "probe.html").write_text(page.replace("</body>", probe), encoding="utf-8")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    dom = subprocess.run([*flags, "--dump-dom", (tmp_path / "probe.html").as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert 'data-sentiment-chart="600x36"' in dom and 'data-time-chart="720x260"' in dom
    assert '<b id="rows">15</b>' in dom and "What customers say: sample &lt;shop&gt;" in dom
    assert dom.count("<rect") >= 3 + 3 * 13 and "送餐太慢了 0" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1000,1400", (tmp_path / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


# --- the real model -----------------------------------------------------------------------------------------


@pytest.mark.real_model
async def test_the_embedded_model_reads_plain_praise_and_complaints_in_both_languages(real_engine, tmp_path):
    from bot.evals.analyze import LocalReader, analyse, file_comments

    data = tmp_path / "c.jsonl"
    texts = {"送餐太慢了，等了一个多小时，菜都凉了，差评": "negative", "味道很好，送得也快，下次还点": "positive",
             "The parcel arrived broken and nobody answers my emails.": "negative",
             "Lovely shop, fast delivery, thank you!": "positive"}
    data.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    reader = LocalReader(real_engine.config)
    reader.model = real_engine  # the session's engine: not closed here
    await analyse(reader, file_comments(data, sniff_encoding(data), "text"), tmp_path / "out", "c.jsonl", 4,
                  "c.jsonl")
    rows = rows_of(tmp_path / "out")
    assert {r["text"]: r["sentiment"] for r in rows} == texts
    assert [r["language"] for r in rows] == ["zh", "zh", "en", "en"]
    assert "送餐" in rows[0]["key_phrases"] and "parcel" in rows[2]["key_phrases"]
