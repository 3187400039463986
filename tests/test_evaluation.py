"""Eval metrics on hand-built data, sampling, the head file, `shopbot eval/calibrate` end to end on the tiny model."""

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from bot.cli import main
from bot.config import ConfigError
from bot.evaluation import Row, decision, evaluate, metrics, read_rows, stratified_indices
from bot.llm.head import LinearHead, calibrated_path, find_head
from bot.llm.loading import model_slug
from bot.llm.sentiment import Sentiment
from tests.conftest import dump_config

# 6 rows: 3 negative (2 read right), 2 positive (both right), 1 neutral (read negative).
HAND_BUILT = [
    ("the lid was cracked", "negative", "negative"),
    ("never again", "negative", "negative"),
    ("refund took a month", "negative", "positive"),
    ("lovely, thanks!", "positive", "positive"),
    ("fast delivery", "positive", "positive"),
    ('where is "my" order, please?', "neutral", "negative"),
]


def write_csv(path, rows):
    path.write_text("text,label\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}",{label}\n' for t, label, *_ in rows),
                    encoding="utf-8")
    return path


def test_metrics_on_a_hand_built_csv_match_the_numbers_worked_out_by_hand(tmp_path):
    rows = read_rows(write_csv(tmp_path / "hand.csv", HAND_BUILT))
    assert rows[5] == Row('where is "my" order, please?', "neutral")
    report = metrics([r.label for r in rows], [p for *_, p in HAND_BUILT])
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    negative, positive, neutral = (report["labels"][k] for k in ("negative", "positive", "neutral"))
    assert (negative["precision"], negative["recall"], negative["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert (positive["precision"], positive["recall"], positive["f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (neutral["precision"], neutral["recall"], neutral["f1"]) == (0.0, 0.0, 0.0)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)
    assert report["confusion"] == {
        "negative": {"negative": 2, "neutral": 0, "positive": 1},
        "neutral": {"negative": 1, "neutral": 0, "positive": 0},
        "positive": {"negative": 0, "neutral": 0, "positive": 2},
    }


def test_label_filter_and_unknown_labels(tmp_path):
    path = write_csv(tmp_path / "hand.csv", HAND_BUILT)
    assert [r.label for r in read_rows(path, ["positive", "negative"])].count("neutral") == 0
    assert len(read_rows(path, ["positive", "negative"])) == 5
    (tmp_path / "bad.csv").write_text("text,label\nhi,happy\n", encoding="utf-8")
    with pytest.raises(ValueError, match="happy"):
        read_rows(tmp_path / "bad.csv")


def test_stratified_sample_is_seeded_and_keeps_each_labels_share():
    labels = ["positive"] * 300 + ["negative"] * 600 + ["neutral"] * 100  # sorted, as waimai is
    picked = stratified_indices(labels, 100)
    assert picked == stratified_indices(labels, 100) != stratified_indices(labels, 100, seed=1)
    assert len(set(picked)) == 100
    assert Counter(labels[i] for i in picked) == {"negative": 60, "positive": 30, "neutral": 10}
    assert stratified_indices(labels, None) == list(range(1000))


def test_a_two_label_file_scores_the_pole_an_unsure_method_leaned_to():
    unsure = Sentiment("neutral", 0.9, {"negative": 0.55, "positive": 0.45})
    assert decision(unsure, {"negative", "positive"}) == "negative"
    assert decision(unsure, {"negative", "positive", "neutral"}) == "neutral"


def test_head_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    head = LinearHead(
        classes=["negative", "positive"], instruction="Judge the mood.\nOne word.", layers=(3, 5),
        mean=rng.normal(size=8).astype(np.float32), std=rng.uniform(1, 2, size=8).astype(np.float32),
        weight=rng.normal(size=(2, 8)).astype(np.float32), bias=np.array([0.1, -0.1], np.float32),
        meta={"data": "hand.csv", "n": 6},
    )
    head.save(tmp_path / "heads" / "h.npz")
    loaded = LinearHead.load(tmp_path / "heads" / "h.npz")
    assert (loaded.classes, loaded.instruction, loaded.layers, loaded.meta) == (
        head.classes, head.instruction, head.layers, head.meta)
    features = rng.normal(size=(4, 8)).astype(np.float32)
    np.testing.assert_allclose(loaded.probabilities(features), head.probabilities(features), rtol=1e-6)
    np.testing.assert_allclose(loaded.probabilities(features).sum(axis=1), 1.0, rtol=1e-6)


def test_a_calibrated_head_beats_the_shipped_one_and_a_configured_path_beats_both(tmp_path):
    slug = "SmolLM2-135M-Instruct"
    assert find_head("", tmp_path, slug).parent.name == "heads"  # the shipped default
    calibrated_path(tmp_path, slug).parent.mkdir(parents=True)
    calibrated_path(tmp_path, slug).write_bytes(b"")
    assert find_head("", tmp_path, slug) == calibrated_path(tmp_path, slug)
    assert str(find_head("/x/mine.npz", tmp_path, slug)) == "/x/mine.npz"


def test_the_prefix_cache_is_left_as_found_after_each_method(tiny_engine):
    reader = tiny_engine.sentiment_reader
    before = reader.read("where is my parcel", "logits").scores
    reader.head_features(["my order arrived broken"])  # early exit: only some blocks stored the message
    reader.read("thank you, great shop", "generate")
    assert reader.read("where is my parcel", "logits").scores == pytest.approx(before)
    again = reader.head_features(["my order arrived broken", "my order arrived broken"])
    np.testing.assert_allclose(again[0], again[1], rtol=1e-5)


def test_evaluate_reports_every_method_with_timings(tiny_engine):
    rows = [Row(t, label) for t, label, _ in HAND_BUILT[:5]]
    for method in ("generate", "logits"):
        report = evaluate(tiny_engine, rows, method, progress=False)
        assert report["n"] == 5 and report["method"] == method
        assert report["ms_per_message"] > 0
        assert set(report["confusion"]) == {"negative", "positive"}


def test_calibrate_then_eval_the_head_end_to_end(tiny_config, tmp_path, capsys):
    data = write_csv(tmp_path / "train.csv", HAND_BUILT * 10)  # 30 negative, 20 positive: the least calibrate takes
    config = dump_config(tiny_config, tmp_path)
    head = tmp_path / "head.npz"
    assert main(["calibrate", str(data), "--config", str(config), "--labels", "positive,negative",
                 "--out", str(head)]) == 0
    out = capsys.readouterr().out
    assert str(head) in out and "held-out (10 rows)" in out
    assert LinearHead.load(head).classes == ["negative", "positive"]

    config.write_text(config.read_text().replace('head_path = ""', f'head_path = "{head}"'))
    assert main(["eval", str(data), "--config", str(config), "--method", "head", "--json", "--limit", "6"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 6 and report["method"] == "head"
    assert {"accuracy", "macro_f1", "labels", "confusion", "ms_per_message"} <= set(report)
    assert set(report["labels"]) == {"negative", "positive", "neutral"}


def test_a_head_for_another_model_is_refused_naming_the_key(tiny_engine, tmp_path):
    from bot.llm.sentiment import SentimentReader

    wrong = LinearHead(["negative", "positive"], "x", (1,), np.zeros(5, np.float32), np.ones(5, np.float32),
                       np.zeros((2, 5), np.float32), np.zeros(2, np.float32))
    wrong.save(tmp_path / "wrong.npz")
    settings = replace(tiny_engine.config.sentiment, method="head")
    with pytest.raises(ConfigError, match="sentiment.head_path"):
        SentimentReader(tiny_engine.decoder, tiny_engine.tokenizer, settings, [], tmp_path / "wrong.npz")


def test_eval_of_a_missing_or_malformed_file_says_what_is_wrong(tmp_path, capsys):
    from bot.cli import main

    assert main(["eval", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv: cannot read it as a UTF-8 CSV" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("message,mood\nhi,happy\n", encoding="utf-8")
    assert main(["calibrate", str(bad)]) == 2
    assert "bad.csv: needs a header with the columns text,label" in capsys.readouterr().err


def test_labels_are_matched_whatever_their_case_and_a_misspelt_one_is_named(tiny_config, tmp_path, capsys):
    data = write_csv(tmp_path / "hand.csv", HAND_BUILT)
    config = str(dump_config(tiny_config, tmp_path))
    assert main(["eval", str(data), "--config", config, "--labels", "Negative, POSITIVE", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 5
    assert main(["eval", str(data), "--config", config, "--labels", "negative,postive"]) == 2
    assert capsys.readouterr().err == ("shopbot eval: --labels: unknown label 'postive' (expected negative, neutral, "
                                       "positive)\n")


def test_files_and_options_nothing_can_be_scored_or_fitted_on_are_one_line_errors(tiny_config, tmp_path, capsys):
    config = str(dump_config(tiny_config, tmp_path))
    one_label = write_csv(tmp_path / "one.csv", HAND_BUILT[:3])
    header_only = write_csv(tmp_path / "header.csv", [])
    short_row = tmp_path / "short.csv"
    short_row.write_text("label,text\nnegative,never again\npositive\n", encoding="utf-8")
    hand = write_csv(tmp_path / "hand.csv", HAND_BUILT)
    for command, args, error in [
        ("calibrate", [one_label], f"{one_label}: all 3 rows are negative: a head needs rows of at least two labels"),
        ("eval", [header_only], f"{header_only}: no rows below the header"),
        ("calibrate", [header_only], f"{header_only}: no rows below the header"),
        ("eval", [one_label, "--labels", "neutral"], f"{one_label}: no rows labelled neutral"),
        ("eval", [short_row], f"{short_row}: line 3: no text (the row has fewer fields than the header)"),
        ("eval", [hand, "--limit", "-1"], "--limit -1: must be 1 or more"),
        ("calibrate", [hand, "--limit", "0"], "--limit 0: must be 1 or more"),
    ]:
        assert main([command, *map(str, args), "--config", config]) == 2, (command, args)
        assert capsys.readouterr().err == f"shopbot {command}: {error}\n"


def test_calibrate_refuses_too_few_rows_of_a_label_unless_forced(tiny_config, tmp_path, capsys):
    data = write_csv(tmp_path / "few.csv", HAND_BUILT * 3)  # 9 negative, 6 positive, 3 neutral
    config = str(dump_config(tiny_config, tmp_path))
    cached = calibrated_path(tmp_path / "data" / "models", model_slug(tiny_config.model))  # beside the config's cache
    assert main(["calibrate", str(data), "--config", config]) == 2
    assert capsys.readouterr().err == (
        f"shopbot calibrate: {data}: too few rows to fit a head that means anything: negative 9, neutral 3, "
        "positive 6 (at least 20 of each; --force fits one anyway)\n")
    assert not cached.exists()  # the head in use is left as it was
    assert main(["calibrate", str(data), "--config", config, "--force"]) == 0
    assert f"to {cached}" in capsys.readouterr().out
    assert LinearHead.load(cached).classes == ["negative", "neutral", "positive"]


def test_macro_f1_is_over_the_models_labels_not_only_the_files(tiny_config, tmp_path, capsys):
    config = str(dump_config(tiny_config, tmp_path))
    praise = write_csv(tmp_path / "praise.csv", [("lovely, thanks!", "positive"), ("fast delivery", "positive")])
    assert main(["eval", str(praise), "--config", config, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["labels"]) == {"negative", "positive"}  # a file without neutral rows asks for a polarity
    assert report["macro_f1"] == pytest.approx(report["labels"]["positive"]["f1"] / 2)  # negative: no rows, F1 0
    assert report["notes"] == ["note: every row is positive: macro-F1 over one class is not comparable with other "
                               "files' (negative counts as F1 0); accuracy is positive's recall"]

    no_praise = write_csv(tmp_path / "no_praise.csv", [t for t in HAND_BUILT if t[1] != "positive"])
    assert main(["eval", str(no_praise), "--config", config]) == 0
    out = capsys.readouterr().out
    assert "\npositive " in out  # a positive reading is a wrong one, with its own row in the table
    assert "note: no rows are positive: macro-F1 counts it as F1 0, so it is not comparable with a file that has " \
           "every label" in out

    # calibrate's held-out score is over the saved head's labels, also those its trial fit never saw
    one_each = write_csv(tmp_path / "one_each.csv", [HAND_BUILT[0], HAND_BUILT[3], HAND_BUILT[5]])
    assert main(["calibrate", str(one_each), "--config", config, "--force", "--out", str(tmp_path / "h.npz")]) == 0
    assert "held-out (1 rows): macro-F1 0.000" in capsys.readouterr().out


def test_metrics_count_a_label_with_no_rows_as_f1_zero():
    report = metrics(["positive", "positive"], ["positive", "positive"], ("negative", "positive"))
    assert report["macro_f1"] == 0.5 and report["labels"]["negative"]["support"] == 0
    assert metrics(["positive"], ["negative"])["macro_f1"] == 0.0  # unnamed: the labels either side says
    one_intent = metrics(["praise"] * 2, ["praise", "other"], ("praise",))
    assert one_intent["notes"] == ["note: every row is praise: macro-F1 over one class is not comparable with other "
                                   "files'; accuracy is praise's recall"]
