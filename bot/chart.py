"""The /stats chart, drawn into a pixel buffer and written as a PNG in pure Python (zlib + struct)."""

from __future__ import annotations

import struct
import zlib

WIDTH, HEIGHT, MARGIN = 448, 200, 16
WHITE, BLUE, RED, GREY = (255, 255, 255), (110, 150, 215), (215, 65, 55), (70, 70, 70)


def png(width: int, height: int, rows: list[bytearray]) -> bytes:
    """8-bit RGB rows (3 bytes a pixel, top row first) as a PNG file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # bit depth 8, colour type 2 (RGB)
    pixels = b"".join(b"\x00" + bytes(row) for row in rows)  # filter type 0 (none) before each row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels, 9))
            + chunk(b"IEND", b""))


def daily_png(days: list[tuple[int, int]]) -> bytes:
    """One bar per (messages, negative) day, oldest left: its height the messages, its red bottom the negative ones."""
    rows = [bytearray(bytes(WHITE) * WIDTH) for _ in range(HEIGHT)]

    def fill(x0: int, x1: int, y0: int, y1: int, colour: tuple[int, int, int]) -> None:
        for y in range(y0, y1):
            rows[y][3 * x0:3 * x1] = bytes(colour) * (x1 - x0)

    peak = max((messages for messages, _ in days), default=0) or 1
    baseline, plot_height = HEIGHT - MARGIN, HEIGHT - 2 * MARGIN
    slot = (WIDTH - 2 * MARGIN) // max(len(days), 1)
    for i, (messages, negative) in enumerate(days):
        x0, x1 = MARGIN + i * slot + slot // 6, MARGIN + (i + 1) * slot - slot // 6
        height = round(plot_height * messages / peak)
        red = round(height * negative / messages) if messages else 0
        fill(x0, x1, baseline - height, baseline - red, BLUE)
        fill(x0, x1, baseline - red, baseline, RED)
    fill(MARGIN, WIDTH - MARGIN, baseline, baseline + 1, GREY)
    return png(WIDTH, HEIGHT, rows)


def caption(days: list[tuple[int, int]]) -> str:
    """What the picture shows, in words (the PNG has no text: no fonts needed)."""
    total, negative = sum(m for m, _ in days), sum(n for _, n in days)
    share = negative / total if total else 0.0
    peak = max((m for m, _ in days), default=0)
    return (f"Customer messages per day, last {len(days)} days, today on the right; red: the part read negative.\n"
            f"In all: {total}, {share:.0%} negative; the busiest day: {peak}.")
