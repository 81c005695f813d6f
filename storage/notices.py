"""Messages that must reach a run's thread exactly once, even across restarts.

A poster first claims the notice's key; only the claim that inserts the row may post. The Slack
message ts is stored afterwards so the message can be edited later.
"""

from __future__ import annotations

from storage.db import Database


class NoticesRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, run_id: int, key: str) -> bool:
        """True for the first caller with this (run, key); False for every later one."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO notices (run_id, key, created_at) VALUES (?, ?, ?)", (run_id, key, self.db.now())
            )
            return cursor.rowcount == 1

    async def release(self, run_id: int, key: str) -> None:
        """Give a claim back when posting failed, so a later attempt may post it."""
        await self.db.execute("DELETE FROM notices WHERE run_id = ? AND key = ? AND message_ts IS NULL", (run_id, key))

    async def set_message_ts(self, run_id: int, key: str, message_ts: str) -> None:
        await self.db.execute(
            "UPDATE notices SET message_ts = ? WHERE run_id = ? AND key = ?", (message_ts, run_id, key)
        )

    async def message_ts(self, run_id: int, key: str) -> str | None:
        row = await self.db.fetchone("SELECT message_ts FROM notices WHERE run_id = ? AND key = ?", (run_id, key))
        return row[0] if row else None
