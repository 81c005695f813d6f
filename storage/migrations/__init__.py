"""Numbered SQL migrations tracked with `PRAGMA user_version`.

`NNNN_name.sql` files in this folder are applied in order. Each runs in its own transaction together with
the `user_version` bump (SQLite keeps that pragma in the transactional file header), so a failing
migration leaves the schema exactly as it was and a re-run applies each one once.
"""

from __future__ import annotations

import importlib.resources
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from storage.errors import StorageError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """Split the script into complete statements (executescript would commit on its own)."""
        statements, pending = [], ""
        for line in self.sql.splitlines(keepends=True):
            pending += line
            if sqlite3.complete_statement(pending):
                statements.append(pending.strip())
                pending = ""
        if pending.strip() and not all(
            ln.strip().startswith("--") or not ln.strip() for ln in pending.splitlines()
        ):
            raise StorageError(f"Migration {self.name} ends with an incomplete statement: {pending.strip()[:80]}")
        return statements


def bundled_migrations() -> list[Migration]:
    folder = importlib.resources.files(__name__)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StorageError(f"Migrations must be numbered 0001, 0002, ... without gaps; found {versions}")
    return found


async def apply_migrations(conn: aiosqlite.Connection, migrations: Sequence[Migration]) -> int:
    """Apply every migration newer than the file's user_version; return the resulting version."""
    current = (await (await conn.execute("PRAGMA user_version")).fetchone())[0]
    latest = max((m.version for m in migrations), default=0)
    if current > latest:
        raise StorageError(
            f"The database is at schema version {current}, newer than this distill-bot knows ({latest}). "
            "Upgrade distill-bot or point DISTILL_DB at another file."
        )
    for migration in migrations:
        if migration.version <= current:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.statements():
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
        except sqlite3.Error as exc:
            await conn.execute("ROLLBACK")
            raise StorageError(f"Migration {migration.name} failed and was rolled back: {exc}") from exc
        await conn.execute("COMMIT")
        current = migration.version
    return current
