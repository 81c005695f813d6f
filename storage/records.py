"""Mapping between table rows and the repositories' dataclasses.

Columns named `*_json` hold JSON and map to a field without the suffix; every other column maps to the
field of the same name.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import aiosqlite

from storage.db import Database

T = TypeVar("T")


def to_record(cls: type[T], row: sqlite3.Row) -> T:
    values: dict[str, Any] = {}
    for key in row.keys():
        if key.endswith("_json"):
            values[key[:-5]] = json.loads(row[key])
        else:
            values[key] = row[key]
    return cls(**values)


def redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """Every string inside a JSON-like value passed through `redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list | tuple):
        return [redacted(item, redact) for item in value]
    if isinstance(value, dict):
        return {key: redacted(item, redact) for key, item in value.items()}
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


async def update_columns(
    conn: aiosqlite.Connection, table: str, row_id: int, changes: Mapping[str, Any], allowed: Collection[str]
) -> None:
    """UPDATE the named columns of one row; refuses column names outside `allowed`."""
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"{table}: cannot update {sorted(unknown)}")
    if not changes:
        return
    assignments = ", ".join(f"{column} = ?" for column in changes)
    await conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", [*changes.values(), row_id])


class TableRepo:
    """Shared reads and updates of a table whose rows are keyed by `id` and map to `record`."""

    table: str
    record: type
    updatable: frozenset[str]
    free_text: frozenset[str] = frozenset()  # columns of text from outside, stored through db.redact

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, row_id: int) -> Any:
        row = await self.db.fetchone(f"SELECT * FROM {self.table} WHERE id = ?", (row_id,))
        return to_record(self.record, row) if row else None

    async def require(self, row_id: int) -> Any:
        found = await self.get(row_id)
        if found is None:
            raise LookupError(f"{self.table}: no row with id {row_id}")
        return found

    async def update(self, row_id: int, **changes: Any) -> Any:
        """Change the listed columns (JSON columns by their field name) and touch updated_at."""
        async with self.db.transaction() as conn:
            await self.write(conn, row_id, changes)
        return await self.require(row_id)

    async def write(self, conn: aiosqlite.Connection, row_id: int, changes: Mapping[str, Any]) -> None:
        """The UPDATE of `update`, inside the caller's transaction."""
        columns = {}
        for name, value in changes.items():
            if f"{name}_json" in self.updatable:
                columns[f"{name}_json"] = dumps(value)
            else:
                columns[name] = self.db.redact(value) if name in self.free_text and value is not None else value
        columns["updated_at"] = self.db.now()
        await update_columns(conn, self.table, row_id, columns, self.updatable | {"updated_at"})

    async def where(self, condition: str, params: Sequence[Any] = ()) -> list[Any]:
        rows = await self.db.fetchall(f"SELECT * FROM {self.table} WHERE {condition} ORDER BY id", params)
        return [to_record(self.record, r) for r in rows]

    async def for_run(self, run_id: int) -> list[Any]:
        return await self.where("run_id = ?", (run_id,))
