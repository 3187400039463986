"""Never wrong-language, never nonsense: small talk and a person instead of free chat, the language rule, notes."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from transformers import LlamaConfig, Qwen2Config

from bot.concepts import asks_anything
from bot.escalation import NO_ANSWER
from bot.lexicon import language_of
from bot.llm.loading import estimated_parameters
from bot.reply_evaluation import Question, evaluate_replies
from bot.reply_rules import SmallTalk, free_chat_allowed, small_talk
from bot.service import ConversationService, Sender
from testkit.fakes.engine import ScriptedEngine
from tests.test_knowledge import HOURS_EN, knowledge_config, one_fact

SMOLLM2_135M = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                           num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)
QWEN25_15B = Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, tie_word_embeddings=True)


def no_free_chat(config):
    return replace(config, chat=replace(config.chat, free_chat="off"))


@pytest.mark.parametrize("text, kind", [
    ("Hi!", SmallTalk.GREETING), ("hello there :)", SmallTalk.GREETING), ("您好！", SmallTalk.GREETING),
    ("在吗？", SmallTalk.GREETING), ("Thanks a lot!", SmallTalk.THANKS), ("hi, thank you 😊", SmallTalk.THANKS),
    ("好的，谢谢", SmallTalk.THANKS), ("ok", SmallTalk.THANKS),
    ("謝謝！", SmallTalk.THANKS), ("在嗎？", SmallTalk.GREETING),  # Traditional script meets the same phrases
    ("亲，在吗", SmallTalk.GREETING), ("客服在吗？", SmallTalk.GREETING), ("谢谢老板！", SmallTalk.THANKS),
    ("嗯嗯", SmallTalk.THANKS), ("亲，这个有货吗", SmallTalk.REQUEST),  # how Chinese customers address a shop
    ("ok cool", SmallTalk.THANKS), ("got it, ty!", SmallTalk.THANKS), ("明白了", SmallTalk.THANKS),
    ("Is it nice?", SmallTalk.REQUEST), ("Hello, is anyone there?", SmallTalk.GREETING),
    ("I have a question", SmallTalk.GREETING), ("我想咨询一下", SmallTalk.GREETING), ("请问有人在吗", SmallTalk.GREETING),
    ("I have a question about my refund", SmallTalk.REQUEST), ("想问一下运费多少", SmallTalk.REQUEST),
    ("Hi! Are you open on Sundays?", SmallTalk.REQUEST), ("你好，我的订单到哪了？", SmallTalk.REQUEST),
    ("thanks, but the lamp is broken", SmallTalk.REQUEST), ("this", SmallTalk.REQUEST), ("?", SmallTalk.REQUEST),
    # Closing words: declining more help, thinking it over, a thumbs-up
    ("no thanks", SmallTalk.THANKS), ("No, that’s all!", SmallTalk.THANKS), ("nvm", SmallTalk.THANKS),
    ("ok I'll think about it", SmallTalk.THANKS), ("nothing else, have a nice day", SmallTalk.THANKS),
    ("👍", SmallTalk.THANKS), ("👍🏻", SmallTalk.THANKS), ("没事了", SmallTalk.THANKS), ("不用了，谢谢", SmallTalk.THANKS),
    ("好的，我考虑一下", SmallTalk.THANKS), ("那我再想想", SmallTalk.THANKS), ("没有了", SmallTalk.THANKS),
    ("好吧", SmallTalk.THANKS), ("no", SmallTalk.REQUEST), ("不好", SmallTalk.REQUEST),
    ("never mind, my parcel still hasn't come", SmallTalk.REQUEST), ("不用的话能退吗", SmallTalk.REQUEST),
])
def test_small_talk_is_only_greetings_or_thanks_with_nothing_else(tiny_config, text, kind):
    assert small_talk(text, tiny_config.knowledge.languages[language_of(text)]) is kind


def test_auto_free_chat_is_off_for_the_embedded_size_and_on_for_a_15b_model_or_a_server_that_does_not_say():
    small, large = estimated_parameters(SMOLLM2_135M), estimated_parameters(QWEN25_15B)
    assert not free_chat_allowed("auto", small)
    assert free_chat_allowed("auto", large)
    assert free_chat_allowed("auto", None)  # a server that does not say its size: the shop chose it to chat
    assert free_chat_allowed("on", small) and not free_chat_allowed("off", large)


async def test_without_knowledge_and_free_chat_greetings_and_thanks_get_texts_and_the_rest_a_person(db, tiny_engine,
                                                                                                    monkeypatch):
    config = no_free_chat(tiny_engine.config)
    engine = ScriptedEngine(tiny_engine)
    service = ConversationService(db, engine, config)
    await service.start()
    en, zh = config.knowledge.languages["en"], config.knowledge.languages["zh"]
    ann, li = Sender("console", "ann"), Sender("console", "li")

    assert (await service.handle_text(ann, "Hello!")).reply == en.greeting_reply
    question = await service.handle_text(ann, "Do you have the oak side table in stock?")
    assert question.reply == en.follow_up_reply and question.alert.reason == NO_ANSWER
    assert (await service.handle_text(li, "你好")).reply == zh.greeting_reply
    chinese = await service.handle_text(li, "可以寄到澳门吗？")
    assert chinese.reply == zh.follow_up_reply and chinese.alert.reason == NO_ANSWER
    assert (await service.handle_text(li, "谢谢！")).reply == zh.thanks_reply
    assert engine.histories == []  # the model wrote nothing

    # One note per waiting customer: more questions add none while the first is unanswered, even after the
    # alert cooldown; once an operator has answered, a later question is a new conversation.
    again = await service.handle_text(ann, "And is the rattan chair for outdoor use?")
    assert again.reply == en.follow_up_reply and again.alert is None
    start = time.time()
    monkeypatch.setattr(time, "time", lambda: start + 2 * 3600)
    assert (await service.handle_text(ann, "Hello? Anyone there about the chair?")).alert is None
    await service.handoff.operator_turn(question.customer.id, "Yes, we have it.")
    monkeypatch.setattr(time, "time", lambda: start + 4 * 3600)
    later = await service.handle_text(ann, "Could you also send me the dimensions?")
    assert later.alert is not None and later.alert.reason == NO_ANSWER
    assert [a["reason"] for a in await db.alerts(question.customer.id)] == [NO_ANSWER, NO_ANSWER]


async def test_with_knowledge_greetings_and_thanks_get_texts_not_the_steer_back_to_shop_questions(db, tiny_engine,
                                                                                                 tmp_path):
    config = knowledge_config(tiny_engine.config, one_fact(tmp_path))
    service = ConversationService(db, tiny_engine, config)
    await service.start()
    en, zh = config.knowledge.languages["en"], config.knowledge.languages["zh"]
    ann, li = Sender("console", "ann"), Sender("console", "li")
    assert (await service.handle_text(ann, "Hi there!")).reply == en.greeting_reply
    assert (await service.handle_text(ann, "When is the tea shop open?")).reply.startswith("The Green Kettle tea shop")
    assert (await service.handle_text(ann, "ok thanks, bye")).reply == en.thanks_reply
    assert (await service.handle_text(li, "在吗？")).reply == zh.greeting_reply
    assert (await service.handle_text(li, "好的，谢谢")).reply == zh.thanks_reply
    assert (await service.handle_text(ann, "Who won the football last night?")).reply == en.off_topic_reply


@pytest.mark.parametrize("knowledge", [True, False])
async def test_praise_that_asks_nothing_is_thanked_not_answered_from_the_knowledge_nor_handed_over(db, tiny_engine,
                                                                                                 tmp_path, knowledge):
    """收到了 shares 收 with delivery entries: 95 of 220 such messages got an entry surely, 56 went to a person."""
    praise = {"收到了，很喜欢，谢谢老板": ("praise", 0.99), "The tea shop was lovely today, thank you!": ("praise", 0.99),
              "Lovely tea! When is the tea shop open?": ("praise", 0.9)}
    engine = ScriptedEngine(tiny_engine, intents=praise, sentiments={text: ("positive", 0.99) for text in praise})
    config = knowledge_config(no_free_chat(tiny_engine.config), one_fact(tmp_path) if knowledge else None)
    service = ConversationService(db, engine, config)
    await service.start()
    en, zh = config.knowledge.languages["en"], config.knowledge.languages["zh"]
    for text, thanks in [("收到了，很喜欢，谢谢老板", zh.thanks_reply),
                         ("The tea shop was lovely today, thank you!", en.thanks_reply)]:
        outcome = await service.handle_text(Sender("console", text), text)
        assert outcome.reply == thanks and outcome.alert is None, text
    if knowledge:  # praise beside a question: the question is answered
        asked = await service.handle_text(Sender("console", "ann"), "Lovely tea! When is the tea shop open?")
        assert asked.reply == en.wrap.format(answer=HOURS_EN)


def test_a_question_is_a_clause_that_asks_in_either_chinese_script():
    assert asks_anything("Love it! Do you have it in blue") and asks_anything("質量很好，可以開發票嗎")
    assert not asks_anything("收到了，很喜欢！谢谢老板") and not asks_anything("Great service as always.")


@pytest.mark.parametrize("free_chat, knowledge", [("off", False), ("on", False), ("off", True)])
async def test_a_goodbye_read_as_negative_alerts_no_one_and_a_complaint_still_does(db, tiny_engine, tmp_path,
                                                                                   free_chat, knowledge):
    """The embedded head read "bye" negative (0.74), 再见 very negative (0.90), "no thanks" 0.98: every goodbye and every
    polite "no" paged the operators."""
    negative = ("negative", 0.95)
    engine = ScriptedEngine(tiny_engine, sentiments={"Bye!": negative, "再见": negative, "ok bye": negative,
                                                     "no thanks": ("negative", 0.98), "没事了": ("negative", 0.97),
                                                     "This is useless, nobody ever answers": negative},
                            replies={"Bye!": "Goodbye!", "ok bye": "Goodbye!", "no thanks": "Goodbye!"})
    config = replace(tiny_engine.config, chat=replace(tiny_engine.config.chat, free_chat=free_chat))
    config = knowledge_config(config, one_fact(tmp_path) if knowledge else None)
    service = ConversationService(db, engine, config)
    await service.start()
    ann, li = Sender("console", "ann"), Sender("console", "li")
    for sender, text in [(ann, "Bye!"), (li, "再见"), (ann, "ok bye"), (ann, "no thanks"), (li, "没事了")]:
        outcome = await service.handle_text(sender, text)
        assert outcome.alert is None and outcome.sentiment.label == "negative", text  # stored as read
    complaint = await service.handle_text(ann, "This is useless, nobody ever answers")
    assert complaint.alert is not None and complaint.alert.label == "negative"


@pytest.mark.parametrize("intent_alerts", [True, False])
async def test_a_message_read_as_asking_for_a_person_is_told_one_is_coming_rather_than_steered_back(
        db, tiny_engine, tmp_path, intent_alerts):
    """"Is there somebody real I could chat with?" is no shop question; read as asking for a person, it alerts the
    operators, so the customer hears a person was asked, not "I can only help with questions about our shop". Without
    that alert, the steer."""
    text = "Is there somebody real I could chat with?"
    engine = ScriptedEngine(tiny_engine, intents={text: ("human", 0.9)}, sentiments={text: ("neutral", 0.9)})
    config = knowledge_config(tiny_engine.config, one_fact(tmp_path))
    config = replace(config, alerts=replace(config.alerts, always_alert_intents=("human",) if intent_alerts else ()))
    service = ConversationService(db, engine, config)
    await service.start()
    outcome = await service.handle_text(Sender("console", "ann"), text)
    if intent_alerts:
        assert outcome.reply == config.handoff.human_reply.for_lang("en") and outcome.alert.reason == "intent human"
    else:
        assert outcome.reply == config.knowledge.languages["en"].off_topic_reply and outcome.alert is None


async def test_an_off_topic_message_that_alerts_by_its_mood_is_told_a_person_was_asked(db, tiny_engine, tmp_path):
    """"thanks for nothing, this is a joke" shares no word with the knowledge, yet it alerts the operators: the
    customer hears a person was asked, not "I can only help with questions about our shop"."""
    angry, sulky = "thanks for nothing, this is a joke", "meh, whatever"
    engine = ScriptedEngine(tiny_engine, sentiments={angry: ("negative", 0.98), sulky: ("negative", 0.5)},
                            intents={angry: ("complaint", 0.9), sulky: ("other", 0.9)})
    config = knowledge_config(tiny_engine.config, one_fact(tmp_path))
    service = ConversationService(db, engine, config)
    await service.start()
    outcome = await service.handle_text(Sender("console", "ann"), angry)
    assert outcome.reply == config.handoff.human_reply.for_lang("en") and outcome.alert.label == "negative"
    below_threshold = await service.handle_text(Sender("console", "bob"), sulky)
    assert below_threshold.reply == config.knowledge.languages["en"].off_topic_reply and below_threshold.alert is None


async def test_a_model_reply_not_in_the_customers_language_is_never_sent_nor_shown(db, tiny_engine):
    engine = ScriptedEngine(tiny_engine, replies={
        "我的投诉你们处理了吗？": "Happy New Year! We wish you all the best.",
        "Is the shop open today?": "Hello, how can I help?", "好的谢谢": "👍"})
    config = replace(tiny_engine.config, chat=replace(tiny_engine.config.chat, free_chat="on", same_language_only=True))
    service = ConversationService(db, engine, config)
    await service.start()
    shown: list[str] = []
    outcome = await service.handle_text(Sender("console", "li"), "我的投诉你们处理了吗？", on_partial=shown.append)
    assert outcome.reply == config.knowledge.languages["zh"].follow_up_reply
    assert outcome.alert is not None and outcome.alert.reason == NO_ANSWER
    assert shown == []  # not even as a draft
    english = await service.handle_text(Sender("console", "ann"), "Is the shop open today?")
    assert english.reply == "Hello, how can I help?" and english.alert is None  # the same language is sent
    thumbs = await service.handle_text(Sender("console", "wu"), "好的谢谢")
    assert thumbs.reply == "👍" and thumbs.alert is None  # no letters, no language: not a wrong one


async def test_a_model_reply_reaches_a_traditional_script_customer_in_her_script_drafts_included(db, tiny_engine):
    engine = ScriptedEngine(tiny_engine, replies={"我的訂單到哪了？": "好的，我们马上为您 查询订单。"})
    config = replace(tiny_engine.config, chat=replace(tiny_engine.config.chat, free_chat="on"))
    service = ConversationService(db, engine, config)
    await service.start()
    shown: list[str] = []
    outcome = await service.handle_text(Sender("console", "mei"), "我的訂單到哪了？", on_partial=shown.append)
    assert shown == ["好的，我們馬上為您", "好的，我們馬上為您 查詢訂單。"]
    assert outcome.reply == "好的，我們馬上為您 查詢訂單。"


async def test_eval_replies_without_knowledge_counts_the_replies_that_make_up_shop_facts(db, tiny_engine):
    engine = ScriptedEngine(tiny_engine, replies={
        "When do you open?": "We are open 9am to 5pm every day.",
        "你們幾點開門？": "我們的營業時間是每天上午。",  # Traditional script: the same made-up fact
        "Can you help me?": "Of course, what do you need?"})
    config = replace(tiny_engine.config, chat=replace(tiny_engine.config.chat, free_chat="on"))
    service = ConversationService(db, engine, config)
    await service.start()
    report = await evaluate_replies(service, [Question("en", "When do you open?", (), "unknown"),
                                              Question("zh", "你們幾點開門？", (), "unknown"),
                                              Question("en", "Can you help me?", (), "off_topic")])
    assert [r["made_up_facts"] for r in report["rows"]] == [True, True, False]
    assert report["made_up_facts"] == 2


async def test_a_chinese_customer_who_sends_an_order_number_or_an_emoji_is_answered_in_chinese(db, tiny_engine):
    # Digits are no letters, and a message of none (a number, an emoji, whitespace) says nothing of the language:
    # the customer's last words do.
    config = no_free_chat(tiny_engine.config)
    service = ConversationService(db, ScriptedEngine(tiny_engine), config)
    await service.start()
    zh, li = config.knowledge.languages["zh"], Sender("console", "li")
    assert (await service.handle_text(li, "订单号 20261203001")).reply == zh.follow_up_reply
    assert (await service.handle_text(li, "我的订单202612030015呢")).reply == zh.follow_up_reply
    assert (await service.handle_text(li, "20261203001")).reply == zh.follow_up_reply
    assert (await service.handle_text(li, "👍👍")).reply == zh.thanks_reply  # a thumbs-up closes, in her language
    assert (await service.handle_text(li, "🤔")).reply == zh.follow_up_reply
    assert (await service.handle_text(li, " \n ")).reply == config.chat.empty_reply.for_lang("zh")
    assert (await service.handle_text(li, "\u200b\u200d")).reply == config.chat.empty_reply.for_lang("zh")  # invisible
    assert language_of("12345") == "en"  # a first message with no letters: English, as before


async def test_a_chinese_customer_who_names_a_product_in_latin_letters_is_answered_in_chinese(db, tiny_engine):
    # "MacBook Air 保修吗" has more Latin letters than Chinese characters, but no English sentence: a first message
    # like it got the English text before.
    config = no_free_chat(tiny_engine.config)
    service = ConversationService(db, ScriptedEngine(tiny_engine), config)
    await service.start()
    languages = config.knowledge.languages
    assert (await service.handle_text(Sender("console", "wang"), "MacBook Air 保修吗")).reply == \
        languages["zh"].follow_up_reply
    assert (await service.handle_text(Sender("console", "anna"), "can i pay 支付宝")).reply == \
        languages["en"].follow_up_reply


async def test_with_knowledge_an_order_number_after_chinese_words_gets_a_chinese_text(db, tiny_engine, tmp_path):
    faq = tmp_path / "faq.csv"
    faq.write_text("id,lang,question,answer\nhours,en,When is the tea shop open?,Tuesday to Sunday.\n"
                   "hours,zh,茶叶店几点营业？,周二至周日。\n", encoding="utf-8")
    config = replace(tiny_engine.config, knowledge=replace(tiny_engine.config.knowledge, file=faq))
    service = ConversationService(db, ScriptedEngine(tiny_engine), config)
    await service.start()
    zh, li = config.knowledge.languages["zh"], Sender("console", "li")
    await service.handle_text(li, "你好，我想查一下订单")
    # It follows up her order question: a person looks it up, and she is told so in Chinese.
    assert (await service.handle_text(li, "20261203001")).reply.startswith(zh.unsure_reply.split("{answer}")[0])
