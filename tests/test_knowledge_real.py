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


KITCHEN_SHOP = """id,lang,question,answer{also}
hours,en,When are you open?,"Open every day 9:00-20:00, closed on Spring Festival eve."{hours_en}
hours,zh,几点营业？,每天9:00-20:00营业，除夕休息。{hours_zh}
sharpening,en,Do you sharpen knives?,"Yes: bring any kitchen knife, 20 yuan each, ready the next day."{sharpening_en}
sharpening,zh,可以磨刀吗？,可以，各种刀具都能开刃打磨，每把20元，第二天取。{sharpening_zh}
delivery,en,How long does delivery take?,Orders inside Wuhan arrive the same day; elsewhere in 2 to 4 days.{delivery_en}
delivery,zh,配送要多久？,武汉市内当天送达，外地2到4天。{delivery_zh}
returns,en,Can I return something?,Unused items can be returned within 7 days with the receipt.{returns_en}
returns,zh,可以退货吗？,未使用的商品凭小票7天内可以退货。{returns_zh}
"""
# The shop's own words for each question (the also_asked column), as an owner who has watched customers ask writes them.
ALSO_ASKED = {"hours_en": "what time do you close? | are you open on Sundays?", "hours_zh": "几点关门 | 周末开门吗",
              "sharpening_en": '"my cleaver has gone blunt, can you bring the edge back? | sharpen my chef knife?"',
              "sharpening_zh": "菜刀钝了切不动怎么办 | 刀不快了能帮忙弄一下吗",
              "delivery_en": "will it come today? | how many days to Changsha?", "delivery_zh": "今天能送到吗 | 寄到长沙几天",
              "returns_en": '"the pan is the wrong size, can I take it back? | changed my mind, can I bring it back?"',
              "returns_zh": "锅买大了能退吗 | 不想要了能退吗"}


@pytest.mark.parametrize(("question", "answer"), [
    ("My cleaver has gone blunt, can you help?", "20 yuan each"),
    ("菜刀钝了，切肉都切不动，你们能处理吗？", "每把20元"),
])
async def test_a_question_in_the_shops_own_words_for_an_entry_is_answered_by_it(db, real_engine, tmp_path, question,
                                                                                answer):
    """"Cleaver" and "blunt" are in no entry: without the shop's other wordings the message shares nothing with
    the knowledge and is steered back as small talk; with them it gets the sharpening answer."""
    replies = {}
    for also in (False, True):
        path = tmp_path / f"faq_{also}.csv"
        path.write_text(KITCHEN_SHOP.format(also=",also_asked" if also else "",
                                            **{k: f",{v}" if also else "" for k, v in ALSO_ASKED.items()}),
                        encoding="utf-8")
        config = replace(real_engine.config, knowledge=replace(real_engine.config.knowledge, file=path))
        service = ConversationService(db, real_engine, config)
        await service.start()
        replies[also] = await service.handle_text(Sender("console", str(also)), question)
    assert answer not in replies[False].reply
    assert answer in replies[True].reply and replies[True].alert is None
