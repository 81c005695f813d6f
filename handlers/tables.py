"""Monospace tables for Slack: aligned columns of cells cut to a readable width (handlers/packer.py cuts the
lines into code blocks that fit a section, each repeating the header)."""

from __future__ import annotations

from collections.abc import Sequence

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


def label_counts(counts: Sequence[tuple[str, int]]) -> list[str]:
    """Rows per label, as a table's lines."""
    return format_table(("label", "rows"), [(label, f"{n:,}") for label, n in counts], right_from=1)
