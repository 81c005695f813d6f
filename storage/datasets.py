"""Uploaded datasets and their rows, recognized again by the sha256 of the file's bytes."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from storage.db import Database
from storage.records import dumps, to_record

_INSERT_CHUNK = 5_000


@dataclass(frozen=True)
class Dataset:
    id: int
    sha256: str
    filename: str
    size_bytes: int
    encoding: str
    delimiter: str
    columns: list[str]
    row_count: int
    created_at: str
    profile: dict[str, Any] = field(default_factory=dict)
    kind: str = "csv"  # csv, or chat: examples carrying the teacher's answers (bot/data/imports.py)


class DatasetsRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        sha256: str,
        filename: str,
        size_bytes: int,
        encoding: str,
        delimiter: str,
        columns: Sequence[str],
        rows: Iterable[dict[str, Any]],
        profile: dict[str, Any],
        kind: str = "csv",
    ) -> Dataset:
        """Store a dataset and all its rows in one transaction; the same bytes again return the first copy."""
        existing = await self.get_by_sha256(sha256)
        if existing:
            return existing
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO datasets (sha256, filename, size_bytes, encoding, delimiter, columns_json,"
                " row_count, profile_json, created_at, kind) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (sha256, filename, size_bytes, encoding, delimiter, dumps(list(columns)), dumps(profile),
                 self.db.now(), kind),
            )
            dataset_id = cursor.lastrowid
            numbered = ((dataset_id, index, dumps(row)) for index, row in enumerate(rows))
            count = 0
            # Serializing rows is CPU work: do it off the event loop, a chunk at a time.
            while chunk := await asyncio.to_thread(lambda: list(itertools.islice(numbered, _INSERT_CHUNK))):
                await conn.executemany(
                    "INSERT INTO dataset_rows (dataset_id, row_index, data_json) VALUES (?, ?, ?)", chunk
                )
                count += len(chunk)
            await conn.execute("UPDATE datasets SET row_count = ? WHERE id = ?", (count, dataset_id))
        dataset = await self.get(dataset_id)
        assert dataset is not None
        return dataset

    async def get(self, dataset_id: int) -> Dataset | None:
        row = await self.db.fetchone("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        return to_record(Dataset, row) if row else None

    async def require(self, dataset_id: int) -> Dataset:
        found = await self.get(dataset_id)
        if found is None:
            raise LookupError(f"datasets: no row with id {dataset_id}")
        return found

    async def get_by_sha256(self, sha256: str) -> Dataset | None:
        row = await self.db.fetchone("SELECT * FROM datasets WHERE sha256 = ?", (sha256,))
        return to_record(Dataset, row) if row else None

    async def rows(self, dataset_id: int, indexes: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """Rows by their index: all of them, or only the listed indexes."""
        if indexes is None:
            found = await self.db.fetchall(
                "SELECT row_index, data_json FROM dataset_rows WHERE dataset_id = ? ORDER BY row_index",
                (dataset_id,),
            )
        else:
            wanted = sorted(set(indexes))
            found = await self.db.fetchall(
                "SELECT row_index, data_json FROM dataset_rows WHERE dataset_id = ?"
                " AND row_index IN (SELECT value FROM json_each(?)) ORDER BY row_index",
                (dataset_id, json.dumps(wanted)),
            )
        # Decoding many rows is CPU work: keep it off the event loop.
        return await asyncio.to_thread(lambda: {r["row_index"]: json.loads(r["data_json"]) for r in found})
