"""The Telegram channel: app wiring, handlers, inbox, outbox, webhook, health endpoint and /stats chart."""
