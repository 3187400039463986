"""What a customer wants: the intent labels, one reading of a message, and the keyword reading (no model)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.llm.sentiment_scores import Sentiment

INTENTS = ("order_status", "shipping", "return_refund", "product", "payment_invoice", "complaint", "praise", "human",
           "other")
# A keyword match is a guess, not a probability: below alerts.threshold's default so it reads as "unsure".
KEYWORD_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Intent:
    label: str  # one of INTENTS
    confidence: float  # probability of `label` under the head; KEYWORD_CONFIDENCE for a keyword match
    from_keywords: bool = False  # a keyword guess, not the model's reading ("other" then only means no keyword)


@dataclass(frozen=True)
class Reading:
    """One customer message read once: how it feels and what it wants (the same forward pass on a local model)."""

    sentiment: Sentiment
    intent: Intent


# Words and phrases that name an intent, English and Chinese; the label with most matches wins, ties in INTENTS
# order (order_status before shipping: "where is my parcel" is about an order placed already). Written for
# shopbot; the baseline the intent head is measured against (README, "Intents") and the remote backend's reading.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "order_status": (r"\bwhere('?s| is)\b.*\b(order|parcel|package|stuff)", r"\btracking\b", r"\btrack\b",
                     r"\bshipped\b", r"\bdispatched?\b", r"\border (status|number)\b", r"\bmy order\b",
                     r"\bin transit\b", r"\bout for delivery\b", r"\bany (news|update)\b", r"\bstill (haven'?t|not)\b",
                     "物流", "单号", "发货了", "发了没", "发了吗", "到哪", "订单状态", "签收", "派送", "寄出", "出库",
                     "快递到", "我的订单", "还没收到", "没收到"),
    "shipping": (r"\bship(ping)? to\b", r"\bdeliver(y)? to\b", r"\bshipping (cost|fee|option|rate)s?\b",
                 r"\bfree (shipping|delivery)\b", r"\bexpress\b", r"\bpostage\b", r"\bcourier\b", r"\bhow long\b.*\b(take|deliver)",
                 r"\bdelivery (time|day|option)s?\b", r"\bpick ?up\b", r"\bdo you (ship|deliver|post)\b",
                 r"\bcustoms dut", "运费", "包邮", "邮费", "能寄", "能发", "寄到", "发到", "送到", "几天能到",
                 "多久到", "顺丰", "快递公司", "自提", "加急", "次日达", "关税"),
    "return_refund": (r"\breturn", r"\brefund", r"\bexchange\b", r"\bswap\b", r"\bsend (it )?back\b", r"\bmoney back\b",
                      r"\bcancel\b", r"\bstore credit\b", "退货", "退款", "退钱", "换货", "换成", "换一", "取消订单",
                      "退回", "售后", "能退", "退差价", "仅退款"),
    "product": (r"\bin stock\b", r"\brestock", r"\bsize\b", r"\bcolou?rs?\b", r"\bmaterial\b", r"\bmade of\b",
                r"\bwaterproof\b", r"\bdishwasher\b", r"\bdoes (it|the)\b", r"\bis (it|the|this)\b", r"\bfit\b",
                r"\bcompatible\b", r"\bwarranty\b", r"\bdimensions?\b", "尺码", "颜色", "材质", "库存", "补货",
                "多大", "容量", "适合", "能放", "防水", "有没有"),
    "payment_invoice": (r"\bpa(y|id|yment)\b", r"\binvoice", r"\breceipt\b", r"\bcharged?\b", r"\bcard\b",
                        r"\bvat\b", r"\btax\b", r"\bpaypal\b", r"\balipay\b", r"\bwechat pay\b", r"\bcheckout\b",
                        r"\bcoupon\b", r"\bdiscount code\b", r"\bbilling\b", "付款", "支付", "发票", "收据", "扣款",
                        "扣了", "扣钱", "银行卡", "信用卡", "花呗", "转账", "税", "优惠券", "结账", "账单"),
    "complaint": (r"\bbroken\b", r"\bdamaged\b", r"\bdisappoint", r"\bterrible\b", r"\bawful\b", r"\bworst\b",
                  r"\bunacceptable\b", r"\brude\b", r"\bridiculous\b", r"\brubbish\b", r"\bscam\b", r"\bcheap\b",
                  r"\bpoor\b", r"\bnot happy\b", r"\bunhappy\b", r"\bangry\b", r"\bfed up\b", r"\bcracked\b",
                  r"\bmissing\b", r"\bleaks?\b", r"\bwrong\b", r"\bwaste\b", r"\bannoy", r"\bfrustrat", "碎", "坏",
                  "太差", "失望", "垃圾", "态度", "过分", "离谱", "被骗", "骗子", "气死", "受够", "不满", "生气",
                  "劣质", "坑", "破损", "漏", "少了", "恶心"),
    "praise": (r"\bthanks?\b", r"\bthank you\b", r"\bgreat\b", r"\blove\b", r"\bamazing\b", r"\bperfect\b",
               r"\bexcellent\b", r"\bbeautiful\b", r"\blovely\b", r"\bawesome\b", r"\bappreciate", r"\bhappy with\b",
               r"\bcheers\b", r"\brecommend\b", "谢谢", "感谢", "多谢", "谢啦", "好评", "满意", "喜欢", "赞",
               "太棒", "很好", "漂亮", "好看", "完美", "给力"),
    "human": (r"\bhuman\b", r"\breal person\b", r"\ba person\b", r"\bsomeone\b", r"\bsomebody\b", r"\bstaff\b",
              r"\bagent\b", r"\bmanager\b", r"\bsupervisor\b", r"\boperator\b", r"\brepresentative\b",
              r"\bcall me\b", r"\bnot a (bot|robot|machine)\b", r"\bowner\b", "人工", "真人", "客服", "经理", "主管",
              "工作人员", "负责人", "店长", "老板", "找人", "打电话", "转接"),
}
_PATTERNS = {label: [re.compile(p, re.IGNORECASE) for p in patterns] for label, patterns in KEYWORDS.items()}


def keyword_intent(text: str) -> Intent:
    """The intent whose keywords the text matches most often; "other" when none matches."""
    hits = {label: sum(bool(p.search(text)) for p in patterns) for label, patterns in _PATTERNS.items()}
    best = max(INTENTS[:-1], key=lambda label: hits[label])  # max keeps the first of equal counts
    return Intent(best if hits[best] else "other", KEYWORD_CONFIDENCE, from_keywords=True)
