"""Numbers people type (`/distill set`, DISTILL_* variables), checked against their bounds before any arithmetic.

Python turns any number of digits into an int and Decimal takes any exponent, so `budget=1e999990` is a valid
amount: making micro-dollars of it builds an int of a million digits (26 s of CPU on the event loop), and an int
past 4,300 digits cannot even be written as JSON. So a number is refused by its text's length, then compared with
its bounds while it is still the text's own Decimal (cheap at any exponent), and only then converted.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MAX_DIGITS = 24  # longer than any number a setting takes, written out or with an exponent
SHOWN_CHARS = 40


def shown(raw: str) -> str:
    """The text a person typed, quoted for a message, shortened when long."""
    text = raw.strip()
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS - 8]!r}… ({len(text):,} characters)"


def decimal_of(raw: str) -> Decimal | None:
    """The text as a finite Decimal, or None when it is not a number of a sensible length."""
    text = raw.strip()
    if len(text) > MAX_DIGITS:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def whole(raw: str, minimum: int, maximum: int, why: str = "") -> int:
    """A whole number from `minimum` to `maximum`; ValueError says the bounds (and `why`, when given)."""
    value = decimal_of(raw)
    if value is None or value != value.to_integral_value() or not minimum <= value <= maximum:
        raise ValueError(f"expected a whole number from {minimum:,} to {maximum:,}{why}, got {shown(raw)}")
    return int(value)


def number(raw: str, maximum: Decimal, example: str) -> float:
    """A number above 0 and at most `maximum` (a learning-rate multiplier, seconds)."""
    value = decimal_of(raw)
    if value is None or not 0 < value <= maximum:
        raise ValueError(f"expected a number above 0 and at most {maximum:,} such as {example}, got {shown(raw)}")
    return float(value)

