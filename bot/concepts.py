"""What a shop question asks about, as a few dozen shop intents, so different words for one intent meet.

A small model cannot tell "Do you buy back old furniture?" from the furniture warranty, nor see that "postage"
asks for the shipping cost. These intents (English word starts, Chinese substrings) are shop talk in general,
not one shop's FAQ: the FAQ's own entries get them from their text, and a question whose intent no entry has
(buy-back, rental, instalments...) is not answered by an entry that merely shares a word.
"""

from __future__ import annotations

import re
from typing import Iterable

from bot.lexicon import CJK, EN_STOP, WORD, WORD_START, folded, quiet_jieba

# intent: (English word starts, matched at a word boundary; Chinese substrings)
# Places a Chinese shop ships to only as an international order: "shipping to germany", "寄日本".
ABROAD = (("japan", "korea", "singapore", "malaysia", "thailand", "vietnam", "australia", "new zealand", "canada",
           "the us", "the usa", "america", "the uk", "england", "britain", "germany", "france", "italy", "spain",
           "the netherlands", "europe", "russia", "dubai", "taiwan", "hong kong", "macau", "macao"),
          ("日本", "韩国", "新加坡", "马来西亚", "泰国", "越南", "澳洲", "澳大利亚", "新西兰", "加拿大", "美国", "英国", "德国",
           "法国", "意大利", "西班牙", "荷兰", "欧洲", "俄罗斯", "迪拜", "台湾", "香港", "澳门"))
# Cities abroad a customer names alone ("I'm flying back to Melbourne", "我在温哥华读书 能寄过来吗").
CITIES_ABROAD = (("tokyo", "osaka", "seoul", "london", "paris", "new york", "sydney", "melbourne", "vancouver",
                  "toronto", "berlin", "los angeles", "san francisco", "kuala lumpur", "bangkok"),
                 ("东京", "大阪", "首尔", "伦敦", "巴黎", "纽约", "悉尼", "墨尔本", "温哥华", "多伦多", "柏林", "洛杉矶", "旧金山",
                  "吉隆坡", "曼谷"))

# A child's size asked before buying ("is a full size too big for him?"): a size question, no exchange (NOT_ASKING).
FIT_FOR_SOMEONE = ("too big for him", "too big for her", "too small for him", "too small for her", "too big for my",
                   "too small for my", "too big for a", "too small for a")
# No lift in the customer's building: getting goods upstairs, not whether the shop is accessible (NOT_ASKING).
NO_LIFT = (("no lift", "no elevator", "without a lift", "without an elevator"), ("没电梯", "没有电梯", "无电梯"))
# A customs declaration shown for imported goods: proof they are genuine, no question about customs (NOT_ASKING).
CUSTOMS_PAPERS = (("customs declaration", "customs papers", "customs documents"), ("报关单",))

INTENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hours": (("open on", "open at", "open until", "opening", "are you open", "you open", "closed", "closing",
               "close on", "close at", "hours", "reach someone", "someone on", "available on", "weekday", "weekend",
               "saturday", "sunday", "public holiday", "national day", "staffed", "open over", "open during",
               "be open", "still open", "is it open", "shop open", "store open", "you close", "guys close",
               "shop close", "store close", "close tonight", "close today"),
              ("营业", "上班", "下班", "开门", "关门", "在线", "有人在", "有人回", "有人吗", "有没有人", "有人值班",
               "客服时间", "周六", "周日", "星期", "节假日", "几点", "开不开")),
    "delivery_time": (("arriv", "get to me", "reach me", "get here", "gets here", "dispatch", "ship within",
                       "delivery take", "leave your warehouse", "leave the warehouse", "leaves the warehouse",
                       "leaves your warehouse", "ship out", "ships out", "shipped out", "when will you ship",
                       "when do you ship", "when will it ship", "make it in time",
                       "arrive in time", "here in time", "shipping take", "shipping time", "ship the same day",
                       "ships the same day", "ship the next", "ships the next", "ship today", "shipped today",
                       "leave today", "go out today", "send it today", "sent today", "get to my"),
                      ("送达", "到货", "收到", "发货", "发出", "寄出", "送到", "什么时候发", "啥时候发", "多久发", "多久能发", "何时发",
                       "今天能发", "今天发", "当天发", "当天能发", "明天能发")),
    "shipping_cost": (("shipping cost", "shipping fee", "delivery fee", "delivery cost", "postage", "free shipping",
                       "shipping free", "free delivery", "delivery free", "delivery is free", "shipping is",
                       "shipping within", "charge for delivery", "cost to send", "who pays the shipping",
                       "who pays shipping", "who pays for shipping", "who pays for the shipping",
                       "who pays the postage",
                       "pay for delivery", "pay for shipping", "pay anything for delivery", "pay extra for delivery",
                       "charge for shipping", "charge me for delivery", "cost to ship", "cost of shipping",
                       "charge to deliver", "charge to ship", "charge to send", "cost to deliver",
                       "cost of delivery", "delivery charge", "shipping charge",
                       "how much is shipping", "how much to ship", "how much to send", "how much to deliver",
                       "how much is delivery", "how much for delivery", "yuan shipping", "yuan delivery",
                       "yuan postage"),
                      ("运费", "邮费", "包邮", "快递费", "配送费")),
    "returns": (("return", "send back", "send something back", "send it back", "give it back", "give back",
                 "take it back", "no reason", "send them back", "send these back", "post it back",
                 "post them back", "ship it back", "give them back", "bring them back", "bring it back",
                 "take them back"),
                ("退货", "退回", "退换", "无理由", "能退", "可以退", "可退")),
    "refund": (("refund", "money back", "see the money", "get my money", "money come back",
                "money comes back", "money to come back", "money be back", "money is back", "money returned",
                "get the money back", "receive the money", "pay me back", "see my cash", "my cash back",
                "money show up", "money to show up", "money go back", "money goes back", "credited back"),
               ("退款", "退钱", "钱多久", "钱几天", "到账", "原路", "退给我", "收到钱", "钱什么时候", "钱啥时候", "钱何时",
                "钱会退", "钱退", "退的钱")),
    "payment": (("pay with", "pay by", "pay via", "pay using", "payment", "how can i pay", "how do i pay",
                 "how to pay", "ways to pay", "can i pay", "alipay", "wechat", "visa",
                 "mastercard", "unionpay", "paypal", "credit card", "debit card", "bank card", "upfront", "up front",
                 "pay in full", "paid in full", "full payment", "pay cash", "in cash", "take cash", "accept cash"),
                ("付款", "支付", "微信", "支付宝", "刷卡", "银联", "信用卡", "visa", "paypal", "mastercard", "原路", "全款",
                 "现金", "付钱", "怎么付")),
    # The nouns, not the verb: "Do you install the screen protector?" asks nothing about paying in parts.
    "instalments": (("instalment", "installment", "monthly payment", "pay monthly", "pay later", "credit plan",
                     "pay in install", "buy now pay later", "klarna", "afterpay", "clearpay", "interest-free",
                     "interest free"),
                    ("分期", "月供", "先用后付", "免息", "月付", "白条", "花呗")),
    "warranty": (("warrant", "guarantee", "covered", "repair", "how long are you responsible",
                  "fix it", "fix them", "fix my", "get it fixed", "have it fixed", "free to fix",
                  "fix for free", "fixed for free"),
                 ("保修", "质保", "保固", "维修", "保几年", "保多久", "保多长", "管几年", "管多久", "负责几年", "负责多久",
                  "还管吗", "还管不管", "管不管修", "能修", "修吗", "修理", "帮忙修", "修不修")),
    "damaged": (("damag", "broken", "broke", "smash", "crack", "chip", "shatter", "dent", "scratch",
                 "in pieces", "crushed", "bad shape", "bad condition", "wilt", "droop", "squeak", "rattl", "buzzing",
                 "strange noise", "weird noise", "makes a noise", "making a noise", "makes noise", "making noise",
                 "corked", "smells off", "smells bad", "smells weird", "smells funny", "smells like wet", "tastes off",
                 "musty", "split open", "mouldy", "moldy", "leaking", "leaked", "insects"),
                ("坏", "碎", "破损", "裂", "缺口", "划痕", "磕", "变形", "断了", "压扁", "压瘪", "凹", "蔫", "质量问题", "质量有问题",
                 "收到有问题", "吱吱响", "吱吱作响", "异响", "杂音", "咔咔响", "嘎吱", "霉味", "变味", "味道不对", "发酸",
                 "漏水", "漏液", "漏气", "漏油", "发霉", "长毛了", "有虫", "虫子", "长虫", "烂根", "烂了")),
    # Something that stopped working: told alone, a warranty question; beside another question, its premise
    # ("stopped heating after 3 weeks, can I still return it?").
    "fault": (("faulty", "defective", "stopped working", "stops working", "stopped charging", "stopped heating",
               "stopped cooling", "stopped spinning", "doesn't work", "does not work", "isn't working",
               "is not working", "not working properly", "not working anymore", "won't turn on", "won't switch on",
               "won't charge", "fails under", "if it fails", "malfunction"),
              ("不亮了", "不转了", "开不了机", "开不开机", "没反应", "不能用了", "用不了了", "失灵", "不制热", "不加热", "故障",
               "不工作了")),
    "tracking": (("track", "where is my", "follow it", "follow my", "parcel been sent", "check my delivery",
                  "where my package", "where my parcel", "where my shipment", "where my order", "follow where",
                  "status of my", "where it is", "on its way", "on the way",
                  "courier no", "tracking no", "follow the parcel", "follow the package", "where it's got to",
                  "where it has got to"),
                 # "到哪了" (where has it got to), not "到哪" alone: "退款是退到哪里？" asks where a refund goes
                 ("物流", "快递单号", "单号", "跟踪", "到哪了", "到哪儿了", "到哪里了", "查快递", "发出了吗", "发货了会通知",
                  "发货会通知", "发货通知", "发货后通知")),
    "exchange": (("exchang", "swap", "trade", "instead of", "different size", "different colo", "bigger", "smaller",
                  "larger", "another size", "another colo", "doesn't fit", "don't fit", "too small", "too big",
                  # a replacement sent for a damaged item (补发) is a swap too; not "replace" alone, a repair shop's
                  # word ("screen replacement")
                  "free replacement", "send a replacement", "send you a replacement", "send me a replacement",
                  "send a new one", "send me a new one", "new one instead"),
                 ("换", "补发", "大一号", "小一号", "大一码", "小一码", "不合脚", "不合身")),  # not 尺码 alone (尺码怎么选)
    "discount": (("discount", "% off", "reduced price", "cheaper", "anything off", "coupon", "promo", "reduction"),
                 ("优惠", "打折", "折扣", "便宜", "优惠码", "优惠券", "半价", "9折", "8折", "7折", "6折", "5折", "九折", "八折", "七折", "六折",
                  "五折")),
    "student": (("student", "universit", "college", "study at", "at uni ", "at uni?", "uni student"),
                ("学生", "大学", "读书", "学校", "研究生", "在校", "本科", "硕士", "博士")),
    "invoice": (("invoice", "fapiao", "receipt", "tax id", "tax number", "vat", "billing doc", "official bill",
                 "proof of purchase"),
                ("发票", "税号", "收据", "小票", "凭证", "抬头", "开票", "开个票", "开张票")),
    "location": (("where is your", "where is the shop", "where is the store", "where are you", "where exactly is",
                  "where is the cafe", "where is the café", "where is the salon", "where is the studio",
                  "where is the clinic", "where is the boutique", "where is the bakery", "where is the nursery",
                  "where is the workshop", "where is the restaurant", "where is the gallery", "where is the showroom",
                  "address", "showroom", "located", "physical store", "visit you",
                  "in person", "come and see", "come and look",
                  "drop by", "pop in", "pop by", "metro station", "subway station", "nearest station", "which station",
                  "by metro", "by subway", "directions to", "how do i get to"),
                 ("地址", "展厅", "实体店", "门店", "线下", "实物", "店在哪", "地铁", "哪个站", "几号线", "怎么过去", "过去看看",
                  "过来看看", "去店里", "来店里", "到店里", "你们在哪", "你们家在哪")),
    "cancel": (("cancel", "call off", "call it off", "call the order off", "stop my order", "undo my order",
                "undo the order", "undo the whole", "undo the purchase", "undo it",
                "ordered by mistake", "back out of", "stop it before", "stop the order"),
               ("取消", "撤销", "撤回", "下错")),
    # A note put in with a gift is the wrapping service's card; what it says is a card_message. An English "present
    # for my mum" is a story ("I live in Berlin and want to order the lamp as a birthday present, how long?"); 礼物 in
    # Chinese mostly asks to wrap one (送朋友的生日礼物，能帮忙包一下吗).
    "gift_wrap": (("gift wrap", "gift-wrap", "wrap", "gift box", "greeting card", "box it up", "box them up", "box up",
                   "boxed up", "add a note", "a little note", "a short note", "include a note", "handwritten note",
                   "nicely packed", "packed nicely", "package look nice", "nice packaging", "pretty packaging"),
                  ("礼品包装", "包装盒", "盒子", "礼盒", "包装成礼物", "礼物", "贺卡", "写张卡片", "包得好看", "附卡", "小卡片")),
    # Intents a shop may not cover: here so a question about them is not answered by a neighbouring entry. The
    # second group (cash on delivery ... data privacy) was listed on 1 Dec from a brief of shop topics near an FAQ's
    # usual ones; a phrase must only ever stand for its topic (never "phone" or "address" alone).
    "buy_back": (("buy back", "buyback", "trade in", "trade-in", "sell you my", "second-hand", "second hand",
                  "used furniture", "old furniture", "secondhand", "refurbished", "sell my old", "pre-owned",
                  "preowned", "old gold", "put it towards", "put my old", "use it to pay", "old one towards",
                  "interested in buying", "buy it from me", "buy them from me", "buy my collection"),
                 ("回收", "收购", "二手", "旧金", "你们收吗", "收不收", "以旧换新", "翻新", "旧机", "寄卖", "折价换")),
    "recycling": (("recycl", "take back the packaging", "packaging back", "eco-friendly", "eco friendly",
                   "environmentally friendly", "sustainab", "plastic-free", "plastic free", "carbon neutral",
                   "carbon footprint", "carbon offset", "biodegradable", "compostable"),
                  ("回收包装", "包装回收", "环保", "可回收", "碳中和", "碳足迹", "减塑", "无塑", "可降解", "绿色包装", "低碳", "碳排放")),
    "assembly": (("assembl", "installation", "set it up", "set up the", "mount", "install", "setup service",
                  "fitting service"),  # and "put ... together" (_PUT_TOGETHER)
                 ("安装", "组装", "上门装", "拼装", "装配", "怎么装", "自己装", "帮忙装", "帮我装")),
    "rental": (("rent", "hire a", "lease", "borrow", "leasing", "try before you buy", "buy one yet", "not ready to buy",
                "commit to buying"),
               ("租", "借用")),
    "loyalty": (("loyalty", "points", "member", "reward", "vip", "my points", "earn points", "redeem points",
                 "redeem my points"),
                ("积分", "会员", "vip")),
    "points_transfer": (("merge my points", "merge points", "combine points", "combine my points", "transfer points",
                         "transfer my points", "share points", "share my points", "points to my", "points with my"),
                        ("积分转", "积分能转", "积分可以转", "转积分", "积分合并", "合并积分", "积分给", "积分共享", "共享积分")),
    "gift_card": (("gift card", "gift voucher", "voucher", "gift certificate", "giftcard", "e-gift", "egift",
                   "gift balance", "stored-value", "stored value", "prepaid card", "top up", "top-up", "topping up",
                   "card balance"),
                  ("礼品卡", "购物卡", "代金券", "储值卡", "充值卡", "礼金卡", "提货卡", "电子卡", "充值", "储值")),
    # "jobs", not "job": "a blazer for a job interview, will it arrive by Friday?" asks about delivery.
    "jobs": (("hiring", "jobs", "job opening", "job opportunit", "looking for a job", "vacanc", "work for you",
              "employ", "career", "internship", "recruit", "apply for a job", "part-time work"),
             ("招聘", "招人", "招不招", "招店员", "学徒", "缺人吗", "应聘", "兼职", "工作机会", "求职", "实习", "岗位", "简历",
              "入职")),
    "accessibility": (("wheelchair", "accessib", "disabled", "step-free", "lift", "elevator"),
                      ("无障碍", "轮椅", "电梯")),
    "origin": (("made in", "where are they made", "manufactur", "produced in", "country of origin", "imported"),
               ("国产", "产地", "进口", "哪里生产", "哪里产")),
    "express": (("express", "air freight", "overnight", "same-day", "same day", "next-day", "next day",
                 "faster shipping", "urgent", "rush", "deliver today", "delivered today", "expedited"),
                ("加急", "航空", "次日达", "当日达", "顺丰", "特快", "加快", "当天送达", "当天到", "今天能到", "今天能送", "同城急送", "闪送", "半日达")),
    "custom": (("customi", "custom-made", "custom made", "custom order", "personalis", "personaliz", "engrav",
                "made to measure", "bespoke", "monogram", "custom name", "custom print", "made to order", "logo",
                "custom photo", "photo print", "print a photo", "print photos", "print my photo", "print our",
                "embroider", "one-off", "one of a kind", "my own design", "from my drawing"),
               ("定制", "独一无二", "自己画", "自己设计", "帮我做成", "定做", "刻字", "刻名字", "刻上", "刻我",
                "私人订制", "个性化", "印名字", "印字", "来图", "logo", "印照片", "照片打印", "刺绣",
                "绣名字", "绣上", "绣个", "能绣", "可以绣", "帮忙绣")),
    "wholesale": (("wholesale", "bulk", "in large quantities", "for my business", "reseller", "distributor",
                   "buy in bulk", "order in bulk", "large quantit", "corporate order", "corporate gift",
                   "company order", "volume discount", "quantity discount", "order for my company", "resell",
                   "dropship", "drop ship", "become an agent", "agency", "franchise", "dealer", "stockist",
                   "trade price", "trade account", "corporate", "for our staff", "for our employees",
                   "staff gifts", "employee gifts", "group buy", "group purchase", "group order", "group discount",
                   "club discount"),
                  ("批发", "大批量", "团购", "代理", "经销", "批量", "企业采购", "公司采购", "大量购买", "集采", "量大", "大宗", "加盟", "分销", "代发",
                   "拿货", "进货", "招商", "员工福利", "订一批", "买一批", "采购一批", "要一批")),
    "price_match": (("price match", "match the price", "price guarantee", "price protection", "price drop",
                     "dropped in price", "dropped the price", "cheaper elsewhere", "lower price elsewhere",
                     "price adjustment", "went on sale after", "get the difference back",
                     "refund the difference", "difference in price", "cheaper on your site"),
                    ("保价", "比价", "价保", "降价补差", "价格保护", "退差价", "降价了", "买贵了", "别家更便宜", "价格匹配")),
    "pickup": (("pick up", "pick it up", "collect it", "click and collect", "pickup", "pick-up point",
                "collection point", "click & collect", "collect in store"),
               ("自提", "自取", "到店取", "提货点", "门店取货", "上门取件", "上门取货", "上门收件")),
    # Where a courier leaves the parcel (a locker, a parcel station, the door): not the shop's own pick-up (5 Dec).
    "parcel_locker": (("parcel locker", "locker", "po box", "leave it at", "leave it with", "leave the parcel",
                       "leave my parcel"),
                      ("快递柜", "丰巢", "驿站", "代收点", "代收")),
    # Delivering in the evening, not any evening: "客服晚上几点下班" asks the hours.
    "evening_delivery": (("evening delivery", "deliver in the evening", "delivered in the evening", "deliver at night",
                          "delivered at night", "deliver after work", "delivered after work", "weekend delivery",
                          "deliver on a sunday", "deliver on sunday", "deliver on a saturday"),
                         ("晚上送", "晚上配送", "晚上能送", "夜间配送", "夜间送", "周末送", "下班后送", "晚上派送")),
    "cash_on_delivery": (("cash on deliver", "pay on deliver", "pay upon deliver", "pay when it arrives",
                          "pay when i receive", "pay the courier", "collect on deliver", "pay at the door",
                          "payment on deliver"),
                         ("货到付款", "到付吗", "可以到付", "支持到付", "能到付", "货到再付", "收货后付款", "收到货再付", "先收货后付")),
    "return_postage": (("return postage", "return shipping cost", "return shipping fee", "return shipping charge",
                        "cost of return shipping", "pay for return shipping", "pay for the return shipping",
                        "pays for the return", "pays the return", "cost to send it back", "postage for the return",
                        "postage for returns", "return label", "return shipping", "pays the shipping back",
                        "pay the shipping back", "shipping back"),
                       ("退货运费", "退货邮费", "退回运费", "寄回运费", "寄回的运费", "运费险", "退货的运费", "运费谁出", "谁出运费", "运费谁承担")),
    # Also what a wrong address alone asks (WRONG_ADDRESS below).
    "address_change": (("change my address", "change the address", "change the delivery address",
                        "change delivery address", "change my delivery address", "change shipping address",
                        "change my shipping address", "update my address", "update the address", "edit the address",
                        "modify the address"),
                       ("改地址", "地址改", "换地址", "改收货", "收货地址改", "修改收货地址", "更改收货", "换个地址",
                        "改一下地址", "改下地址", "改一下收货", "修改地址")),
    # Changing an order placed (its address, time, contents); an address change is one (PARENTS).
    "order_change": (("change my order", "change the order", "change or cancel", "modify my order", "modify the order",
                      "amend my order", "amend the order", "edit my order"),
                     ("修改订单", "改订单", "订单修改", "订单可以修改", "订单能改", "改一下订单", "更改订单")),
    # Bought in person: an online shop's return and exchange rules may not apply (written 1 Dec, stop 33).
    "in_person_purchase": (("bought at your showroom", "bought in your showroom", "bought it at your showroom",
                            "bought at the showroom", "bought in the showroom", "bought it in the showroom",
                            "bought in store", "bought in-store", "bought it in store", "bought at your store",
                            "purchased at the showroom", "purchased in store", "purchased in your showroom"),
                           ("展厅买", "门店买", "实体店买", "线下买", "线下门店买", "到店买", "现场买", "直接带走", "买了带走")),
    "business_identity": (("registered company", "business license", "business licence", "legit company",
                           "legitimate company", "personal store", "individual seller", "company registration"),
                          ("营业执照", "个人店", "企业店", "正规公司", "注册公司", "个体户", "是公司还是个人")),
    "parking": (("parking", "car park", "where can i park", "where to park", "park my car", "park near",
                 "park outside"),
                ("停车", "车位", "泊车", "停哪")),
    "phone_number": (("phone number", "telephone", "call you", "ring you", "give you a call", "hotline",
                      "contact number", "customer service number", "call the shop"),
                     ("客服电话", "电话号码", "打电话", "热线", "联系电话", "致电", "来电", "座机")),
    "accidental_damage": (("accidental damage", "accidentally damaged", "accidentally dropped", "accidentally broke",
                           "i dropped", "i broke it", "water damage", "spilled", "spilt", "accident cover",
                           "accident protection", "damage insurance", "cat scratched", "dog chewed", "pet damage",
                           "damaged by my", "the kids broke", "knocks", "knocked it", "if i drop"),
                          ("意外损坏", "意外保障", "意外险", "人为损坏", "人为摔", "人为弄坏", "人为破坏", "人为造成",
                           "不小心摔", "自己摔", "我摔坏", "进水", "泡水", "碎屏险", "被猫", "猫抓", "狗咬",
                           "宠物抓", "孩子弄坏", "小孩弄坏", "泼了", "泼到")),
    "extended_warranty": (("extended warranty", "extend the warranty", "extend my warranty", "warranty extension",
                           "additional warranty", "extra warranty", "protection plan", "care plan"),
                          ("延保", "延长保修", "保修延长", "加长保修", "延长质保", "质保延长")),
    "special_invoice": (("special vat invoice", "vat special invoice", "special invoice", "zhuanpiao", "paper invoice",
                         "special vat fapiao", "vat special fapiao", "special fapiao",
                         "printed invoice", "hard copy invoice", "hard copy of the invoice"),
                        ("专票", "增值税专用", "专用发票", "纸质发票", "纸质的发票", "纸质版发票", "增票", "纳税人识别号")),
    "coupon_stacking": (("stack coupon", "stack discount", "stack code", "stacking", "combine coupon",
                         "combine discount", "combine code", "two coupons", "two discount codes", "multiple coupons",
                         "more than one coupon", "more than one discount", "use both codes", "combined with",
                         "combine with", "be combined", "combine it with", "together with another",
                         "together with other",
                         "used together", "use them together", "on top of the", "already on sale", "already discounted",
                         "sale items", "discounted items"),
                        ("叠加", "叠用", "两张券", "多张券", "两张优惠券", "多张优惠券", "券能一起", "同时用两", "一起用", "同时用",
                         "一起使用", "同时使用", "特价商品", "打折商品", "活动商品")),
    "group_discount": (("senior discount", "senior citizen", "pensioner", "military discount", "veteran",
                        "teacher discount", "nurse discount", "nhs discount", "key worker", "elderly discount",
                        "disability discount"),
                       ("老人优惠", "老年人优惠", "老年优惠", "军人优惠", "军人折扣", "退伍军人", "教师优惠", "教师折扣", "老师优惠", "医护优惠")),
    "preorder": (("pre-order", "preorder", "pre order", "presale", "pre-sale", "reserve one", "reserve it",
                  "advance order"),
                 ("预售", "预订", "预定", "定金", "订金", "尾款", "预购")),
    "restock_date": (("restock", "back in stock", "in stock again", "next batch", "next shipment", "replenish",
                      "notify me when"),
                     ("补货", "什么时候有货", "何时有货", "重新上架", "再上架", "下一批", "到货通知", "还会补")),
    "stock_availability": (("in stock", "out of stock", "out-of-stock", "sold out", "sold-out", "any left",
                            "how many left", "inventory", "stock level", "still have any", "is it available"),
                           ("有货吗", "有没有货", "缺货", "库存", "售罄", "卖完", "没货", "断货", "还有货")),
    "dimensions_materials": (("dimension", "how big is", "how tall", "how wide", "how heavy", "measurements",
                              "made of", "what material", "fabric", "what is it made"),
                             ("尺寸是多少", "具体尺寸", "长宽高", "多少厘米", "材质", "面料", "什么材料", "什么做的", "成分", "多高", "多宽")),
    "customs": (("customs", "import duty", "import duties", "import tax", "import fee", "duty fee", "duties",
                 "tariff", "duty free", "duty-free"),
                ("关税", "清关", "海关", "进口税", "报关", "扣关")),
    "international_shipping": (("ship internationally", "international shipping", "international deliver",
                                "ship overseas", "deliver overseas", "ship abroad", "deliver abroad",
                                "ship to another country", "outside the country", "other countries", "internationally",
                                "overseas", *CITIES_ABROAD[0]),
                               ("国际快递", "国际运费", "国际物流", "海外", "国外", "港澳台", "跨境",
                                *(f"{verb}{place}" for verb in ("寄", "寄到", "发到", "送到", "运到") for place in ABROAD[1]),
                                *CITIES_ABROAD[1])),
    "courier": (("sf express", "via dhl", "by dhl", "use dhl", "with dhl", "dhl express", "fedex", "royal mail",
                 "usps", "evri", "which courier", "what courier", "which delivery company"),
                ("顺丰", "京东快递", "京东物流", "中通", "圆通", "申通", "韵达", "邮政", "极兔", "德邦", "哪家快递", "什么快递")),
    "account": (("password", "login", "log in", "sign in", "locked out", "verification code", "create an account",
                 "delete my account", "username", "account is locked"),
                ("密码", "登录", "登陆", "注册", "验证码", "我的账号", "账号被", "注销账号")),
    "referral_programme": (("referral", "refer a friend", "refer my friend", "invite a friend", "invite friends",
                            "invite my friend", "recommend a friend", "affiliate"),
                           ("推荐好友", "邀请好友", "邀请码", "推荐码", "拉新", "分享返现", "返佣", "介绍朋友")),
    "social_group": (("wechat group", "wechat id", "add you on wechat", "whatsapp", "telegram", "facebook group",
                      "group chat", "community group", "discord"),
                     ("微信群", "加微信", "微信号", "加你微信", "群聊", "粉丝群", "社群", "进群", "加群", "公众号")),
    "live_stream": (("live stream", "livestream", "live broadcast", "live sale", "live show", "going live",
                     "live session"),
                    ("直播", "开播", "主播", "抖音", "快手", "视频号")),
    "out_of_warranty_repair": (("out of warranty", "warranty expired", "warranty has expired", "warranty ran out",
                                "after the warranty", "past the warranty", "paid repair", "repair fee", "repair cost",
                                "cost to repair", "how much to repair"),
                               ("过保", "保修期过了", "过了保修", "出保", "付费维修", "维修费", "自费维修", "维修多少钱", "修理费")),
    "spare_parts": (("spare part", "spares", "replacement part", "replacement battery", "replacement filter",
                     "replacement charger", "replacement cable", "buy a part", "separate part"),
                    ("配件", "零件", "备件", "零部件", "替换件", "滤芯", "替换头")),
    "user_manual": (("user manual", "instruction manual", "the manual", "a manual", "user guide", "how to operate",
                     "how do i operate", "operating instructions", "setup guide", "quick start guide"),
                    ("说明书", "使用说明", "使用方法", "操作指南", "用户手册", "使用教程")),
    "safety_certificates": (("safety certificat", "ce certific", "ce mark", "certified safe", "safety standard",
                             "safety test", "test report", "compliance", "bpa free", "bpa-free", "non-toxic",
                             "food grade", "food-grade"),
                            ("认证", "质检报告", "检测报告", "合格证", "安全标准", "无毒", "食品级", "国标")),
    # Whether a product can harm a pet or a child ("Is a monstera safe for cats?", 龟背竹对猫有毒吗): a care or
    # product entry that does not say does not answer it.
    "toxicity": (("toxic", "poisonous", "safe for cats", "safe for dogs", "safe for pets", "safe for my cat",
                  "safe for my dog", "safe for kids", "safe for children", "safe for babies", "safe for my baby",
                  "harmful to"),
                 ("有毒", "毒性", "中毒")),
    "allergens": (("allerg", "hypoallergenic", "reaction", "rash", "itchy", "itching", "irritat", "breakout",
                   "broke out", "redness"),
                  ("过敏", "致敏", "不耐受", "泛红", "发痒", "刺痛", "起疹", "红疹", "烂脸")),
    # Each diet its own question (3 Dec, stop 47): a bakery's nut-allergy entry does not say whether it bakes
    # gluten-free or sugar-free.
    "nuts": (("nuts", "nut free", "nut-free", "nut allerg", "tree nut", "peanut", "almond", "walnut", "cashew",
              "hazelnut", "pistachio"),
             ("坚果", "花生", "杏仁", "核桃", "腰果", "榛子", "开心果")),
    "gluten": (("gluten", "celiac", "coeliac", "wheat free", "wheat-free"), ("麸质", "无麸", "小麦过敏")),
    "dairy": (("lactose", "dairy", "milk free", "milk-free"), ("乳糖", "含奶", "不含奶", "无奶", "奶制品")),
    "sugar_free": (("sugar free", "sugar-free", "no sugar", "without sugar", "diabetic", "low sugar", "low-sugar"),
                   ("无糖", "不加糖", "糖尿病", "控糖", "低糖", "代糖")),
    "vegan": (("vegan", "vegetarian", "plant-based", "plant based"), ("素食", "纯素", "吃素", "植物基")),
    "modify_order_items": (("modify my order", "edit my order", "amend my order", "add an item to",
                            "add another item", "add something to my order", "add to my order", "combine orders",
                            "combine my orders", "merge orders", "merge my orders", "cancel just one",
                            "cancel one item", "cancel part of", "keep the rest", "still add"),
                           ("合并订单", "合并发货", "一起发货", "追加", "加购一件", "再加一件", "订单里加", "改订单里", "合并一起",
                            "部分取消", "取消其中", "只取消")),
    "sales_events": (("big sale", "sales planned", "any sales", "upcoming sale", "black friday", "cyber monday",
                      "boxing day", "double 11", "double eleven", "11.11", "singles day", "618 sale"),
                     ("双十一", "双11", "双十二", "双12", "618活动", "618大促", "大促", "年货节", "黑五", "店庆")),
    "repair_process": (("repair process", "how do repairs work", "send it in for repair", "send it for repair",
                        "someone come to fix", "come and fix", "technician", "on-site repair", "home repair"),
                       ("上门修", "上门维修", "寄修", "寄回去修", "返修", "维修流程", "怎么修", "师傅上门")),
    # Clothes, food and service shops' own topics (3 Dec, stop 47, from a list of what such shops' FAQs cover): which
    # size to pick, altering a garment, how long food keeps, booking a visit or a service.
    "sizing": (("what size", "which size", "sizes run", "size run", "size should i", "size do i", "size to get",
                "size to order", "size guide", "size chart", "sizing", "true to size", "run small", "runs small",
                "run large", "runs large", "run big", "runs big", *FIT_FOR_SOMEONE, "big enough for"),
               ("尺码表", "尺码怎么选", "选码", "穿多大", "穿啥码", "穿什么码", "穿哪个码", "选多大", "多大码", "选什么码", "选哪个码", "码数",
                "偏大", "偏小", "穿啥size", "穿什么size", "选哪个size", "尺码标准", "尺码准", "尺码正")),
    "alterations": (("alteration", "altered", "alter the", "alter my", "alter it", "alter them", "hemm", "hem the",
                     "hem my", "hem them", "hem it", "shorten", "take them up", "take it in", "tailor", "stretch my",
                     "stretch the", "stretch them", "stretch it", "shoe stretch", "boot stretch"),
                    ("改短", "改长", "改小", "改大", "裁短", "改裤", "改衣", "裤脚", "改袖", "锁边", "撑鞋", "撑一下", "撑大", "扩鞋")),
    "shelf_life": (("shelf life", "best before", "use by date", "stay fresh", "keep fresh", "still be ok",
                    "still be good", "still good to eat", "still ok to eat", "go stale", "goes stale", "go off",
                    "how long will it keep", "how long does it keep", "how long will they keep", "freeze it",
                    "freeze them", "can i freeze", "frozen", "freezer", "in the fridge", "refrigerat", "expiry date",
                    "expiration date", "close to expir", "near expir", "how to store", "how should i store",
                    "how do i store", "how do you store", "keep it fresh", "keep them fresh", "once opened",
                    "once open", "after opening", "once i open", "crack it open", "good for once"),
                   ("保质期", "放多久", "能放几天", "放几天", "保存多久", "能保存", "保鲜", "冷冻", "冷藏", "放冰箱", "还能吃", "不新鲜",
                    "快过期", "临期", "放坏", "怎么存", "咋存", "怎么保存", "如何保存", "咋保存", "怎么储存", "存放", "开封后",
                    "日期新鲜", "生产日期")),
    # How to make a product ready to eat or drink: brewing a tea, cooking a dish ("how long do I steep it" asks no
    # delivery time).
    "preparation": (("steep", "brew", "infus", "water temperature", "how to cook", "how do i cook", "cooking time",
                     "how to prepare", "how do i prepare", "cold brew"),
                    ("冲泡", "怎么泡", "咋泡", "泡多久", "出汤", "水温", "泡法", "几泡", "冷泡", "怎么煮", "煮多久", "怎么做着吃")),
    # Asking whether the shop sells a product at all ("Do you sell kids clothes?", "店里有没有卖仓鼠"): a shop's FAQ
    # rarely lists its range, and an entry about sizes or candles does not say whether it sells this one.
    "product_range": (("do you sell", "do you also sell", "do you guys sell", "do you carry",
                       "do you stock", "does your shop sell", "does the shop sell", "for sale",
                       "we sell", "we also sell", "we stock", "we carry"),
                      ("有没有卖", "有卖", "卖不卖", "卖吗", "有售", "出售", "在售", "售卖")),
    # What customers of any shop ask that a shop's FAQ seldom says (3 Dec, stop 48, from the unknown questions the
    # unseen shops' customers asked): whether goods are genuine, which colours an item comes in, eating in, wifi,
    # boarding a pet, a vet. Read, an entry about screens, sizes or delivery no longer answers them.
    "authenticity": (("genuine", "authentic", "original part", "original apple", "official part", "fake",
                      "counterfeit", "knock-off", "knockoff", "replica", "is it real?", "are they real?",
                      "real or fake", "gold is real", "silver is real", "real gold", "real silver", "stock from",
                      "source your", "certificate of authenticity", "import paperwork", "import papers",
                      "import documents", *CUSTOMS_PAPERS[0]),
                     ("正品", "真货", "假的", "货源", "进货", "鉴定", "原装", "原厂", "假货", "高仿", "副厂", "山寨", "保真",
                      *CUSTOMS_PAPERS[1], "检验检疫")),
    "variants": (("what colours", "what colors", "which colours", "which colors", "other colours", "other colors",
                  "any colours", "any colors", "colour options", "color options", "more colours", "more colors",
                  "what styles", "which styles", "what designs", "which designs"),
                 ("什么颜色", "哪些颜色", "别的颜色", "其他颜色", "几种颜色", "几个颜色", "有几色", "哪几种款式", "什么款式", "几种款式",
                  "哪些款式")),
    "dine_in": (("eat in", "eat inside", "eat here", "sit and eat", "seating", "dine in", "dine-in"),
                ("堂食", "座位", "坐着吃", "店里吃", "在店里吃")),
    "wifi": (("wifi", "wi-fi"), ("无线网",)),
    "pet_boarding": (("boarding", "pet hotel", "pet sitting", "pet-sitting", "dog hotel", "cat hotel", "kennel",
                      "look after my dog", "look after my cat", "look after my pet"),
                     ("寄养", "宠物酒店", "代养")),
    "vet": (("a vet ", "a vet?", "the vet ", "the vet?", "vet clinic", "veterinar", "vaccin", "deworm", "neuter",
             "spay"),  # with the space after it: "a veteran" is no vet
            ("兽医", "疫苗", "驱虫", "绝育")),
    # Trying a product before buying it: a taster pack, a free sample (a tea, cosmetics or food shop's FAQ).
    "samples": (("sample", "tester", "taster", "trial size", "trial pack", "try before buying", "try a few",
                 "try them first", "try it first", "freebie", "mini version", "mini size", "travel size",
                 "travel-size"),
                ("试饮", "小样", "试用装", "小瓶", "mini装", "旅行装", "赠品", "试吃", "试喝", "尝尝", "试用")),
    # Riding or driving one before buying it (a bicycle, scooter or car shop): no rental, sample or appointment.
    "test_ride": (("test ride", "test-ride", "test drive", "test-drive", "try a bike", "try the bike", "try a bicycle",
                   "try the e-bike", "try an e-bike", "ride it first", "ride one first"),
                  ("试骑", "试驾", "试乘", "试车")),
    # What an online shop's customers ask past its FAQ's usual topics (3 Dec, stop 48, the sample shop's "what if"
    # sets): putting off a delivery, a foreign card's currency, when a card is charged, how long a battery lasts,
    # keeping the original box, paying with two methods, how often a coupon works, tracking by email or text, a
    # parcel marked delivered that never came, swapping for another product, the words on a gift card, a refund short
    # of what was paid.
    "delivery_scheduling": (("schedule the delivery", "schedule delivery", "schedule a delivery",
                             "choose a delivery date", "pick a delivery date", "delay the shipping", "delay shipping",
                             "delay the delivery", "ship it later", "hold the parcel", "hold my order", "time slot",
                             "time window", "delivery slot", "delivery window"),
                            ("晚几天发", "晚几天再发", "晚点发", "延迟发货", "推迟发货", "延后发货", "指定时间送", "指定日期送", "约时间送",
                             "送货时段", "配送时段", "时间段送")),
    "currency": (("currency", "exchange rate", "in euros", "in dollars", "in usd", "in eur", "foreign card"),
                 ("汇率", "外币", "美元", "欧元", "港币")),
    # Not "will you open", 会不会开: "will you open on Sunday?", 明天会不会开门 ask the hours.
    "new_branch": (("planning to open", "plan to open", "plans to open", "open a new", "open another", "open a branch",
                    "new branch", "another branch", "other branches", "branch in", "new store in", "new shop in",
                    "new showroom"),
                   ("开分店", "开新店", "分店", "会开展厅", "会开实体", "开个展厅", "打算开店", "计划开店")),
    "payment_timing": (("charged when", "when am i charged", "when will i be charged", "when do you charge",
                        "card charged", "charge my card"),
                       ("什么时候扣款", "啥时候扣款", "扣款", "什么时候扣钱", "啥时候扣钱")),
    "battery_life": (("battery life", "on one charge", "on a single charge", "on a full charge", "hold a charge",
                      "holds a charge", "holding a charge", "hold charge", "holds charge",
                      "how long does the battery last", "how long will the battery last"),
                     ("续航", "充一次电", "充满电能用", "电池能用多久", "掉电快", "不耐电", "不经用")),
    # Whether the goods' price shows in a parcel sent as a present.
    "price_in_parcel": (("price tag", "price list", "prices inside", "gift receipt", "see the price", "see how much"),
                        ("价格单", "价签", "看到价格", "看到价钱", "知道价格")),
    "original_packaging": (("original box", "original packaging", "keep the box", "without the box"),
                           ("原包装", "包装拆开", "拆了包装", "包装拆了", "盒子扔了")),
    "split_payment": (("split the payment", "split payment", "split the bill", "two cards", "two payment methods"),
                      ("分开付", "两张卡", "组合支付", "拆开付", "分两次付")),
    "usage_limit": (("one-time", "only once", "use it once", "how many times", "use it on every", "more than once"),
                    ("用几次", "只能用一次", "能用几次", "重复使用", "每单都能用")),
    "notifications": (("by email", "email me", "via email", "by sms", "text me", "notification"),
                      ("短信通知", "邮件通知", "发邮件", "发到邮箱")),
    "lost_parcel": (("says delivered", "marked as delivered", "shows delivered", "shows as delivered", "never received",
                     "never got it", "someone else signed", "stolen"),
                    ("显示已签收", "显示签收", "代签", "被偷", "丢件", "丢了", "没收到但")),
    "exchange_other_item": (("different product", "different model", "something else entirely", "totally different",
                             "another product", "a different item"),
                            ("换别的款", "换成别的", "换另一款", "换其他商品", "换个别的")),
    "card_message": (("write on the card", "message on the card", "card message", "note in the box"),
                     ("贺卡上写", "卡片上写", "写贺卡", "留言卡", "写几句话", "卡片内容", "贺卡留言", "祝福语", "贺卡内容")),
    "refund_amount": (("refund was less", "refund is less", "less than i paid", "only refunded", "deducted"),
                      ("少退", "只退了", "退款少", "扣了什么费用", "扣了手续费")),
    # Classes or workshops a shop may run (a tea ceremony, flower arranging).
    "classes": (("classes", "a class", "workshop", "lesson", "courses", "a course", "tutorial session",
                 "author talk", "book signing", "events coming up", "any events", "upcoming event", "guided",
                 "group trip", "excursion", "outing", "tasting event", "tasting session", "tasting night",
                 "wine tasting", "a tasting", "tastings", "hold events"),
                ("课程", "报名", "分享会", "讲座", "签售", "上课", "艺课", "体验课", "培训", "教学", "手作课", "沙龙", "带队",
                 "组团去", "跟团", "约伴", "的课", "节课", "堂课", "小班课", "兴趣班", "培训班", "报班", "品鉴会", "品酒会",
                 "品酒活动", "试饮会")),
    "appointment": (("appointment", "book a slot", "book a time", "booking", "make a reservation", "reserve a slot",
                     "reserve a time", "walk in", "walk-in", "book ahead", "book in advance"),
                    ("预约", "提前约", "约时间", "约个时间", "要约吗", "需要约", "挂号")),
    # Narrower questions under topics an FAQ covers (washing the linen, how long a coupon lasts, buying the showroom's
    # pieces), listed on 1 Dec: a returns or student entry does not answer them.
    "product_care": (("shrink", "in the wash", "machine wash", "hand wash", "washable", "care instruction",
                      "how to clean", "how do i clean", "dry clean", "iron it", "tarnish", "went dark", "all dark",
                      "turned dark", "turned black", "shiny again", "shower with", "swim with"),
                     ("缩水", "发黑", "变黑", "氧化", "戴着洗澡", "戴着游泳",
                      "机洗", "手洗", "怎么洗", "能洗吗", "干洗", "怎么清洁", "怎么保养", "掉色", "褪色", "清洗")),
    "expiry": (("expire", "expiry", "valid until", "valid for how long", "how long is it valid", "validity"),
               ("过期", "有效期", "失效", "多久有效", "清零", "作废")),
    "display_items": (("ex-display", "display model", "floor model", "display item", "display piece", "showroom sample",
                       "showroom piece"),
                      ("样品", "展品", "展示品", "样机")),
    # What comes in the box, who may claim a warranty on a gift, an invoice for a person rather than a company (1 Dec,
    # later): a product, warranty or invoice entry does not say.
    "box_contents": (("what's included", "what is included", "whats included", "included in the box",
                      "come with a charger", "comes with a charger", "charger included", "batteries included",
                      "come with batteries", "comes with batteries", "come with a cable", "comes with a cable"),
                     ("包装里有", "盒子里有", "带充电器", "送充电器", "有充电器", "标配", "带电池", "含电池", "包含哪些")),
    "second_owner": (("friend gave me", "someone gave me", "was given to me", "given to me as", "gift from a friend",
                      "got it as a gift", "received it as a gift", "received as a gift", "someone else bought",
                      "didn't buy it myself", "did not buy it myself", "not the original buyer", "original owner",
                      "warranty transfer", "transfer the warranty", "transferable"),
                     ("朋友送的", "别人送的", "送给我的", "不是我买的", "转送", "转让")),
    "invoice_title": (("personal invoice", "invoice in my name", "invoice in my own name", "individual invoice",
                       "invoice for an individual", "don't have a company", "do not have a company",
                       "without a company", "not a company"),
                      ("个人抬头", "个人发票", "开个人", "没有公司", "没公司", "不是公司")),
    # Whether a pet may come along, and whether a membership renews by itself (4 Dec, stop 52): a café or event
    # entry does not say.
    "pets_allowed": (("bring my dog", "bring a dog", "bring our dog", "bring my cat", "bring my pet", "bring pets",
                      "bring a pet", "dog friendly", "dog-friendly", "pet friendly", "pet-friendly", "pets allowed",
                      "dogs allowed"),
                     ("带狗进", "带狗狗进", "带宠物进", "带狗吗", "带狗狗吗", "带宠物吗", "宠物友好", "狗狗进店", "宠物进店",
                      "宠物能进", "狗能进")),
    "auto_renewal": (("auto-renew", "auto renew", "renew automatically", "automatically renew", "automatic renewal"),
                     ("自动续费", "自动续期", "自动扣费")),
    "data_privacy": (("privacy", "personal data", "my data", "gdpr", "delete my data", "unsubscribe",
                      "marketing email", "spam"),
                     ("隐私", "个人信息", "个人数据", "信息泄露", "退订", "营销短信", "骚扰短信", "取消订阅")),
    # Part of an order missing from the parcel, a fee for paying one way, who pays for damage (to rented gear), an
    # itemised invoice, refilling (gas canisters), a coupon given back with a refund (5 Dec, stop 60): a delivery,
    # payment, rental, invoice or refund entry does not say.
    "missing_item": (("missing item", "missing items", "item missing", "items missing", "missing from my order",
                      "missing from the box", "missing from the parcel", "missing from the package",
                      "missing from my parcel", "missing from my package", "wasn't in the box", "weren't in the box",
                      "forgot to include", "forgot to put"),
                     ("少发", "漏发", "少了一件", "少一件", "少了一个", "缺了一件", "缺一件", "缺了一个", "缺件", "少件",
                      "没发全", "漏了一件", "少了一样")),
    "payment_fee": (("surcharge", "card fee", "transaction fee", "processing fee", "fee for paying", "fee to pay",
                     "fee if i pay", "fee for using", "charge for paying", "charge extra for paying",
                     "extra for paying", "fees for paying"),
                    ("付款手续费", "支付手续费", "刷卡手续费", "付款有手续费", "支付有手续费", "刷卡有手续费", "信用卡手续费",
                     "付款要手续费", "支付要手续费", "付款收手续费", "支付收手续费")),
    "compensation": (("compensat", "pay for the damage", "pay for damage", "liable", "liability",
                      "charge me for the damage"),
                     ("赔", "索赔")),
    "invoice_details": (("itemised", "itemized", "line item", "each item listed", "list each item", "list every item"),
                        ("明细", "列明", "逐项", "每件商品都列")),
    "refill": (("refill",), ("灌气", "充气罐", "充装", "续装")),
    "coupon_refund": (("coupon back", "voucher back", "code back", "coupon be returned", "coupon returned",
                       "coupon be refunded", "coupon refunded", "coupon reinstated", "voucher be returned",
                       "lose my coupon", "lose the coupon"),
                      ("券还会退", "券会退", "券退回", "券还能退", "券能退回", "券会返还", "券还给", "券会不会退", "券退不退",
                       "优惠券退还", "券还回来")),
    # Getting big goods up the stairs; graded exams and certificate courses; a room to practise in; who the teachers
    # are (5 Dec, stop 61): a delivery, lessons or rental entry may say, and mostly does not.
    "carry_upstairs": (("upstairs", "up the stairs", "flights of stairs", *NO_LIFT[0], "carry it up", "carried up",
                        "gets up there", "get it up there"),
                       ("上楼", "搬上", "扛上", *NO_LIFT[1], "楼梯房", "爬楼", "步梯")),
    "exams": (("grade exam", "graded exam", "grading exam", "music exam", "abrsm", "trinity exam", "wset",
               "certification class", "certification course", "wine certification", "sommelier course"),
              ("考级", "等级考试", "考证", "品酒师证", "侍酒师")),
    "room_hire": (("practice room", "practise room", "rehearsal room", "rehearsal space", "room by the hour",
                   "studio by the hour", "hire a room", "rent a room", "hire the room", "rent the room"),
                  ("租琴房", "琴房出租", "练琴房", "排练室", "排练厅", "练习室", "场地出租", "租场地")),
    # The shop keeping a customer's goods (a wine cellar); an age limit on what it sells (alcohol): stop 61.
    "storage_service": (("cellar storage", "store it for me", "store them for me", "keep them for me",
                         "keep it for me", "somewhere to keep", "storage service"),
                        ("寄存", "存放在你们", "存在你们", "代存", "存酒")),
    "age_limit": (("under 18", "under-18", "underage", "under age", "age limit", "minimum age", "proof of age",
                   "show id", "check id", "id check", "old enough"),  # and "I'm 17" (_UNDERAGE)
                  ("未成年", "未满18", "不满18", "满18", "年龄限制", "今年17", "今年16", "出示身份证", "查身份证")),
    # Goods the customer did not buy here: a repair, a service or advice for them is the shop's to offer or not
    # ("the grinder isn't from you, can you fix it?"), answered by an entry that says so ("beans bought elsewhere").
    "bought_elsewhere": (("bought elsewhere", "bought it elsewhere", "bought them elsewhere", "bought somewhere else",
                          "not bought from you", "didn't buy it from you", "didn't buy them from you",
                          "didn't buy from you", "not from your shop", "not from you guys", "from another shop",
                          "from another store", "not just our customers", "not only our customers"),
                         ("不是你们家买的", "不是在你们家买的", "不是你们这买的", "不是在你们这买的", "不是你们店买的",
                          "不是在你们店买的", "别家买的", "别处买的", "在别家", "外面买的", "非本店", "不是我们的顾客", "不是本店")),
    "teacher_background": (("qualified teacher", "teachers qualified", "qualifications", "your teachers",
                            "the teachers", "teaching experience"),
                           ("老师都是", "老师资质", "老师的资质", "老师资格", "教龄", "学历", "哪里毕业", "什么学校毕业", "毕业的吗")),
}

