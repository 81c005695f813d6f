"""Slack event ids already handled, so a retried delivery is processed once.

Slack retries a delivery three times within about five minutes, so an id needs keeping for a little while
only; `forget_before` drops the old ones.
"""

from __future__ import annotations

from datetime import datetime

from storage.db import Database


class SlackEventsRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def first_time(self, event_id: str) -> bool:
        """Record the event id; True only the first time it is seen."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO slack_events (event_id, received_at) VALUES (?, ?)", (event_id, self.db.now())
            )
            return cursor.rowcount == 1

    async def forget_before(self, moment: datetime) -> int:
        """Drop the ids received before `moment` (timezone-aware); returns how many."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM slack_events WHERE received_at < ?", (moment.isoformat(),))
            return cursor.rowcount
