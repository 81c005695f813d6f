"""The one clock behind every "now" of the bot, its storage and the sandbox.

Production reads the system clock. What depends on the calendar (a model's shutdown date, an approval's
expiry) asks a `Clock`, so a test can pin "today" (`Clock.at("2026-11-29")`) and pass on any real date: time
still runs at real speed from the pinned moment, and `advance` jumps ahead (an approval past its expiry).
"""

from __future__ import annotations

import datetime as dt


class Clock:
    """UTC wall time: the system's, or the system's shifted to start at a pinned moment."""

    def __init__(self, offset: dt.timedelta = dt.timedelta(0)) -> None:
        self._offset = offset

    @classmethod
    def at(cls, moment: str | dt.date | dt.datetime) -> Clock:
        """A clock that reads `moment` now (a date means its noon, UTC) and runs on from there."""
        if isinstance(moment, str):
            moment = dt.datetime.fromisoformat(moment) if "T" in moment else dt.date.fromisoformat(moment)
        if not isinstance(moment, dt.datetime):
            moment = dt.datetime.combine(moment, dt.time(12), dt.UTC)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return cls(moment - dt.datetime.now(dt.UTC))

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self._offset

    def today(self) -> dt.date:
        return self.now().date()

    def timestamp(self) -> float:
        """Unix seconds, as providers write `created` and `created_at`."""
        return self.now().timestamp()

    def iso(self) -> str:
        """Now as the ISO-8601 UTC text the database stores."""
        return self.now().isoformat(timespec="microseconds")

    def advance(self, delta: dt.timedelta) -> None:
        """Jump ahead (or back, with a negative delta); every reader of this clock sees the jump."""
        self._offset += delta