# Narrower questions that ask their broader one too: paying cash on delivery is a payment question, so a payment
# entry that says "we do not take cash on delivery" is about it (its question names payment, the customer's the narrower
# case), while one that does not speak of it still does not answer.
PARENTS = {"cash_on_delivery": "payment", "instalments": "payment", "split_payment": "payment",
           "payment_timing": "payment", "return_postage": "returns", "usage_limit": "discount",
           "exchange_other_item": "exchange", "refund_amount": "refund", "lost_parcel": "tracking",
           "accidental_damage": "warranty", "extended_warranty": "warranty",
           "out_of_warranty_repair": "warranty", "special_invoice": "invoice",
           "invoice_title": "invoice", "coupon_stacking": "discount", "customs": "international_shipping",
           "address_change": "order_change", "payment_fee": "payment", "coupon_refund": "discount",
           "invoice_details": "invoice", "carry_upstairs": "delivery_time",
           "points_transfer": "loyalty"}

# How a question is put, not what it is about: "Do you sell tea samples?" is about samples, and answers "Do you sell
# herbal tea?" no more than any other entry does.
FRAMES = frozenset({"product_range"})

DIETS = frozenset({"nuts", "gluten", "dairy", "sugar_free", "vegan"})

# Words with which a shop's own text speaks of an intent, though a customer's use of them asks something else: a
# size guide entry says "size" (and answers "which size for 165 cm?"), a customer's "a different size" asks to
# exchange.
SPOKEN_IN_ENTRIES = {"sizing": (("size",), ("尺码",))}

