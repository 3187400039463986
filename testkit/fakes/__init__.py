"""Test doubles for the end-to-end tests and the benches: the Telegram Bot API, a scripted engine, a model proxy."""
