"""Slack needs its ack within 3 seconds even while the bot is busy: slow work never blocks the listener."""

from __future__ import annotations

import asyncio
import csv
import io

from bot.examples.generate_tickets import make_rows
from tests.handlers.conftest import CHANNEL


def _tickets_csv(rows: int) -> bytes:
    buffer = io.StringIO()
    found = make_rows(count=rows)
    writer = csv.DictWriter(buffer, fieldnames=list(found[0]))
    writer.writeheader()
    writer.writerows(found)
    return buffer.getvalue().encode()


async def test_a_slash_command_is_acked_while_a_thousand_row_collection_runs(make_bot, openai_sandbox):
    openai_sandbox.latency_seconds = 0.03
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="50")
    await bot.command("new tickets")
    run = await bot.run("tickets")
    await bot.share(_tickets_csv(1_300), "tickets.csv", thread_ts=run.thread_ts)
    await bot.command("set tickets label=category train=1000 eval=100")
    await bot.driver.slash_command(user="alice", channel="general", text="collect tickets")
    storage, tasks = bot.bot.storage, bot.bot.service.tasks
    while (await storage.db.fetchone("SELECT COUNT(*) FROM completions"))[0] < 50:
        await asyncio.sleep(0.01)

    reply = await bot.driver.slash_command(user="bob", channel="general", text="status tickets")
    answered = (await storage.db.fetchone("SELECT COUNT(*) FROM completions"))[0]
    assert reply.status == 200 and reply.body == ""
    assert tasks.running(f"run-{run.id}") and (await bot.run("tickets")).state == "collecting"
    assert answered < 1_200, "the ack came back before the collection finished"

    await bot.bot.surface.followups.wait_idle()  # bob's status answer, given while the collection runs
    assert "*tickets* is *collecting*" in bot.said_to("bob")[-1]
    await bot.bot.service.cancel(await bot.run("tickets"), "U0ALICE")
    await bot.bot.idle()
    assert (await storage.runs.by_name(CHANNEL, "tickets")).state == "cancelled"