# The customer's own address was wrong: not a question about where the shop is. Beside another intent it is the
# reason ("typed the wrong address, can I cancel?" asks to cancel); alone ("地址填错了，能改一下吗") it asks to change it.
WRONG_ADDRESS = (("wrong address", "wrong delivery address", "wrong shipping address", "address wrong",
                  "incorrect address", "address is wrong", "address was wrong", "mistake in my address",
                  "mistake in the address", "typo in my address", "typo in the address"),
                 ("地址填错", "地址写错", "填错地址", "写错地址", "地址错了", "地址有误", "地址填的不对", "地址写的不对"))

# An order that has already shipped: beside not wanting it, the story of a cancellation ("已经发货了但我不想要了咋办"
# asks what the cancel entry says: refuse the parcel or return it), not a question about when it ships.
ALREADY_SHIPPED = ("already shipped", "has shipped", "has been shipped", "already been shipped", "already sent",
                   "already dispatched", "already on its way", "已经发货", "已发货", "已经发出", "已经寄出", "已寄出")

# An order placed minutes or an hour ago, or "just": beside not wanting it, a cancellation ("Ordered a chair an hour
# ago and changed my mind"), as "我刚下的单不想要了" is; without, a story ("Just ordered a car seat and have no idea
# how to install it").
_ORDERED_RECENTLY = re.compile(r"\b(?:ordered|bought|placed)\b[^.?!]{0,40}?\b(?:(?:an?|one|two|half an|\d+) "
                               r"(?:hour|hr|min|minute)s? ago|just now)|\bjust (?:ordered|placed)\b|刚下单|刚下的单|刚拍|"
                               r"(?:\d+|几|半|一个?|两个?)(?:分钟|小时|个小时)前(?:下|拍|买)")

