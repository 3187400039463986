"""Intents (#18): the shipped head reads the embedded model's pass, `shopbot eval --task intent`, always-alert intents
over the service with a real SQLite, the stored column, /stats, config validation, the keyword reading."""

import json
from dataclasses import replace

import pytest

from bot.cli import main
from bot.config import ConfigError, load_config
from bot.escalation import INTENT_RULE
from bot.llm.intents import INTENTS, keyword_intent
from bot.service import ConversationService, Sender
from bot.telegram.handlers.operator import stats_text
from testkit.fakes.engine import ScriptedEngine
from tests.conftest import REPO, dump_config

ANN = Sender("console", "ann", "Ann")
DEV_EN, DEV_ZH = REPO / "bench" / "devsets" / "intent_dev_en.csv", REPO / "bench" / "devsets" / "intent_dev_zh.csv"
# Plain messages from the dev sets (never in the training rows), one per label the operators care most about.
CLEAR = {
    "I'd prefer a refund instead of the voucher you offered.": "return_refund",
    "Do you take American Express?": "payment_invoice",
    "Is the rattan lamp suitable for outdoor use?": "product",
    "Could I please speak with someone from the shop rather than the assistant?": "human",
    "退货寄回12天了（有单号），还没退钱，帮查下": "return_refund",
    "能用京东支付吗": "payment_invoice",
    "花盆底部有排水孔吗": "product",
    "我要找你们主管": "human",
}


async def test_the_shipped_intent_head_reads_clear_messages_in_both_languages_with_their_sentiment(real_engine):
    reader = real_engine.sentiment_reader
    assert reader.intent_head is not None and reader.shares_pass(reader.intent_head)  # one forward pass for both
    readings = reader.read_messages(list(CLEAR))
    assert {text: r.intent.label for text, r in zip(CLEAR, readings)} == CLEAR
    assert [r.sentiment for r in readings] == reader.read_many(list(CLEAR))  # the shared pass changes no sentiment
    assert all(0.0 < r.intent.confidence <= 1.0 for r in readings)


