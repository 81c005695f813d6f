"""Provider faults during a collection started from Slack: each ends in a stored, explained state.

A burst the retries outlast (429 storms with Retry-After, 500/503 bursts, held requests that time out, bodies that
are not JSON) leaves every row answered and paid once; an outage that outlasts them leaves every row stored as
failed with the provider's reason, and the thread says so; a key revoked mid-way stops the run with the reason.
A Batch API batch that expires is explained, and the next batch answers what it left.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.collect.batch import RUNNING_STATUSES, BatchCollector
from bot.core.config import DEFAULT_TEACHER
from bot.prices.table import PriceTable
from tests.collect.helpers import make_collector, make_task, unlimited
from tests.handlers.conftest import thread_texts

TRAIN, EVAL = 60, 30  # Harness.ready_run's settings
ROWS = TRAIN + 2 * EVAL  # the teacher on train and eval, the base student on eval
FINISHED = ":white_check_mark: Collection finished."


@pytest.fixture
async def ready(make_bot):
    """The bot with the tickets run ready to collect; collections up to $50 start without an approval."""
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="50")
    await bot.ready_run("tickets")
    return bot


def paid_per_request(sandbox) -> Counter:
    return Counter((r.model, r.messages_hash) for r in sandbox.requests.paid())


async def completions(bot) -> list:
    return await bot.bot.storage.completions.for_run((await bot.run("tickets")).id)


@pytest.mark.parametrize(("outcome", "count"), [(429, 40), (500, 30), (503, 30), ("malformed", 30), ("timeout", 6)])
async def test_a_burst_of_faults_is_retried_and_every_row_is_answered_and_paid_once(ready, openai_sandbox, outcome,
                                                                                      count):
    if outcome == "timeout":
        # build_bot gives the provider OpenAI's 60 s timeout; a second is enough against the sandbox.
        ready.bot.provider.client.timeout = 1.0
    openai_sandbox.inject(outcome=outcome, count=count, retry_after=1)
    await ready.command("collect tickets")

    assert (await ready.run("tickets")).state == "collected"
    stored = await completions(ready)
    assert len(stored) == ROWS and {c.status for c in stored} == {"ok"}
    assert sum(c.attempts - 1 for c in stored) >= count, "the faults were met and retried"
    paid = paid_per_request(openai_sandbox)
    assert len(paid) == ROWS and max(paid.values()) == 1
    texts = thread_texts(await ready.thread("tickets"))
    assert any(t.startswith(FINISHED) for t in texts) and not any(t.startswith("Errors:") for t in texts)
    if outcome == 429:
        limiter = ready.bot.service.collector.limiters.for_model(openai_sandbox.url, DEFAULT_TEACHER)
        assert limiter.stats.pauses >= 1, "Retry-After paused the shared limiter"


@pytest.mark.slow
async def test_an_outage_longer_than_the_retries_stores_every_row_as_failed_with_the_reason(make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="50")
    await bot.ready_run("tickets", "label=category train=10 eval=2")
    openai_sandbox.inject(outcome=500, count=10_000)
    await bot.command("collect tickets")

    stored = await completions(bot)
    assert len(stored) == 14 and {c.status for c in stored} == {"failed"}
    assert all(c.attempts == 6 and c.error.startswith("HTTP 500: The server had an error") for c in stored)
    assert openai_sandbox.requests.paid() == []
    texts = thread_texts(await bot.thread("tickets"))
    assert any(t.startswith(":x: Collection stopped") and "The teacher answered no row (HTTP 500 ×14)" in t
               for t in texts)
    assert "Errors: HTTP 500 ×14" in texts
    assert "teacher/train       0        0        0      10       0" in "\n".join(texts)
    assert not any(t.startswith("*Baseline") for t in texts), "no comparison of models that gave no answer"
    card = bot.slack.message("C0GENERAL", (await bot.run("tickets")).card_ts)
    assert "teacher train 0 (10 failed)" in str(card["blocks"])


async def test_a_key_revoked_mid_collection_stops_the_run_and_says_why(make_bot, openai_sandbox):
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="50", DISTILL_CONCURRENCY="2")
    await bot.ready_run("tickets")
    openai_sandbox.latency_seconds = 0.02
    await bot.driver.slash_command(user="alice", channel="general", text="collect tickets")
    storage = bot.bot.storage
    while (await storage.db.fetchone("SELECT COUNT(*) FROM completions"))[0] < 20:
        await asyncio.sleep(0.005)
    openai_sandbox.api_key = "sk-rotated"
    await bot.bot.idle()

    run = await bot.run("tickets")
    assert run.state == "failed" and "401" in run.error
    kept = await completions(bot)
    assert 20 <= len(kept) < ROWS and {c.status for c in kept} == {"ok"}
    texts = thread_texts(await bot.thread("tickets"))
    stopped = next(t for t in texts if t.startswith(":x: Collection stopped: the provider refused the requests."))
    assert "Incorrect API key provided" in stopped and "sk-sandbox" not in "\n".join(texts)


async def _settle(batches: BatchCollector, storage, record):
    for _ in range(400):
        record = await batches.poll(await storage.batches.require(record.id))
        if record.status not in RUNNING_STATUSES:
            return record
        await asyncio.sleep(0.02)
    raise TimeoutError(f"batch {record.external_id} still {record.status}")


async def test_an_expired_batch_is_explained_and_a_second_batch_answers_every_row_once(storage, make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600, expire_batches=True)
    run = await storage.runs.create(name="batch", channel_id="C1", requester="U1", spec={})
    collector = make_collector(storage, sandbox)
    batches = BatchCollector(storage, collector.provider.client, PriceTable.load())
    try:
        expired = await _settle(batches, storage, await batches.submit(make_task(run.id, 12), unlimited()))
        assert expired.status == "expired" and "expired before the provider finished" in expired.error
        assert "0 answers were stored and 12 rows failed; collect again to finish the rest" in expired.error
        failed = await storage.completions.for_run(run.id)
        assert len(failed) == 12 and {f.status for f in failed} == {"failed"}
        assert {f.error for f in failed} == {"batch: This request could not be executed before the completion "
                                             "window expired."}
        assert sandbox.requests.paid() == []

        sandbox.batches.expire_batches = False  # the provider is healthy again
        stored = await _settle(batches, storage, await batches.submit(make_task(run.id, 12), unlimited()))
    finally:
        await collector.provider.close()
    assert stored.status == "stored"
    answers = await storage.completions.for_run(run.id)
    assert len(answers) == 12 and {a.status for a in answers} == {"ok"}
    assert [r.batch for r in sandbox.requests.paid()] == [True] * 12
    assert await batches.submit(make_task(run.id, 12), unlimited()) is None, "nothing left to ask"