# Words that ask about an intent only when the text asks nothing more specific. "How long", "几天" alone ask when an
# order arrives ("How long until I get it?"); beside another intent they ask how long *that* takes ("退货期限是几天？"
# is about returns). "I don't want it" alone asks to send it back; "我刚下的单不想要了" asks to cancel.
WHEN_ALONE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "delivery_time": (("how long", "how soon", "how quickly", "when will", "when would", "when should it",
                       "when should my", "when should the", "when should they", "when can i expect", "working days",
                       "take to", "how many days"),
                      ("多久", "几天", "多长时间", "工作日", "多会儿", "什么时候到", "什么时候能到", "啥时候到", "啥时候能到",
                       "几号到", "几号能到", "哪天到", "哪天能到", "何时到", "何时能到")),
    "returns": (("changed my mind", "don't want it", "do not want it", "no longer want", "already has it",
                 "already have it", "already has one", "doesn't like it", "doesn't like them", "didn't like it",
                 "never opened", "never even opened"),
                ("不想要", "不太想要", "不要了", "没拆封", "还没拆")),
    "address_change": WRONG_ADDRESS,
}

# Where an order goes is no other question: "how long" beside it still asks when the order arrives ("寄到美国要多久").
WHERE_TO = frozenset({"international_shipping"})

