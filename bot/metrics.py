"""What the bot counts for Prometheus (/metrics): messages, replies, latency, sentiment, alerts, the model's load."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A reply takes ~1-10 s on a small CPU; a busy queue can push it to minutes.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    """One running bot's numbers, in their own registry (so tests and benches can run several bots at once)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.messages_in = Counter("shopbot_messages_in", "Customer messages stored, by kind (text, photo, ...)",
                                   ["kind"], registry=r)
        self.replies_out = Counter("shopbot_replies_out", "Replies the channel confirmed sent", registry=r)
        self.reply_latency = Histogram("shopbot_reply_latency_seconds",
                                       "From a customer message's arrival to its handling done (reply sent)",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.sentiment = Counter("shopbot_sentiment", "Customer messages by the sentiment the model read",
                                 ["label"], registry=r)
        self.alerts = Gauge("shopbot_alerts", "Alerts in the database: sent to the operator chat, or pending there",
                            ["state"], registry=r)
        self.queue_depth = Gauge("shopbot_model_queue_depth",
                                 "Customer messages being read or answered by the model, or waiting for it", registry=r)
        self.tokens_per_second = Gauge("shopbot_reply_tokens_per_second",
                                       "Tokens per second of the last model-written reply, waiting for its batch "
                                       "included", registry=r)

    def reply_written(self, tokens: int, seconds: float) -> None:
        if seconds > 0:
            self.tokens_per_second.set(tokens / seconds)

    def alert_counts(self, sent: int, pending: int) -> None:
        self.alerts.labels("sent").set(sent)
        self.alerts.labels("pending").set(pending)
