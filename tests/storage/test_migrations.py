import sqlite3

import pytest

from storage import Storage
from storage.db import Database
from storage.errors import StorageError
from storage.migrations import Migration, bundled_migrations


async def test_migrations_create_every_table_on_an_empty_file(tmp_path):
    db = await Database.open(tmp_path / "fresh.db")
    try:
        assert await db.schema_version() == bundled_migrations()[-1].version
        tables = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"datasets", "dataset_rows", "runs", "run_rows", "completions", "approvals",
                "approval_decisions", "jobs", "batches", "evals", "notices", "audit_log",
                "slack_events"} <= tables
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
        assert (await db.fetchone("PRAGMA busy_timeout"))[0] >= 1000
    finally:
        await db.close()


async def test_rerunning_migrations_is_a_no_op(tmp_path):
    path = tmp_path / "twice.db"
    db = await Database.open(path)
    await db.execute(
        "INSERT INTO audit_log (actor, action, detail_json, created_at) VALUES ('U1', 'kept', '{}', 'now')"
    )
    await db.close()
    db = await Database.open(path)
    try:
        assert await db.schema_version() == bundled_migrations()[-1].version
        assert (await db.fetchone("SELECT COUNT(*) FROM audit_log"))[0] == 1
    finally:
        await db.close()


async def test_a_database_of_the_first_schema_is_upgraded_keeping_its_jobs(tmp_path):
    path = tmp_path / "old.db"
    db = await Database.open(path, migrations=bundled_migrations()[:1])
    await db.execute("INSERT INTO runs (name, channel_id, requester, spec_json, state, created_at, updated_at)"
                     " VALUES ('old', 'C1', 'U1', '{}', 'training', 'now', 'now')")
    await db.execute("INSERT INTO jobs (run_id, trainer, idempotency_key, base_model, status, cost_micro_usd,"
                     " created_at, updated_at) VALUES (1, 'together', 'k', 'm', 'SUCCEEDED', 5, 'now', 'now')")
    await db.close()
    storage = await Storage.open(path)
    try:
        [job] = await storage.jobs.for_run(1)
        assert (job.cost_micro_usd, job.hosting_micro_usd) == (5, 0)
    finally:
        await storage.close()


async def test_failing_migration_rolls_back(tmp_path):
    path = tmp_path / "bad.db"
    good = Migration(1, "0001_good.sql", "CREATE TABLE a (x INTEGER);")
    bad = Migration(2, "0002_bad.sql", "CREATE TABLE b (y INTEGER);\nINSERT INTO missing VALUES (1);")
    with pytest.raises(StorageError, match=r"0002_bad\.sql failed and was rolled back"):
        await Database.open(path, migrations=[good, bad])
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "a" in tables and "b" not in tables
    finally:
        conn.close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(StorageError, match="newer than this distill-bot knows"):
        await Database.open(path)


def test_statements_split_keeps_trigger_bodies_whole():
    migration = Migration(
        1, "0001_t.sql",
        "CREATE TABLE t (x);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET x = 1;\nEND;\n-- tail\n",
    )
    statements = migration.statements()
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