# "How long" alone asks when an order arrives only where something travels, or nothing else is said: "how long?",
# "寄上海几天能到", "how many days till my stuff gets here" do; "how many days will a bouquet look nice", "how long
# can the card note be", "龟背竹多久浇一次水" ask how long something else lasts or how often it is done.
IN_TRANSIT = (("get", "here", "reach", "receiv", "come", "order", "parcel", "package", "ship", "send", "sent", "post",
               "deliver", "arriv", "courier", "it take", "to me", "shows up", "show up", "turn up", "turns up",
               "at my door"),
              ("到", "寄", "发", "送", "收", "货", "快递", "下单"))

# Phrases holding an intent's word that ask something else: food that goes off while kept (放坏) is no damage; a
# handwritten card (手写贺卡) that comes with gift wrapping says nothing of what the customer may write on it; the
# cheapest one (最便宜的) asks a price, not a discount; changing a nappy (换尿布) is no exchange; paying in
# installments is no installation; a party "this saturday" (the weather "this weekend") dates an occasion, it does
# not ask the shop's hours. A jar cracked open is opened, not damaged; "nothing wrong with it" (没质量问题) reports no
# damage; points exchanged for money (积分兑换) are no exchange of goods; an order placed "through WeChat" names where,
# not how it is paid; a zip "off its track" is no parcel tracking.
NOT_ASKING: dict[str, tuple[str, ...]] = {"damaged": ("放坏", "crack it open", "crack open", "cracked open",
                                                      "没质量问题", "没有质量问题", "不是质量问题", "非质量问题"),
                                          "card_message": ("手写贺卡",), "discount": ("最便宜",), "student": ("读书会",),
                                          # the shop paying out (for a trade-in), not the customer paying
                                          "payment": ("给现金", "给我现金", "换现金", "折现金", "order through wechat",
                                                      "order via wechat", "order on wechat", "ordered on wechat",
                                                      "ordered through wechat", "ordered via wechat", "微信下单", "微信上下单",
                                                      "微信里下单"),
                                          "tracking": ("off its track", "off the track", "off track"),
                                          "assembly": ("installment",),
                                          "location": ("where are your",),
                                          "hours": ("this saturday", "this sunday", "next saturday", "next sunday",
                                                    "this weekend", "next weekend", "这周六", "这周日", "下周六", "下周日",
                                                    "这周末", "下周末", "周六要去", "周日要去", "周末要去"),
                                          "warranty": ("修改", "修正", "修订", "装修"),
                                          # a guitar's pickup, not collecting an order
                                          "pickup": ("pickups", "pickup on my", "pickup install", "pickup stopped",
                                                     "pickup died", "pickup is dead"),
                                          "accessibility": (*NO_LIFT[0], *NO_LIFT[1]),
                                          "buy_back": ("现金收", "收现金", "收不收现金"),
                                          "customs": (*CUSTOMS_PAPERS[0], *CUSTOMS_PAPERS[1]),
                                          "cancel": ("got cancelled", "got canceled", "was cancelled", "was canceled"),
                                          # points redeemed, a nappy changed; a child's size asked before buying
                                          "exchange": ("换尿布", "换尿片", "兑换", "积分换", "分换", "换券", "换优惠券",
                                                       "换供应商", "换个供应商", "换家供应商", *FIT_FOR_SOMEONE)}

# "After I pay" dates a question ("付款后多长时间发出？" asks when it ships), it does not ask about paying; "收到的商品"
# (the goods I received) names what the question is about, it does not ask when they arrive.
TIME_ANCHORS = ("after payment", "after paying", "after i pay", "after i paid", "once i pay", "once i've paid",
                "付款后", "支付后", "付完款", "付款以后", "下单后", "下单以后", "收到的")


_DEADLINE = re.compile(r"\b(?:by|before) (?:(?:this|next) )?(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|\bby (?:the "
                       r"weekend|tomorrow)\b|\bin time\b|赶得上|赶得及|(?:周|星期|礼拜)[一二三四五六日天]之?前")
_CLOCK = re.compile(r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm)\b|\b\d{1,2}:\d{2}\b|(?:\d{1,2}|[两三四五六七八九十]|十[一二])点")

# Hours on a holiday are narrower than the usual ones: an entry that gives the daily hours and no word of holidays
# does not answer "are you open over Chinese New Year?".
HOLIDAYS = (("holiday", "new year", "spring festival", "national day", "golden week", "may day", "christmas",
             "mid-autumn", "dragon boat", "qingming", "easter"),
            ("节假日", "假期", "放假", "春节", "过年", "除夕", "大年", "年三十", "初一", "初二", "初三", "国庆", "五一", "劳动节",
             "中秋", "端午", "元旦", "清明", "圣诞"))

# A shop's text gives its hours as times it is open at ("open 9:30-21:00 every day").
_OPEN_AT = re.compile(r"\bopen (?:from )?\d")

