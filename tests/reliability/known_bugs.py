"""Assertions that fail because of a bug reported to its owner.

A test marked `xfail(strict=True, raises=KnownBug)` still fails on any other assertion, and turns red (XPASS)
the day the bug is fixed, so the marker is removed with the fix.
"""


class KnownBug(AssertionError):
    """What the product should do and does not yet (the message says what it did instead)."""


def unless_known_bug(condition: bool, message: str) -> None:
    """Raise KnownBug(message) when the condition is false."""
    if not condition:
        raise KnownBug(message)
