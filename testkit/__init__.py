"""Helpers the tests and the benches share: the fake Bot API, running the bot or web chat over it, a real llama.cpp
server, headless Chromium. Test doubles only; not part of the installed bot."""

import socket


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