# A part swapped in a repair ("swap the battery", "battery swap") is the repair, not an exchange of goods. (Not
# 换屏, 换电池: a Chinese repair shop's own entries speak of their repairs so, and its customers' 换 asks for them.)
_PART_SWAP = re.compile(r"\bswap(?:ped|ping)? (?:out )?(?:the |my |a |its )?(?:battery|screen|display|glass|lens|"
                        r"lenses|strap|band|tyre|tire|tube|chain|pads|brake pads|part)s?\b|\b(?:battery|screen|"
                        r"display|lens|tyre|tire|chain) swap\b")

# Sending something to a place abroad, a few words between ("ship to japan", "send my order to Hong Kong").
_SENT_ABROAD = re.compile(r"\b(?:ship|deliver|send|post|mail)\w*(?: \S+){0,3}? to (?:" + "|".join(ABROAD[0]) + r")\b")

# "Where is it?" after an order is named asks where the order is ("I ordered a lamp last week, where is it?"); alone,
# "it" may be the shop ("your showroom, where is it?").
_WHERE_IS_ORDER = re.compile(r"\b(?:order(?:ed)?|bought|purchased?)\b.*\bwhere (?:is|are) (?:it|they)\b")

# One of the things ordered told missing, a few words between ("one of the three items I ordered is missing").
_ONE_MISSING = re.compile(r"\b(?:items?|pieces?|one|parts?|things?)\b(?: \S+){0,5}? (?:is|are|was|were) missing\b")

# An arrival told ("My parcel arrived fine but one item is missing", "今天收到了") is past, not the question when an
# order arrives: not "hasn't arrived", not "到货了吗", not "came with" (what is in the box).
_ARRIVED = re.compile(r"(?<!n't )(?<!not )(?<!yet )(?<!never )\b(?:arrived|came(?! with)|got here|turned up|showed up|"
                      r"(?:was|were) delivered|received (?:it|them|my|the))\b|(?<![没未])(?:收到了|到货了|送到了|签收了)(?![吗没])")

# A shop's question whether it delivers at all ("Do you deliver, and how much does it cost?", "可以寄快递吗？") is about
# delivery as a whole: how long it takes and what it costs, as far as its answer says. (Not 寄养 or 寄存: boarding,
# storage.)
_DELIVERY_OFFERED = re.compile(r"\b(?:do|can|will) you (?:deliver|ship|post)\b|送货|寄快递|(?:能|可以)(?:寄(?![养存])|发货)|配送吗")
DELIVERY = frozenset({"delivery_time", "shipping_cost"})


def offers_delivery(question: str) -> bool:
    """Whether a shop's question asks if it delivers at all."""
    return _DELIVERY_OFFERED.search(folded(question)) is not None


# An order that arrived or was unpacked, in either language: "came cracked", "收到的盖碗裂了", "书到了发现封面压坏了".
_UNPACKED = re.compile(r"\b(?:in (?:my|the) (?:parcel|package|box)|delivered|unpack(?:ed)?|opened (?:it|the|my))\b|"
                       r"收到|到了|到货|签收|拆开|打开")


def arrived(text: str) -> bool:
    """Whether a text says that goods arrived (or were unpacked)."""
    said = folded(text)
    return _ARRIVED.search(said) is not None or _UNPACKED.search(said) is not None


# Putting a thing together is assembling it ("put the bike together", "put my new desk together").
_PUT_TOGETHER = re.compile(r"\bput (?:\S+ ){0,3}together\b")

# Words customers often misspell, as they are spelt: "how long is the warrenty" asks about the warranty.
_MISSPELT = {"warrenty": "warranty", "waranty": "warranty", "warrantee": "warranty", "guarentee": "guarantee",
             "garantee": "guarantee", "gaurantee": "guarantee", "recieve": "receive", "recieved": "received",
             "reciept": "receipt", "adress": "address", "delivary": "delivery", "delievery": "delivery",
             "shiping": "shipping", "cancle": "cancel", "exhange": "exchange", "exchage": "exchange",
             "payement": "payment", "refound": "refund", "discout": "discount", "instalation": "installation"}
_MISSPELLING = re.compile(r"\b(?:" + "|".join(_MISSPELT) + r")\b")

# A number of hours is a duration ("I stare at a screen 10 hours a day", "within 24 hours"), not opening hours.
_DURATION = re.compile(r"\d+\s*(?:hours|hrs)\b")


def _matcher(en: tuple[str, ...]) -> re.Pattern:
    """Each phrase at a word start; one that starts with a sign follows anything ("10% off")."""
    return re.compile("|".join((WORD_START if w[0].isalnum() else "") + re.escape(w) for w in en))


_EN = {intent: _matcher(en) for intent, (en, _) in INTENTS.items()}
_WHEN_ALONE_EN = {intent: _matcher(en) for intent, (en, _) in WHEN_ALONE.items()}
_SPOKEN_EN = {intent: _matcher(en) for intent, (en, _) in SPOKEN_IN_ENTRIES.items()}
_IN_TRANSIT_EN = _matcher(IN_TRANSIT[0])
_HOLIDAYS_EN = _matcher(HOLIDAYS[0])


def _mentions(said: str, en: re.Pattern, zh: tuple[str, ...]) -> bool:
    """Whether a folded() text has one of the English word starts or Chinese substrings."""
    return en.search(said) is not None or any(w in said for w in zh)


# "Where's my parcel?" (or "wheres my parcel") asks what "where is my parcel?" asks.
_WH_IS = re.compile(r"\b(where|what|when|how|who)'?s\b")


def _says_little(said: str) -> bool:
    """A message of a few words ("how long?", "几天啊"): a customer's shorthand for their order."""
    return len(WORD.findall(said)) + len(CJK.findall(said)) / 2 <= 4


def _arrival_told(said: str) -> bool:
    """Whether a clause that asks nothing says an order arrived, and no question asks when one arrives."""
    asking = _questions(said)
    told = any(_ARRIVED.search(clause) for clause in _CLAUSE_END.split(said) if clause not in asking)
    return told and not any(_mentions(q, _EN["delivery_time"], INTENTS["delivery_time"][1])
                            or _mentions(q, _WHEN_ALONE_EN["delivery_time"], WHEN_ALONE["delivery_time"][1])
                            for q in asking)


def _without(text: str, phrases: Iterable[str]) -> str:
    """`text` with each of `phrases` blanked out."""
    for phrase in phrases:
        text = text.replace(phrase, " ")
    return text


def intents(text: str, alone_words: bool = True) -> frozenset[str]:
    """The shop intents a text mentions (English by word starts, Chinese by substrings, either script). `alone_words`
    False: not the WHEN_ALONE words, a customer's shorthand ("how long" alone asks when an order arrives) that a
    shop's own text does not use so ("How long does the battery last?")."""
    said = _MISSPELLING.sub(lambda m: _MISSPELT[m.group()], folded(text))
    said = _DURATION.sub(" ", _without(_WH_IS.sub(r"\1 is", said), TIME_ANCHORS))
    told = _without(said, (*WRONG_ADDRESS[0], *WRONG_ADDRESS[1]))  # what it says beside a wrong address of its own
    told = _PART_SWAP.sub(" ", told)
    unwanted = _mentions(said, _WHEN_ALONE_EN["returns"], WHEN_ALONE["returns"][1])
    shipped_unwanted = unwanted and any(phrase in told for phrase in ALREADY_SHIPPED)
    if shipped_unwanted:
        told = _without(told, ALREADY_SHIPPED)
    found = frozenset(intent for intent, (_, zh) in INTENTS.items()
                      if _mentions(_without(told, NOT_ASKING.get(intent, ())), _EN[intent], zh))
    found |= {"cancel"} if shipped_unwanted or unwanted and _ORDERED_RECENTLY.search(said) else frozenset()
    # A damage report's arrival is its story ("My vase arrived smashed", "镜子收到就裂了"): it asks what to do about the
    # damage, not when an order arrives (the zh FAQ's "收到的商品坏了" has no arrival; its English twin had one).
    found -= {"delivery_time"} if "damaged" in found else frozenset()
    # An order that arrived is no delivery question, unless a question asks when (another) one arrives.
    found -= {"delivery_time"} if "delivery_time" in found and alone_words and _arrival_told(said) else frozenset()
    # An address being changed is the customer's, not a question about where the shop is.
    found -= {"location"} if "address_change" in found else frozenset()
    # "allergic to peanuts" asks about nuts: an allergy named is that diet's question.
    found -= {"allergens"} if found & DIETS else frozenset()
    found |= {"wholesale"} if _BULK.search(said) else frozenset()
    found |= {"group_discount"} if "discount" in found and _DISCOUNT_GROUP.search(said) else frozenset()
    found |= {"hours"} if _OPEN_AT.search(said) else frozenset()
    found |= {"assembly"} if _PUT_TOGETHER.search(said) else frozenset()
    found |= {"missing_item"} if _ONE_MISSING.search(said) else frozenset()
    found |= {"international_shipping"} if _SENT_ABROAD.search(said) else frozenset()
    found |= {"tracking"} if _WHERE_IS_ORDER.search(said) else frozenset()
    # Not wanting the goods, beside their money back, is a return ("changed my mind, can I get a refund?").
    found |= {"returns"} if unwanted and "refund" in found and "cancel" not in found else frozenset()
    found |= {"holiday_hours"} if "hours" in found and _mentions(said, _HOLIDAYS_EN, HOLIDAYS[1]) else frozenset()
    found |= {"classes"} if _SIGN_UP.search(said) else frozenset()
    found |= {"age_limit"} if _UNDERAGE.search(said) else frozenset()
    # Postage asked beside a return or an exchange is the return's ("can I still swap it and who pays postage?"); a
    # shop's own text may say both of its orders' shipping and of returns.
    if alone_words and "shipping_cost" in found and found & {"returns", "exchange"}:
        found = found - {"shipping_cost"} | {"return_postage"}
    found |= {"warranty"} if found == {"fault"} else frozenset()
    found |= {PARENTS[intent] for intent in found if intent in PARENTS}
    # A customer's food "expiring" asks how long it keeps, not a card's or coupon's validity (a shop's text that says
    # both speaks of both).
    found -= {"expiry"} if alone_words and "shelf_life" in found else frozenset()
    if not alone_words:
        return found | {intent for intent, (_, zh) in SPOKEN_IN_ENTRIES.items()
                        if _mentions(said, _SPOKEN_EN[intent], zh)}
    if found - WHERE_TO:
        return found
    alone = {intent for intent, (_, zh) in WHEN_ALONE.items() if _mentions(said, _WHEN_ALONE_EN[intent], zh)}
    if "delivery_time" in alone and not (found or _mentions(said, _IN_TRANSIT_EN, IN_TRANSIT[1]) or _says_little(said)):
        alone.remove("delivery_time")
    # A day something is needed by asks when it is ready ("need new glasses by friday"); a time of day, when the shop
    # is open ("I finish work at 7:30, can I still make it over?", "晚上九点半还能过来吗").
    alone |= {"delivery_time"} if _DEADLINE.search(said) else set()
    alone |= {"hours"} if _CLOCK.search(said) else set()
    return found | alone