def test_eval_intent_prints_accuracy_macro_f1_and_the_confusion_matrix(capsys):
    assert main(["eval", "--task", "intent", str(DEV_ZH), "--limit", "27"]) == 0
    out = capsys.readouterr().out
    assert "task=intent  method=head  n=27" in out and "macro-F1" in out
    assert "confusion (rows: gold, columns: predicted)" in out and "payment_invoice" in out

    assert main(["eval", "--task", "intent", str(DEV_EN), "--limit", "18", "--method", "keywords", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["task"], report["method"], report["n"]) == ("intent", "keywords", 18)
    assert set(report["confusion"]) == set(INTENTS)  # 18 rows stratified over nine labels: two of each
    assert sum(map(sum, (row.values() for row in report["confusion"].values()))) == 18
    assert 0.0 <= report["macro_f1"] <= report["accuracy"] * 2


def test_eval_intent_refuses_sentiment_labels_and_sentiment_methods(tmp_path, capsys):
    sentiment_file = tmp_path / "s.csv"
    sentiment_file.write_text("text,label\nlovely,positive\n", encoding="utf-8")
    assert main(["eval", "--task", "intent", str(sentiment_file)]) == 2
    assert "unknown labels ['positive']" in capsys.readouterr().err
    assert main(["eval", "--task", "intent", str(DEV_EN), "--method", "logits"]) == 2
    assert "--method logits reads no intent" in capsys.readouterr().err


def test_calibrate_intent_fits_the_shops_rows_with_the_shipped_ones_and_eval_reads_with_it(tiny_config, tmp_path,
                                                                                            capsys):
    from bot.llm.head import INTENT_TRAINING_DIR, LinearHead, calibrated_path, training_rows
    from bot.llm.loading import model_slug

    mine = tmp_path / "mine.csv"
    mine.write_text("text,label\nIs the oolong in stock?,product\nWhere is my oolong?,order_status\n", encoding="utf-8")
    config = dump_config(tiny_config, tmp_path)
    assert main(["calibrate", "--task", "intent", str(mine), "--config", str(config)]) == 0
    assert "saved an intent head fitted on" in capsys.readouterr().out
    saved = calibrated_path(tmp_path / "data" / "models", model_slug(tiny_config.model), "intent")
    head = LinearHead.load(saved)
    assert head.classes == sorted(INTENTS) and head.meta["n"] == 2 + len(training_rows(INTENT_TRAINING_DIR, INTENTS))
    assert main(["eval", "--task", "intent", str(mine), "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "head"  # the calibrated head, found next to the cache


def test_a_missing_or_foreign_intent_head_is_a_clear_error_not_a_traceback(tiny_config, tmp_path, capsys):
    import shutil

    from bot.llm.head import SHIPPED_DIR, calibrated_path
    from bot.llm.loading import model_slug

    config = dump_config(tiny_config, tmp_path)
    read_with_head = ["eval", "--task", "intent", str(DEV_EN), "--limit", "9", "--method", "head"]
    assert main([*read_with_head, "--config", str(config)]) == 2
    assert "model.cache_dir: no intent head for this model" in capsys.readouterr().err
    foreign = calibrated_path(tmp_path / "data" / "models", model_slug(tiny_config.model), "intent")
    foreign.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHIPPED_DIR / "SmolLM2-135M-Instruct.intent.npz", foreign)  # fitted on another model's states
    assert main(["eval", "--task", "intent", str(DEV_EN), "--limit", "9", "--config", str(config)]) == 2
    assert "was fitted for another model: delete it" in capsys.readouterr().err


def test_an_unknown_always_alert_intent_stops_start_up_naming_the_key(tmp_path):
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    text = text.replace('always_alert_intents = ["human"]', 'always_alert_intents = ["return_refund", "refunds"]')
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "config.toml", environ={})
    assert error.value.key == "alerts.always_alert_intents[1]" and "return_refund" in error.value.reason
    assert load_config(environ={}).alerts.always_alert_intents == ("human",)


REFUND = "I want my money back for the teapot"


async def test_an_always_alert_intent_alerts_a_calm_customer_and_the_intent_is_stored(db, tiny_engine):
    engine = ScriptedEngine(tiny_engine, sentiments={REFUND: ("neutral", 0.8), "thanks": ("positive", 0.9)},
                            intents={REFUND: ("return_refund", 0.93), "thanks": ("praise", 0.9)})
    config = replace(tiny_engine.config, alerts=replace(tiny_engine.config.alerts,
                                                        always_alert_intents=("return_refund", "human")))
    service = ConversationService(db, engine, config)
    outcome = await service.handle_text(ANN, REFUND)
    assert (outcome.intent.label, outcome.intent.confidence) == ("return_refund", 0.93)
    assert outcome.alert is not None and outcome.alert.reason == INTENT_RULE.format("return_refund") \
        == "intent return_refund"
    assert (await db.alerts(outcome.customer.id))[0]["reason"] == "intent return_refund"
    thanks = await service.handle_text(ANN, "thanks")
    assert thanks.intent.label == "praise" and thanks.alert is None
    assert await db.intent_counts(0) == {"praise": 1, "return_refund": 1}


async def test_by_default_only_a_request_for_a_person_alerts_by_intent(db, tiny_engine):
    call_me = "Could someone from the shop call me about the teapot?"  # none of the human phrases
    engine = ScriptedEngine(tiny_engine, sentiments={REFUND: ("neutral", 0.8), call_me: ("neutral", 0.8)},
                            intents={REFUND: ("return_refund", 0.93), call_me: ("human", 0.8)})
    service = ConversationService(db, engine, tiny_engine.config)
    refund = await service.handle_text(ANN, REFUND)
    assert refund.intent.label == "return_refund" and refund.alert is None
    person = await service.handle_text(Sender("console", "bo", "Bo"), call_me)
    assert person.alert.reason == "intent human" and person.reply != tiny_engine.config.handoff.human_reply.for_lang("en")


async def test_a_model_without_an_intent_head_reads_intents_by_keywords(db, tiny_engine):
    assert tiny_engine.sentiment_reader.intent_head is None  # the tiny random model has none
    outcome = await ConversationService(db, tiny_engine, tiny_engine.config).handle_text(ANN, "能开发票吗？")
    assert outcome.intent == keyword_intent("能开发票吗？") and outcome.intent.label == "payment_invoice"
    assert await db.intent_counts(0) == {"payment_invoice": 1}


def test_stats_show_the_intents_read_today_most_frequent_first():
    stats = {"customers": 2, "messages": 5, "negative_share": 0.2, "alerts": 1, "alerts_delivered": 1}
    handoff = {"answer_waits": [], "corrections": 0, "open_takeovers": 0}
    assert "Intents: order_status 3, praise 2\n" in stats_text(stats, handoff, [], {"order_status": 3, "praise": 2}, {})
    assert "Intents: none read yet\n" in stats_text(stats, handoff, [], {}, {})


@pytest.mark.parametrize("text, label", [
    ("Where is my order? It's been a week.", "order_status"),
    ("Do you ship to Canada?", "shipping"),
    ("我要退货", "return_refund"),
    ("Can I talk to a real person please", "human"),
    ("hello", "other"),
])
def test_keyword_reading(text, label):
    assert keyword_intent(text).label == label


async def test_a_model_server_reads_intents_by_keywords_beside_its_sentiment(remote_engine):
    reading = await remote_engine.read_message("Do you ship to Canada? How much is it?")
    assert reading.intent == keyword_intent("Do you ship to Canada? How much is it?")
    assert reading.intent.label == "shipping" and reading.sentiment.label in {"negative", "neutral", "positive"}
