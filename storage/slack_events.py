"""Slack event ids already handled, so a retried delivery is processed once."""

from __future__ import annotations

from storage.db import Database, utcnow


class SlackEventsRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def first_time(self, event_id: str) -> bool:
        """Record the event id; True only the first time it is seen."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO slack_events (event_id, received_at) VALUES (?, ?)", (event_id, utcnow())
            )
            return cursor.rowcount == 1
