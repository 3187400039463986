"""Which customers are at the model: the count both backends keep for the place-in-line notice."""

from __future__ import annotations

import contextlib


class CountsTurns:
    """`async with backend.turn():` around one customer message's model calls; `open_turns` is how many are in one."""

    open_turns: int = 0

    @contextlib.asynccontextmanager
    async def turn(self):
        self.open_turns += 1
        try:
            yield
        finally:
            self.open_turns -= 1
