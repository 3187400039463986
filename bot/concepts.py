"""What a shop question asks about, as a few dozen shop intents, so different words for one intent meet.

A small model cannot tell "Do you buy back old furniture?" from the furniture warranty, nor see that "postage"
asks for the shipping cost. These intents (English word starts, Chinese substrings) are shop talk in general,
not one shop's FAQ: the FAQ's own entries get them from their text, and a question whose intent no entry has
(buy-back, rental, instalments...) is not answered by an entry that merely shares a word.
"""

from __future__ import annotations

import re

# intent: (English word starts, matched at a word boundary; Chinese substrings)
INTENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hours": (("open on", "open at", "open until", "opening", "are you open", "you open", "closed", "closing",
               "close on", "close at", "hours", "reach someone", "someone on", "available on", "weekday", "weekend",
               "saturday", "sunday", "public holiday"),
              ("营业", "上班", "下班", "开门", "关门", "在线", "有人", "客服时间", "周六", "周日", "星期", "节假日", "几点")),
    "delivery_time": (("arriv", "get to me", "reach me", "dispatch", "ship within", "delivery take"),
                      ("送达", "到货", "收到", "发货", "发出", "寄出", "送到")),
    "shipping_cost": (("shipping cost", "shipping fee", "delivery fee", "delivery cost", "postage", "free shipping",
                       "shipping free", "shipping is", "shipping within", "charge for delivery", "cost to send",
                       "how much is shipping", "how much to ship"),
                      ("运费", "邮费", "包邮", "快递费", "配送费")),
    "returns": (("return", "send back", "send something back", "send it back", "give it back", "give back",
                 "take it back", "no reason"),
                ("退货", "退回", "退换", "无理由", "能退", "可以退", "可退")),
    "refund": (("refund", "money back", "see the money", "get my money", "reimburs"),
               ("退款", "退钱", "钱多久", "钱几天", "钱能", "到账", "原路")),
    "payment": (("pay with", "pay by", "pay via", "pay using", "pay for", "payment", "alipay", "wechat", "visa", "mastercard", "unionpay", "paypal", "credit card", "debit card",
                 "bank card"),
                ("付款", "支付", "微信", "支付宝", "刷卡", "银联", "信用卡", "visa", "paypal", "mastercard")),
    "instalments": (("instal", "install", "monthly payment", "pay monthly", "pay later", "credit plan"),
                    ("分期", "月供", "先用后付")),
    "warranty": (("warrant", "guarantee", "covered", "repair"), ("保修", "质保", "保固", "维修")),
    "damaged": (("damag", "broken", "broke", "smash", "crack", "chip", "shatter", "dent", "scratch", "arrived in pieces"),
                ("坏", "碎", "破损", "裂", "缺口", "划痕", "磕", "变形")),
    "tracking": (("track", "where is my", "follow it", "follow my", "parcel been sent", "check my delivery",
                  "where my package", "where my parcel", "status of my"),
                 ("物流", "快递单号", "单号", "跟踪", "到哪", "查快递", "发出了吗")),
    "exchange": (("exchang", "swap", "trade", "instead of", "different size", "different colo", "bigger", "smaller",
                  "larger", "another size", "another colo", "doesn't fit", "don't fit", "too small", "too big"),
                 ("换", "尺码", "大一号", "小一号", "大一码", "小一码", "不合脚", "不合身")),
    "discount": (("discount", "% off", "reduced price", "cheaper", "anything off", "coupon", "promo"),
                 ("优惠", "打折", "折扣", "便宜", "优惠码", "优惠券")),
    "student": (("student", "universit", "college", "study at"), ("学生", "大学", "读书", "学校")),
    "invoice": (("invoice", "fapiao", "receipt", "tax id", "tax number", "vat"), ("发票", "税号", "收据", "抬头")),
    "location": (("where is your", "address", "showroom", "located", "physical store", "visit you", "in person",
                  "come and see", "come and look"),
                 ("地址", "展厅", "实体店", "门店", "线下", "实物")),
    "cancel": (("cancel", "call off", "stop my order", "undo my order", "ordered by mistake", "just ordered",
                "just placed"),
               ("取消", "撤销", "撤回", "下错", "刚下单", "刚下的单", "刚拍")),
    "gift_wrap": (("gift wrap", "gift-wrap", "wrap", "as a gift", "as a present", "present for"),
                  ("礼品包装", "包装成礼物", "礼物", "贺卡")),
    # Intents a shop may not cover: here so a question about them is not answered by a neighbouring entry.
    "buy_back": (("buy back", "buyback", "trade in", "trade-in", "sell you my", "second-hand", "second hand",
                  "used furniture", "old furniture"),
                 ("回收", "收购", "二手", "以旧换新")),
    "recycling": (("recycl", "take back the packaging", "packaging back"), ("回收包装", "包装回收", "环保")),
    "assembly": (("assembl", "installation", "set it up", "set up the", "mount"), ("安装", "组装", "上门装")),
    "rental": (("rent", "hire a", "lease", "borrow"), ("租", "借用")),
    "loyalty": (("loyalty", "points", "member", "reward", "vip"), ("积分", "会员", "vip")),
    "gift_card": (("gift card", "gift voucher", "voucher", "gift certificate"), ("礼品卡", "购物卡", "代金券", "储值卡")),
    "jobs": (("hiring", "job", "vacanc", "work for you", "employ", "career"),
             ("招聘", "招人", "招店员", "应聘", "兼职", "工作机会")),
    "accessibility": (("wheelchair", "accessib", "disabled", "step-free", "lift", "elevator"),
                      ("无障碍", "轮椅", "电梯")),
    "origin": (("made in", "where are they made", "manufactur", "produced in", "country of origin", "imported"),
               ("国产", "产地", "进口", "哪里生产", "哪里产")),
    "express": (("express", "air freight", "overnight", "same-day", "same day", "next-day", "next day", "faster shipping",
                 "urgent", "rush"),
                ("加急", "航空", "次日达", "当日达", "顺丰", "特快", "加快")),
    "custom": (("customi", "custom-made", "custom made", "custom order", "personalis", "personaliz", "engrav", "made to measure", "bespoke"),
               ("定制", "定做", "刻字", "私人订制")),
    "wholesale": (("wholesale", "bulk", "in large quantities", "for my business", "reseller", "distributor"),
                  ("批发", "大批量", "团购", "代理", "经销")),
    "price_match": (("price match", "match the price", "price guarantee", "price protection", "price drop"),
                    ("保价", "比价", "价保", "降价补差")),
    "pickup": (("pick up", "pick it up", "collect it", "click and collect", "pickup"), ("自提", "自取", "到店取")),
    "evening_delivery": (("evening", "at night", "after work", "weekend delivery", "deliver on a sunday",
                          "deliver on sunday", "deliver on a saturday"),
                         ("晚上", "夜间", "周末送", "周日晚上", "下班后")),
}

