"""The SQLite database: connections, the single serialized writer, and reads that never block the loop.

WAL mode lets readers run beside the writer. All writes go through `Database.transaction()`, which holds
one asyncio lock around one writer connection, so two tasks can never interleave their statements inside
one transaction (sqlite3 connections have a single transaction state). aiosqlite runs each connection on
its own thread, so neither reads nor writes stall the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import StorageError
from storage.migrations import Migration, apply_migrations, bundled_migrations

BUSY_TIMEOUT_MS = 10_000
Redact = Callable[[str], str]  # masks credentials in a text before it is stored (the bot's: bot/core/logs.py)


def unchanged(text: str) -> str:
    return text


def utcnow() -> str:
    """Now, as the ISO-8601 UTC text the schema stores (the system clock; the bot passes its own: bot/core/clock.py)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)  # autocommit; transactions are explicit
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class Database:
    """One writer connection behind a lock and one reader connection."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection,
                 now: Callable[[], str] = utcnow, redact: Redact = unchanged) -> None:
        self.path = path
        self.now = now
        # Free text from outside (errors, provider answers, audit details) passes it on the way in: a provider that
        # quotes the caller's key in an error message must not put the key in the database.
        self.redact = redact
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        # One statement at a time on the reader, closed before the next starts: while any statement of a connection
        # is open, SQLite keeps its read transaction, so a read interleaved with another task's would see the
        # database as it was when that one began, without rows committed since (a write read back could be missing).
        self._read_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: str | Path, *, migrations: Sequence[Migration] | None = None, migrate: bool = True,
        now: Callable[[], str] = utcnow, redact: Redact = unchanged,
    ) -> Database:
        """Open (creating if needed) and, unless `migrate` is false, migrate to the latest schema."""
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        writer = reader = None
        try:
            writer = await _connect(path)
            mode = await (await writer.execute("PRAGMA journal_mode = WAL")).fetchone()
            if mode[0].lower() != "wal":
                raise StorageError(f"{path}: SQLite refused WAL mode (got {mode[0]}); use a local disk path.")
            if migrate:
                await apply_migrations(writer, bundled_migrations() if migrations is None else migrations)
            reader = await _connect(path)
        except BaseException as exc:
            for conn in (writer, reader):
                if conn is not None:
                    await conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StorageError(f"Cannot open the database at {path}: {exc}. Check DISTILL_DB.") from exc
            raise
        return cls(path, writer, reader, now, redact)

    async def close(self) -> None:
        await self._reader.close()
        async with self._write_lock:
            await self._writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Serialized write transaction: commits on success, rolls back on any exception."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")

    async def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> int:
        """One write statement in its own transaction; returns lastrowid."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.lastrowid

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        async with self._read_lock, self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Row | None:
        async with self._read_lock, self._reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0])

    async def integrity_check(self) -> list[str]:
        """SQLite's integrity and foreign-key checks; an empty list means the file is sound."""
        rows = await self.fetchall("PRAGMA integrity_check")
        problems = [r[0] for r in rows if r[0] != "ok"]
        for r in await self.fetchall("PRAGMA foreign_key_check"):
            problems.append(f"foreign key: table {r[0]} rowid {r[1]} refers to missing {r[2]}")
        return problems
