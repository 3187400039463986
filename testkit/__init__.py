"""Helpers the tests and the benches share: the fake Bot API, running the bot or web chat over it, a real llama.cpp
server, headless Chromium. Test doubles only; not part of the installed bot."""
