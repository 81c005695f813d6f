"""The reliability tests drive the real app the way tests/handlers does: its `make_bot` and `bot` fixtures."""

from tests.handlers.conftest import bot, make_bot

__all__ = ["bot", "make_bot"]