# Words that ask about an intent only when the text asks nothing more specific. "How long", "几天" alone ask when an
# order arrives ("How long until I get it?"); beside another intent they ask how long *that* takes ("退货期限是几天？"
# is about returns). "I don't want it" alone asks to send it back; "我刚下的单不想要了" asks to cancel.
WHEN_ALONE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "delivery_time": (("how long", "how soon", "how quickly", "when will", "when would", "working days", "take to"),
                      ("多久", "几天", "多长时间", "工作日")),
    "returns": (("changed my mind", "don't want it", "do not want it", "no longer want"), ("不想要", "不要了")),
}

# "After I pay" dates a question ("付款后多长时间发出？" asks when it ships), it does not ask about paying.
TIME_ANCHORS = ("after payment", "after paying", "after i pay", "after i paid", "once i pay", "once i've paid",
                "付款后", "支付后", "付完款", "付款以后", "下单后", "下单以后")


def _matcher(en: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in en) + ")")


_EN = {intent: _matcher(en) for intent, (en, _) in INTENTS.items()}
_WHEN_ALONE_EN = {intent: _matcher(en) for intent, (en, _) in WHEN_ALONE.items()}


def _mentions(folded: str, en: re.Pattern, zh: tuple[str, ...]) -> bool:
    """Whether a casefolded text has one of the English word starts or Chinese substrings."""
    return en.search(folded) is not None or any(w in folded for w in zh)


def intents(text: str) -> frozenset[str]:
    """The shop intents a text mentions (English by word starts, Chinese by substrings)."""
    folded = text.casefold()
    for anchor in TIME_ANCHORS:
        folded = folded.replace(anchor, " ")
    found = frozenset(intent for intent, (_, zh) in INTENTS.items() if _mentions(folded, _EN[intent], zh))
    return found or frozenset(intent for intent, (_, zh) in WHEN_ALONE.items()
                              if _mentions(folded, _WHEN_ALONE_EN[intent], zh))
