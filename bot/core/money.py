"""Money as whole micro-dollars (1 USD = 1,000,000): parsed from text once, rounded up once, shown one way.

Every amount the bot stores, compares or reserves is an `int` of micro-dollars; a Decimal appears only while a price
is multiplied out, and `micro_usd_rounded_up` turns it back so a quote never under-states. Every dollar figure shown
to a person goes through `format_usd`.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from bot.core.numbers import decimal_of, shown

MICRO = 1_000_000
MAX_USD = Decimal(1_000_000)  # a budget or an auto-approval amount above a million dollars is a typo


def usd_to_micro(raw: str, maximum: Decimal = MAX_USD) -> int:
    """A typed dollar amount ("5", "2.50") as micro-dollars, rounded to the nearest one, from 0 to `maximum`;
    its bounds are checked on the text's own Decimal before any arithmetic (bot/core/numbers.py)."""
    value = decimal_of(raw)
    if value is None or not 0 <= value <= maximum:
        raise ValueError(f"expected an amount in US dollars from 0 to {maximum:,} such as 5 or 2.50, got {shown(raw)}")
    return int((value * MICRO).to_integral_value())


def micro_usd_rounded_up(micro_usd: Decimal) -> int:
    """A Decimal amount of micro-dollars as a whole number of them, rounded up so a quote never under-states."""
    return int(micro_usd.to_integral_value(rounding=ROUND_CEILING))


def format_usd(micro_usd: int) -> str:
    """$12.35, or four decimals under one cent ($0.0042)."""
    places = Decimal("0.01") if micro_usd >= MICRO // 100 or micro_usd == 0 else Decimal("0.0001")
    return f"${(Decimal(micro_usd) / MICRO).quantize(places, rounding=ROUND_HALF_UP):,}"
