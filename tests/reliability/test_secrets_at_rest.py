"""A provider that quotes the caller's API key in its error message: the database gets it masked as Slack and the
log do (issue 19: `runs.error` and `completions.error` stored it in plain text)."""

from __future__ import annotations

import sqlite3

from tests.handlers.conftest import thread_texts

KEY = "sk-sandbox"  # the harness's OPENAI_API_KEY: a configured secret, too short for the token-shaped pattern


def _every_text(path) -> str:
    """Every value of every table of the database file, as text."""
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(str(value) for table in tables for row in conn.execute(f"SELECT * FROM {table}")
                         for value in row)


async def test_a_key_quoted_by_the_provider_is_masked_in_the_database_as_in_slack(make_bot, openai_sandbox):
    bot = await make_bot()
    await bot.ready_run("tickets")
    # Five rows refused (stored as failed, with the provider's message), then every request: the run fails.
    openai_sandbox.faults.inject("/v1/chat/completions", "echo_key", count=5, status=400)
    openai_sandbox.faults.inject("/v1/chat/completions", "echo_key", count=1_000)
    await bot.command("collect tickets")
    request = next(m for m in await bot.thread("tickets") if "Spending request" in "".join(thread_texts([m])))
    await bot.click(request["ts"], "approve")

    run = await bot.run("tickets")
    completions = await bot.bot.storage.completions.for_run(run.id)
    assert run.state == "failed" and "Incorrect API key provided: ********" in run.error
    assert len(completions) == 5 and all("The key ******** may not send" in c.error for c in completions)
    await bot.bot.storage.audit.add(run_id=run.id, actor="system", action="note",
                                    detail={"provider said": f"bad key {KEY}", "nested": [f"again {KEY}"]})
    stored = _every_text(bot.bot.storage.db.path)
    assert KEY not in stored and stored.count("********") >= len(completions) + 3
    assert KEY not in "\n".join(thread_texts(await bot.thread("tickets")))