# Signing a child up for a class of something: 报个小提琴班, 报名游泳班 (not 报个价, a quote).
_SIGN_UP = re.compile(r"报(?:个|名|一个)?[^\s，。？！,.?!]{0,5}?班")

# A customer telling an age under 18 ("I'm 17 but my parents are fine with it"), not a height ("I'm 165cm").
_UNDERAGE = re.compile(r"\bi(?:'m| am) 1[0-7]\b(?!\s*(?:cm|kg)|\.\d)")

# Dozens of one thing is a bulk order whatever the words around it ("~40 gift boxes for mid-autumn", "50盒礼盒"):
# a count of 20 to 9999 before a unit of goods (not days, yuan or people).
_BULK = re.compile(r"(?<![\d.,])(?:[2-9]\d|[1-9]\d{2,3})\s*(?:(?:gift |small |big |large )?"
                   r"(?:boxes|pieces|pcs|units|sets|items|packs|bags|bottles|tins|cartons|mugs|cups|chairs|desks|lamps"
                   r"|cakes)\b|盒|箱|套|件|罐|份)")

# People a shop may give their own discount, named in a discount question: "Do teachers or seniors get anything off?",
# 老人有优惠吗 ask for that group's discount, which a student discount entry does not answer.
_DISCOUNT_GROUP = re.compile(r"\b(?:seniors?|elderly|pensioners?|retirees?|oaps?|teachers?|nurses?|doctors?|soldiers?|"
                             r"military|veterans?|disabled)\b|老人|老年|长者|退休|老师|教师|军人|医护|护士|医生|残疾")

# Where a message's clauses end: after sentence ends, and after commas, because a Chinese customer's story and
# question are often one sentence ("台灯我已经寄回去了，物流显示前天你们签收了，钱啥时候能回来呀？").
_CLAUSE_END = re.compile(r"(?<=[。！？!?；;，,\n])|(?<=\.)(?=\s)")  # a full stop only before a space ("order no.12")
_QUESTION_EN = re.compile(r"^\W*(?:can|could|will|would|is|are|do|does|did|how|what|when|where|which|who|why|may|"
                          r"should|any|has|have)\b")
_QUESTION_ZH = ("吗", "呢", "啥", "什么", "怎么", "咋", "多久", "多少", "几", "哪", "谁", "是否", "能否", "有没有", "能不能",
                "可不可以", "可以不", "行不行", "管不管", "多大", "多长", "多远", "多重", "多高")
# Asked further into a clause: "if I order today when does it ship", "会不会", "是不是", and a clause that ends in a
# particle that asks: 能退不, 可以试写嘛, 到了没.
_ASKS_WITHIN_EN = re.compile(r"\b(?:how|what|when|where|which|who|why) (?:do|does|did|is|are|was|will|can|could|"
                             r"should|would)\b|\bhow (?:much|many|long) (?:is|are|does|do|will|would)\b|"
                             r"\b(?:do|does|can|could|will|would) (?:you|i|we|it)\b")
_ASKS_WITHIN_ZH = re.compile(r"(?!得)([\u4e00-\u9fff])不\1|[不嘛没][\W\s]*$")  # not 好得不得了 ("ever so good")


def _questions(text: str) -> list[str]:
    """The clauses of (casefolded) `text` that ask: ending in a question mark, starting like an English question,
    with a Chinese question word, or asking further in."""
    return [c for c in _CLAUSE_END.split(text)
            if "?" in c or "？" in c or _QUESTION_EN.match(c) or any(w in c for w in _QUESTION_ZH)
            or _ASKS_WITHIN_EN.search(c) or _ASKS_WITHIN_ZH.search(c)]


def asked(text: str) -> frozenset[str]:
    """The intents of a message's questions alone, not of the story around them ("台灯我已经寄回去了，物流显示前天你们
    签收了，钱啥时候能回来呀？" asks about the refund, not the tracking it mentions); empty when they name none."""
    return frozenset().union(*map(intents, _questions(folded(text))))


def asks_anything(text: str) -> bool:
    """Whether any clause of the message is a question (in either Chinese script: 嗎 as 吗)."""
    return bool(_questions(folded(text)))


# "Do you have X?", "can you add X?" / 有没有X: a question for one thing by name. Its name ends at a clause's end,
# and in English at a word that starts another phrase ("a box of chocolates or a balloon", "Shenzhen? My sister
# lives in Nanshan").
_ASKS_YOU_EN = r"\b(?:do|does|can|could|would|will) (?:you|ya)(?: guys)?(?: also| even| still| ever)? "
_ASKED_FOR_EN = re.compile(_ASKS_YOU_EN + r"(?:have|carry|sell|stock|offer|fix|repair|service|deliver to|ship to|"
                           r"send to|post to|do|add|fit|include)\b([^?.!,;]*)")
_NAME_END_WORDS_EN = "or|and|to|with|because|so|if|that|which|in|on|at"
_NAME_ENDS_EN = re.compile(rf"\b(?:{_NAME_END_WORDS_EN})\b")
# 有 but not 有点 (a bit), 有些, 有人, 有空, 有时, 有没 (the start of 有没有).
_ASKED_FOR_ZH = re.compile(r"(?:有没有|有无|卖不卖|有卖|也有|还有|(?:能|可以|能不能)(?:再|帮我|帮忙)?加|有(?!点|些|人|空|时|没))([^，,。？?！!吗嘛么不呀啊呢]{2,})"
                           r"(?:吗|嘛|么|不|没|呀|啊|呢|？|\?|$)")
# A count of something (一盒, 两束, 3个) names no thing.
_COUNT_ZH = re.compile(r"[一二两三四五六七八九十几\d]+[个盒束件份只条支瓶袋箱套张包罐]")
# Words in such a question that name nothing ("any", "kind of", 那种, 推荐).
_NAMES_NOTHING = frozenset("any some like also other kind kinds type types sort those these them it one ones guys "
                           "please pls there here too still even just really now today tonight tomorrow asap soon "
                           "quickly fast right away".split()) | frozenset(
    {"那种", "这种", "什么", "一些", "一个", "推荐", "适合", "或者", "还是", "名额", "空位", "位置"})


# "Can you resize a titanium ring?": a service done to one thing named by a word or two before its noun. The name
# ends where a name asked for does, and at a word that starts what is said of it ("for me", "after I pay").
# The name is made of words, spaces, hyphens and apostrophes: a question mark, an emoji or a bracket ends it.
_SERVICE_ON_EN = re.compile(_ASKS_YOU_EN + r"[a-z]+ (?:(?:a|an|the|my|your|our|some|these|those|his|her) )?"
                            r"([a-z0-9' -]*)")
# Words that say how big or good a thing is, not what kind of thing: "a little card" is the gift entry's card.
_SAYS_NOTHING_OF_KIND = frozenset("little small big large nice new old good cheap simple short long few".split())
_OBJECT_ENDS_EN = re.compile(rf"\b(?:{_NAME_END_WORDS_EN}|for|from|into|without|after|before|when|while|until|by|"
                             r"about|of|as|than|too|up|out|off|back)\b")


def thing_served(text: str) -> tuple[str, ...]:
    """The two or three words that name the thing an English "can you <do> X?" question is about, its noun last
    ("titanium", "ring"; "tandem", "bikes"); empty for any other message, one word, or words that name nothing
    ("can you tell me ...", "can you send it ...")."""
    found = _SERVICE_ON_EN.search(folded(text))
    if found is None:
        return ()
    phrase = _OBJECT_ENDS_EN.split(found.group(1).replace("'s", ""))[0]
    words = [w for w in WORD.findall(phrase) if len(w) > 1 and w not in _SAYS_NOTHING_OF_KIND]  # e-invoice: invoice
    if not 2 <= len(words) <= 3 or any(w in EN_STOP or w in _NAMES_NOTHING or w.isdigit() for w in words):
        return ()
    return tuple(words)


# A question that ends in "too" or "as well" asks whether what the shop says of some things holds for one more ("do u
# repair jackets too?", "are made-to-measure curtains returnable too?").
_TOO_EN = re.compile(r"\b(?:too|as well)\W*$")


def extended_to(text: str) -> tuple[str, ...]:
    """The words that name the thing an English "... X too?" question extends a rule to ("jackets"; "made", "measure",
    "curtains"), not the words that name what is asked of it ("repair", "returnable": an intent); empty for any
    other message."""
    for clause in _questions(folded(text)):
        if _TOO_EN.search(clause):
            return tuple(w for w in WORD.findall(_TOO_EN.sub("", clause)) if w not in EN_STOP
                         and w not in _NAMES_NOTHING and w not in _SAYS_NOTHING_OF_KIND and not w.isdigit()
                         and not intents(w))
    return ()


def asked_for(text: str) -> tuple[str, ...]:
    """The words that name the one thing a "do you have X?" (有没有X, 有X吗, 能加X吗) question asks for ("gentle", "monster",
    "sunglasses"; 防窥膜); empty when the message asks for no thing by name. Chinese is split into words by jieba;
    single characters (的, 花) name too little to tell."""
    said = folded(text)
    english = _ASKED_FOR_EN.search(said)
    if english is not None:
        name = _NAME_ENDS_EN.split(english.group(1))[0]
        words = WORD.findall(name)
    else:
        chinese = _ASKED_FOR_ZH.search(said)
        words = [w for w in quiet_jieba().lcut(chinese.group(1)) if len(w) > 1] if chinese else []
    return tuple(w for w in words if w not in EN_STOP and w not in _NAMES_NOTHING and not w.isdigit()
                 and not _COUNT_ZH.fullmatch(w))
