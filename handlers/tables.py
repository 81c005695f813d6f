"""Monospace tables for Slack: aligned columns, escaped cells, cut into code blocks that fit a section.

A section's text holds at most 3000 characters (https://docs.slack.dev/reference/block-kit/blocks/section-block),
so a long table becomes several code blocks, each repeating the header so it reads on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from handlers.mrkdwn import escape

MAX_SECTION_TEXT = 3000
FENCE = "```"
MAX_CELL = 60


def _cell(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def format_table(headings: Sequence[str], rows: Sequence[Sequence[object]], *,
                 right_from: int | None = None) -> list[str]:
    """Lines of an aligned table (heading, rule, rows), not escaped; columns from `right_from` on align right."""
    table = [[_cell(h) for h in headings], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headings))]

    def line(row: list[str]) -> str:
        cells = [c.rjust(w) if right_from is not None and i >= right_from else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return [line(table[0]), "  ".join("-" * w for w in widths), *(line(row) for row in table[1:])]


def code_chunks(lines: Sequence[str], *, header_lines: int = 0, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Escaped code blocks of at most `limit` characters holding every line once, in order; the first
    `header_lines` lines are repeated at the top of every block."""
    escaped = [escape(line).replace(FENCE, "ˋˋˋ") for line in lines]  # a fence inside would end the block early
    return pack(escaped[header_lines:], header=escaped[:header_lines], fence=FENCE, limit=limit)


def pack(lines: Sequence[str], *, header: Sequence[str] = (), fence: str = "",
         limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Join lines into texts of at most `limit` characters (fences and header included), in order.

    A line too long for a text on its own is cut with an ellipsis.
    """
    room = limit - 2 * len(fence)
    header_size = sum(len(h) + 1 for h in header)
    chunks: list[list[str]] = []
    current: list[str] = []
    size = header_size
    for line in lines or [""]:
        if len(line) > room - header_size:
            line = line[: room - header_size - 1] + "…"
        if current and size + len(line) + 1 > room:
            chunks.append(current)
            current, size = [], header_size
        current.append(line)
        size += len(line) + 1
    chunks.append(current)
    return [fence + "\n".join([*header, *chunk]) + fence for chunk in chunks]
