"""Identifiers in Slack's formats: message timestamps and object IDs."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

MICROS = 1_000_000


def name_id(prefix: str, name: str) -> str:
    """A readable ID for a named object, e.g. ("U", "alice") -> "U0ALICE"; Slack IDs are upper-case alphanumerics."""
    letters = re.sub(r"[^A-Z0-9]", "", name.upper())
    if not letters:
        raise ValueError(f"{name!r} has no letters or digits to build a Slack ID from; use a name like 'alice'")
    return f"{prefix}0{letters}"


def opaque(length: int = 24) -> str:
    """Random URL-safe text for trigger IDs, upload tickets and response_url secrets."""
    return secrets.token_hex(length // 2)


class TsClock:
    """Message `ts` values: "<seconds>.<6 digits>", from the given clock but strictly increasing.

    Slack's ts is the message's ID within a channel, so two posts in the same microsecond must still differ.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last_micros = 0

    def next(self) -> str:
        micros = max(int(self._clock() * MICROS), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // MICROS}.{micros % MICROS:06d}"


class Sequence:
    """Numbered IDs such as F00000001, Ev00000001, in creation order (stable across runs, unlike Slack's)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        return f"{prefix}{self._counts[prefix]:08d}"
