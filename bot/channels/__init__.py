"""Channels other than Telegram, each over the same conversation service."""
