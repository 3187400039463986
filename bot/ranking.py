"""How well each knowledge entry of a language matches a message: the retrieval signals weighted and added, and
when the best entry surely answers it (used by bot/knowledge.py, and by bot/retrieval_choice.py to measure a model)."""

from __future__ import annotations

import numpy as np

from bot.concepts import (DELIVERY, FRAMES, arrived, asked, asked_for, asks_anything, extended_to, intents,
                          offers_delivery, thing_served)
from bot.config import SignalWeights
from bot.lexicon import Lexicon
from storage.db import KnowledgeEntry


class Language:
    """One language's entries, their lexicon, shop intents and token vectors."""

    def __init__(self, entries: list[KnowledgeEntry], vectors: list[np.ndarray]):
        self.entries, self.vectors = entries, vectors
        self.lexicon = Lexicon([f"{e.asked_as} {e.answer}" for e in entries])
        self.intents = [intents(f"{e.asked_as} {e.answer}", alone_words=False) for e in entries]
        # What an entry is about is what its question (and the shop's other wordings of it) asks; its answer's
        # passing mentions (a refund "back to the original payment method") count half, so they do not tie it with
        # the entry that is about them. A question asks it as far as the entry speaks of it: "配送需要多长时间？" asks
        # about delivery time (its answer says when bikes arrive), "How long does the battery last?" does not (its
        # answer says nothing of delivery). A question whether the shop delivers at all asks about delivery as a whole.
        self.topics = [(intents(e.asked_as) | (DELIVERY if offers_delivery(e.asked_as) else frozenset())) & spoken
                       - FRAMES for e, spoken in zip(entries, self.intents)]
        self.covered = frozenset().union(*self.intents)  # every intent some entry speaks of


def jaccard(a: frozenset, b: frozenset) -> float:
    """How much two sets of intents overlap: shared over all (0 when both are empty)."""
    return len(a & b) / (len(a | b) or 1)


def z_scores(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean()) / (scores.std() + 1e-9)


def first_scores(known: Language, text: str, asks: frozenset[str], query: np.ndarray | None,
                 w: SignalWeights) -> np.ndarray:
    """(entries,) the cheap first pass: lexical, intent and token-vector z-scores, weighted and added."""
    first = np.zeros(len(known.entries))
    if w.lexical:
        first += w.lexical * z_scores(np.array(known.lexicon.scores(text)))
    if w.intents:  # Jaccard overlap of the shop intents asked and those each entry's question, then whole text, has
        first += w.intents * z_scores(np.array([jaccard(asks, topic) + jaccard(asks, spoken)
                                                for topic, spoken in zip(known.topics, known.intents)]))
    if w.tokens and query is not None:
        first += w.tokens * z_scores(token_similarities(query, known.vectors))
    return first


def token_similarities(query: np.ndarray, vectors: list[np.ndarray]) -> np.ndarray:
    """(entries,) each query word's closest entry word, averaged (query: (q, hidden), rows unit length)."""
    return np.array([float((query @ v.T).max(axis=1).mean()) if len(query) and len(v) else 0.0 for v in vectors])


def candidates(first: np.ndarray, count: int) -> np.ndarray:
    """The indices of the `count` best first-pass scores, best first (ties in entry order)."""
    return np.argsort(-first, kind="stable")[:count]


def agreed_entry(known: Language, asks: frozenset[str], candidates: np.ndarray) -> int | None:
    """The one candidate that alone covers what the message asks, if there is one. Either its question asks just
    that and no other candidate's question asks any of it ("Can I come and see the furniture in person?" -> the
    address entry, the warranty entry close behind on "furniture"; "Where's my parcel? ordered on Tuesday" ->
    tracking, the cancel entry ahead on "order"); or, when no question asks just that, its question asks part of
    it and its text speaks of the rest ("Will my refund go back to my Alipay?" -> the refund entry, whose answer
    names the payment method, not the payment entry). Failing both, when the message asks several things, the one
    candidate about part of them whose text speaks of all: an entry's question may say more than the message ("My
    item arrived damaged" answers "If it shows up smashed, a new one or my money back?"). Not for a single ask: the
    student entry is about discounts, but "any discount?" asks about everyone's."""
    exact = [int(i) for i in candidates if asks and known.topics[i] == asks]
    if exact:
        alone = len(exact) == 1 and not any(asks & known.topics[i] for i in candidates if i != exact[0])
        return exact[0] if alone else None
    covering = [int(i) for i in candidates if known.topics[i] and known.topics[i] <= asks <= known.intents[i]]
    if not covering and len(asks) > 1:
        covering = [int(i) for i in candidates if known.topics[i] & asks and asks <= known.intents[i]]
    return covering[0] if len(covering) == 1 else None


