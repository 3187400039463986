"""Retrieval claimed of the embedded SmolLM2-135M-Instruct model: paraphrases find their entry, run for real."""

from dataclasses import replace
from pathlib import Path

import pytest

from bot.escalation import NO_ANSWER
from bot.knowledge import Knowledge
from bot.service import ConversationService, Sender

pytestmark = pytest.mark.real_model

FIXTURE = Path(__file__).parent / "fixtures" / "knowledge.csv"


@pytest.fixture
async def knowledge(db, real_engine):
    knowledge = Knowledge(db, real_engine, real_engine.config.knowledge)
    await knowledge.import_file(FIXTURE)
    return knowledge


@pytest.mark.parametrize(("question", "entry_id"), [
    ("Can I come by on a Monday?", "hours"),
    ("My parcel still hasn't arrived. How many days does it usually take?", "delivery"),
    ("What water temperature is right for green tea?", "brewing"),
    ("周一可以去店里买茶吗？", "hours"),
    ("买的茶没拆开，不想要了能退款吗？", "returns"),
    ("泡绿茶水温多少合适？", "brewing"),
])
async def test_a_paraphrased_question_finds_its_entry_in_its_own_language(knowledge, question, entry_id):
    match = await knowledge.find(question)
    assert match.on_topic
    assert (match.entry.entry_id, match.entry.lang) == (entry_id, match.lang)
    assert match.lang == ("zh" if "茶" in question else "en")


async def test_a_question_the_knowledge_cannot_answer_is_handed_to_a_person(db, real_engine):
    config = replace(real_engine.config, knowledge=replace(real_engine.config.knowledge, file=FIXTURE))
    service = ConversationService(db, real_engine, config)
    await service.start()
    outcome = await service.handle_text(Sender("console", "1"), "Do you sell used cars?")
    assert outcome.alert is not None and outcome.alert.reason == NO_ANSWER
    assert "a person from the shop" in outcome.reply


async def test_a_message_the_model_reads_as_not_about_the_shop_is_steered_back_though_it_shares_a_word(
        db, real_engine, tmp_path):
    """"Hangzhou" ties the weather question to the showroom entry alone; the model reads it as no shop talk
    ("other"), so the customer is steered back instead of being sent the showroom's address."""
    path = tmp_path / "faq.csv"
    path.write_text(FIXTURE.read_text(encoding="utf-8") + "address,en,Where is your showroom?,"
                    "\"Our showroom is at 88 Wensan Road, Xihu District, Hangzhou.\"\n", encoding="utf-8")
    config = replace(real_engine.config, knowledge=replace(real_engine.config.knowledge, file=path))
    service = ConversationService(db, real_engine, config)
    await service.start()
    weather = await service.handle_text(Sender("console", "1"), "What's the weather going to be like in Hangzhou "
                                                                 "tomorrow?")
    showroom = await service.handle_text(Sender("console", "2"), "Which part of Hangzhou is your showroom in?")
    assert weather.reply == config.knowledge.languages["en"].off_topic_reply and weather.alert is None
    assert "88 Wensan Road" in showroom.reply
