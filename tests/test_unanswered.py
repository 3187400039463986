"""`shopbot kb unanswered`: the shop questions a person had to answer, listed for the owner to add to the knowledge."""

import csv
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.service import ConversationService, Sender
from bot.telegram.handlers.operator import stats_text
from tests.conftest import REPO, backdate, dump_config
from tests.test_knowledge import FIXTURE, knowledge_config

MONEY_BACK = "I want my money back for the tea I didn't like"  # the returns entry, in words it does not use
STAMP_CARD = "集章卡怎么领"  # how to get the stamp card: the loyalty entry, which says "下单时备注即可领取"
TEAPOTS = "Do you sell teapots?"  # nothing in the knowledge says


def kb(config_file: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "bot.cli", "kb", *args, "--config", str(config_file)],
                         capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    return run


async def test_the_questions_a_person_answered_are_listed_and_once_added_as_wordings_are_answered(
        db, tiny_engine, tiny_config, tmp_path):
    config = knowledge_config(tiny_engine.config, FIXTURE)
    service = ConversationService(db, tiny_engine, config)
    await service.start()
    asked = [MONEY_BACK, STAMP_CARD, TEAPOTS, "When is the tea shop open?", "What is the capital of Australia?",
             f"  {MONEY_BACK.upper()} ", MONEY_BACK]  # two more customers, the same words
    outcomes = [await service.handle_text(Sender("telegram", str(n)), text) for n, text in enumerate(asked)]
    assert [o.alert is not None for o in outcomes] == [True, True, True, False, False, True, True]
    # Every message the knowledge read keeps what it did, with the entry answered or shown as the closest
    kinds = [(m["knowledge_match"], m["knowledge_entry"]) for m in await db.knowledge_matches(0)]
    assert kinds == [("unsure", "returns"), ("unsure", "loyalty"), ("unsure", kinds[2][1]), ("answered", "hours"),
                     ("off_topic", None), ("unsure", "returns"), ("unsure", "returns")]
    # /stats counts them for the day (off-topic messages are no shop questions)
    counts = await db.knowledge_match_counts(0)
    assert counts == {"answered": 1, "unsure": 5, "off_topic": 1}
    stats = {"customers": 7, "messages": 7, "negative_share": 0.0, "alerts": 5, "alerts_delivered": 5}
    handoff = {"answer_waits": [], "corrections": 0, "open_takeovers": 0}
    assert ("Shop questions: 6; answered from the knowledge 1 (17%), handed over to a person 5; off-topic (steered "
            "back) 1\n") in stats_text(stats, handoff, [], {}, counts)
    assert "Shop questions" not in stats_text(stats, handoff, [], {}, {})  # no knowledge: nothing looked up
    await db.close()

    config_file = dump_config(tiny_config, tmp_path)
    listed = kb(config_file, "unanswered", "--csv", str(tmp_path / "unanswered.csv")).stdout
    assert "Shop questions in the last 30 days: 6; answered from the knowledge 1 (17%), handed over to a person " \
           "5 (3 different); off-topic (steered back) 1." in listed
    # Under its closest entry, the most handed-over first; one line per wording, with how often it came
    assert listed.index("returns:\n") < listed.index(f"  3×  [en] {MONEY_BACK}  (last ") < listed.index("loyalty:\n")
    assert f"  1×  [zh] {STAMP_CARD}" in listed and f"  1×  [en] {TEAPOTS}" in listed
    with (tmp_path / "unanswered.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [(r["closest"], r["lang"], r["asked"], r["question"]) for r in rows][0] == ("returns", "en", "3", MONEY_BACK)
    assert {r["question"] for r in rows} == {MONEY_BACK, STAMP_CARD, TEAPOTS}

    # The owner adds the two customers' wordings to their entries and imports the file again
    wordings = {"returns,en": MONEY_BACK, "loyalty,zh": STAMP_CARD}
    header, *rows = FIXTURE.read_text(encoding="utf-8").splitlines()
    faq = [f"{header},also_asked", *(f"{row},{wordings.get(','.join(row.split(',')[:2]), '')}" for row in rows)]
    (tmp_path / "faq.csv").write_text("\n".join(faq) + "\n", encoding="utf-8")
    kb(config_file, "import", str(tmp_path / "faq.csv"))
    again = kb(config_file, "unanswered", "--check-answered").stdout
    assert f"  returns  <-  {MONEY_BACK}" in again and f"  loyalty  <-  {STAMP_CARD}" in again
    still = again[again.index("Still handed over"):again.index("Answered now")]
    assert TEAPOTS in still and STAMP_CARD not in still and MONEY_BACK not in still
    # The question answered before is answered by the same entry: the wordings moved nothing
    assert "Answered otherwise now: 0 of the 1 different questions answered from the knowledge." in again

    # An edit that does move it: the hours entry taken out
    (tmp_path / "faq.csv").write_text("\n".join(r for r in faq if not r.startswith("hours,")) + "\n", encoding="utf-8")
    kb(config_file, "import", str(tmp_path / "faq.csv"))
    moved = kb(config_file, "unanswered", "--check-answered").stdout
    assert "Answered otherwise now: 1 of the 1 different questions answered from the knowledge." in moved
    assert "  hours -> " in moved and "<-  1×  [en] When is the tea shop open?" in moved
    # Without the model: as decided when they were asked
    stored = kb(config_file, "unanswered", "--no-recheck").stdout
    assert f"  3×  [en] {MONEY_BACK}  (last " in stored and "Answered now" not in stored


def test_kb_unanswered_says_what_is_wrong_with_a_date_or_a_missing_database(tiny_config, tmp_path):
    config_file = dump_config(tiny_config, tmp_path)
    for args, reason in [(["--since", "last week"], "--since 'last week' is not a date like 2024-05-31"),
                         (["--check-answered", "--no-recheck"], "--check-answered asks today's knowledge again"),
                         ([], f"no database at {tiny_config.storage.path}")]:
        run = subprocess.run([sys.executable, "-m", "bot.cli", "kb", "unanswered", *args, "--config", str(config_file)],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
        assert run.returncode == 2 and reason in run.stderr and "Traceback" not in run.stderr


async def test_kb_unanswered_reads_since_as_a_day_in_the_shops_timezone(db, tiny_config, tmp_path):
    """A Shanghai shop on a server kept in UTC: the owner's "since 1 March" is 1 March in Shanghai, the day the
    listed dates are printed in."""
    shanghai = ZoneInfo("Asia/Shanghai")
    asked = {TEAPOTS: datetime(2026, 3, 1, 1, 0, tzinfo=shanghai),  # 28 Feb 17:00 UTC
             STAMP_CARD: datetime(2026, 2, 28, 23, 0, tzinfo=shanghai)}  # 28 Feb 15:00 UTC
    for n, (text, at) in enumerate(asked.items()):
        message = await db.add_message((await db.customer("telegram", str(n))).id, "customer", text)
        await db.set_knowledge_match(message, "unsure", "loyalty")
        await backdate(db, message, at.timestamp())
    config_file = dump_config(tiny_config, tmp_path)
    with config_file.open("a", encoding="utf-8") as f:
        f.write('\n[hours]\ntimezone = "Asia/Shanghai"\nmon = "09:00-18:00"\n')
    listed = kb(config_file, "unanswered", "--since", "2026-03-01", "--no-recheck",
                env={**os.environ, "TZ": "UTC"}).stdout
    assert f"[en] {TEAPOTS}  (last 2026-03-01)" in listed and STAMP_CARD not in listed