# A damage or a fault told beside another question is that question's premise ("the drawer runner broke - is it still
# under warranty?", "the kettle stopped heating, can I still return it?"), not something asked of the entry.
PREMISES = frozenset({"damaged", "fault"})
# A premise that need not be in the knowledge at all: shops write of damage ("if it arrives damaged") but rarely that
# goods stop working, so a fault beside a return question still lets the returns entry answer.
UNWRITTEN_PREMISES = frozenset({"fault"})


def asked_of_entry(asks: frozenset[str], questions: frozenset[str]) -> frozenset[str]:
    """What an answering entry must speak of: the intents of the message's questions (`questions`), as far as the
    whole message reads them (`asks`: a clause's "how long" alone is no delivery question beside a damage report),
    without a premise beside another question."""
    wanted = questions & asks
    return wanted - PREMISES if len(wanted) > 1 else wanted


def answers_the_questions(known: Language, asks: frozenset[str], questions: frozenset[str],
                          candidates: np.ndarray) -> int | None:
    """The one candidate about something the message says whose text speaks of what its questions ask, if no other
    such candidate speaks of any of it (`questions`: the intents of the message's questions, each clause read
    alone). "台灯寄回去了，物流显示你们签收了，钱啥时候能回来？" -> the refund entry, not tracking; "花瓶收到就碎了，钱能退
    吗？" -> none: the damaged entry speaks of refunds too."""
    about = [int(i) for i in candidates if known.topics[i] and known.topics[i] <= asks and questions & known.intents[i]]
    return about[0] if len(about) == 1 and questions <= known.intents[about[0]] else None


def speaks_of_the_problem(known: Language, text: str, asks: frozenset[str], candidates: np.ndarray) -> int | None:
    """A problem told alone where no entry is about it: the one candidate whose text speaks of it. A damage found on
    arrival ("bag came split open and beans all over the box, what now" -> the returns entry that says "if your order
    arrives damaged, leaking or wrong"), not one of the customer's own doing ("dropped my phone and the screen is
    smashed, cost to fix?": a warranty entry that excludes accidents speaks of damage too); or goods that stopped
    working ("the kettle i bought from u stopped heating after 5 months" -> the equipment entry that gives their
    warranty)."""
    damage_found = asks == {"damaged"} and arrived(text)
    if not (damage_found or asks == {"fault", "warranty"}):
        return None
    wanted = asks - UNWRITTEN_PREMISES
    if any(wanted & topics for topics in known.topics):
        return None
    speaking = [int(i) for i in candidates if wanted <= known.intents[i]]
    return speaking[0] if len(speaking) == 1 else None


# Chinese characters of an entry's that relate a message to it though no pair of them does: Chinese puts words between
# the characters of a phrase (袖子有点长，能改吗 asks for the entry's 改袖长, "shortening sleeves").
SHARED_CHARACTERS = 3

# Intents that name a group of customers: an entry about one's own offer answers only a message from or about that
# group. "能便宜点吗" asks for a discount for anyone, and a student discount may be the only discount a shop names.
# (Members are no such group: a membership entry is about the membership itself, asked of without the word,
# "does the card balance expire?")
GROUPS = frozenset({"student"})

# A warranty, returns or exchange policy is for the goods it names: "do u repair jackets too?" is not answered by an
# entry for tents and backpacks. (A membership asked of "too", "can my wife use my card too?", is about who.)
NAMES_THE_GOODS = frozenset({"warranty", "returns", "exchange"})

# How much of a thing asked for by name an answering entry must name, more than: "plus sizes like XXXL" in a size
# guide that says "sizes" is a third, "Oakley sunglasses" where only sunglasses are named a half.
NAMED_SHARE = 0.5


