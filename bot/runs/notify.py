"""The notifier: how bot/ reaches a run's thread without knowing Slack. handlers/ implements it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bot.core.errors import DistillError
from bot.core.events import Event
from bot.runs.cards import Card
from storage.runs import Run


class Notifier(Protocol):
    async def show_card(self, run: Run, card: Card) -> str | None:
        """Post the run card as the thread root (the first time) or edit it in place; return its ts.
        Edits may be throttled: the newest card wins."""

    async def post(self, run: Run, event: Event) -> str | None:
        """Post the event into the run's thread; return the message ts."""

    async def update(self, run: Run, ts: str, event: Event) -> None:
        """Replace the message at `ts` (an approval request after a decision)."""

    async def upload(self, run: Run, path: Path, title: str) -> None:
        """Share a file (a chart, an export) into the run's thread."""


class DeliveryError(DistillError):
    """A message could not reach the run's thread (the chat service refused it or kept rate-limiting).

    Stages catch it: what the run did is stored either way, so a lost message never changes the run's state.
    Commands let it through, so the person who typed one learns why nothing appeared.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