def verdict(known: Language, text: str, asks: frozenset[str], first: np.ndarray, candidates: np.ndarray,
            w_likelihood: float, likelihood: np.ndarray | None, sure_margin: float) -> tuple[int, bool]:
    """The best entry among `candidates` after the likelihood re-read ((candidates,) or None: not read), or the one
    the intents agree on, and whether it surely answers the message (`asks`: the intents of the whole message)."""
    final = first[candidates]  # z-scores over every entry: a strong first-pass lead survives the re-read
    if likelihood is not None and len(candidates) > 1:
        final = final + w_likelihood * z_scores(likelihood)
    order = np.argsort(-final)
    margin = float(final[order[0]] - final[order[1]]) if len(order) > 1 else float("inf")
    # The entry the intents agree on answers, even where the scores prefer a neighbour or are close. Where no entry
    # covers the whole message, its questions alone may agree on one: the story told before them ("物流显示前天你们签收了")
    # names other intents than the question asks.
    agreed = agreed_entry(known, asks, candidates)
    questions = asked(text)
    if agreed is None:
        agreed = answers_the_questions(known, asks, questions, candidates)
    if agreed is None:
        agreed = speaks_of_the_problem(known, text, asks, candidates)
    best = int(candidates[order[0]]) if agreed is None else agreed
    # Sure takes all of these. The scores clearly prefer the entry, or the intents agree on it. The entry shares
    # a word or an intent with the message. The message asks nothing the knowledge never speaks of: "Do you
    # buy back old furniture?" shares "furniture" with the warranty entry, but buying back is in no entry, so a
    # person answers. (The model alone is sure of unrelated entries too: "Do you sell used cars?" -> delivery.)
    # And an entry whose question asks about something answers only a message that asks some of it: in a shop
    # with no returns entry, "Can I give it back?" leads to the refund entry, whose answer mentions returns in
    # passing, but the customer asked about returning, not about refunds (a message that only says how it asks, "do
    # you stock any?", asks about nothing in particular; nor, about a group's offer, one that does
    # not name the group: GROUPS). The entry speaks of all that the message's questions ask: "Who pays the postage
    # when I send a return back?" is about returns, but the returns entry says nothing of postage (the shipping cost
    # entry does, for orders): no entry answers both. Last, where no intent is read (or only how it is asked: "do you
    # carry"), an entry answers a question for one thing by name only if it names more than half of the name's words:
    # the sunglasses entry that names no brand does not answer "Do you have Gentle Monster sunglasses?", nor the
    # screen protector entry 贴膜有防窥膜吗 (a privacy film).
    # Nor, asked for a service, does an entry that names the thing it is done to but not the word that narrows it:
    # the gold ring resizing entry does not answer "Can you resize a titanium ring?", nor city bike rental "Do you
    # rent tandem bikes?". And a message that asks nothing and names no intent is a story whose question may be still
    # to come, or a problem told without one: "hi, I ordered a lamp 3 days ago" got the refund entry, "it still
    # hasn't shipped" the cancel entry ("until the order ships"); a person reads it. Nor does a warranty, returns or
    # exchange entry answer whether its rule holds "too" for goods it does not name (NAMES_THE_GOODS).
    related = (known.lexicon.shares_a_term(text, best) or bool(asks & known.intents[best])
               or known.lexicon.shared_characters(text, best) >= SHARED_CHARACTERS)
    for_a_group = bool(known.topics[best] & GROUPS - asks)  # the entry's offer is for a group the message does not name
    about = ((agreed is not None or not asks - FRAMES or not known.topics[best] or bool(asks & known.topics[best]))
             and not for_a_group)
    spoken_of = ((asks - UNWRITTEN_PREMISES or asks) <= known.covered
                 and asked_of_entry(asks, questions) <= known.intents[best])
    name = () if asks - FRAMES else asked_for(text)
    named = not name or known.lexicon.share_named(name, best) > NAMED_SHARE
    thing = thing_served(text)
    narrower = (len(thing) > 1 and known.lexicon.share_named(thing[-1:], best) == 1
                and known.lexicon.share_named(thing[:-1], best) == 0)
    told_only = not asks and not asks_anything(text)
    extended = extended_to(text) if asks & NAMES_THE_GOODS else ()
    named_too = not extended or known.lexicon.share_named(extended, best) > 0
    return best, ((margin >= sure_margin or agreed is not None) and related and about and spoken_of and named
                  and not narrower and not told_only and named_too)
