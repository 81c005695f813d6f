"""Five runs in three channels collect at once: they share the provider's rate limit fairly, and all finish.
Reads that overlap never see the database as it was before a write that already returned."""

from __future__ import annotations

import asyncio
from collections import Counter

from bot.core.config import DEFAULT_TEACHER
from bot.examples import TICKETS_CSV
from tests.handlers.conftest import thread_texts
from tests.waiting import until

RUNS = {"alpha": "general", "beta": "general", "gamma": "random", "delta": "random", "epsilon": "ops"}
TRAIN, EVAL = 60, 30
REQUESTS_PER_RUN = TRAIN + 2 * EVAL
TEACHER_PER_SECOND = 150  # the shared limit, with the limiter's minute compressed to a second
FAIRNESS_FACTOR = 3  # while all five wait on the limiter, none gets three times another's share


def teacher_requests_by_run(sandbox) -> dict[str, list[float]]:
    """When the provider answered each run's teacher requests (the collector tags them with distill_run)."""
    times: dict[str, list[float]] = {}
    for record in sandbox.requests.paid():
        if record.model == DEFAULT_TEACHER:
            times.setdefault(record.metadata["distill_run"], []).append(record.time)
    return times


async def test_five_runs_in_three_channels_share_the_rate_limit_fairly_and_all_finish(make_bot, openai_sandbox):
    openai_sandbox.latency_seconds = 0.005
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="50", DISTILL_RPM=str(TEACHER_PER_SECOND), DISTILL_TPM="100000000")
    # The limiter's window is a minute; a second keeps the test short while requests still queue on the limiter.
    bot.bot.service.collector.limiters.window_seconds = 1.0
    for name, channel in RUNS.items():
        await bot.command(f"new {name}", channel=channel)
        run = await bot.run(name, bot.slack.channel(channel).id)
        await bot.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=run.thread_ts, channel=channel)
        # A system prompt of its own, so no run reuses another's paid answers.
        await bot.command(f'set {name} label=category train={TRAIN} eval={EVAL} system="Sort tickets for {name}."',
                          channel=channel)
    # Runs take a moment each to prepare (longer on a busy machine): the provider stalls until every run has a
    # request waiting, then answers, so all five compete at the shared limiter from the same instant.
    openai_sandbox.hold()
    for name, channel in RUNS.items():
        await bot.driver.slash_command(user="alice", channel=channel, text=f"collect {name}")
    await until(lambda: len({held.get("distill_run") for held in openai_sandbox.held}) == len(RUNS),
                what="a request of every run waiting at the provider")
    released_at = openai_sandbox.clock.now()
    openai_sandbox.release()
    await bot.bot.idle()

    storage = bot.bot.storage
    for name, channel in RUNS.items():
        run = await bot.run(name, bot.slack.channel(channel).id)
        assert run.state == "collected"
        counts = await storage.completions.counts(run.id)
        assert sum(counts.values()) == REQUESTS_PER_RUN and {status for _, _, status in counts} == {"ok"}
        finished = [t for t in thread_texts(bot.slack.thread(run.channel_id, run.thread_ts))
                    if t.startswith(":white_check_mark: Collection finished.")]
        assert len(finished) == 1
    paid = Counter((r.model, r.messages_hash) for r in openai_sandbox.requests.paid())
    assert len(paid) == len(RUNS) * REQUESTS_PER_RUN and max(paid.values()) == 1

    times = teacher_requests_by_run(openai_sandbox)
    end = min(max(answered) for answered in times.values())
    shares = [sum(released_at <= t <= end for t in answered) for answered in times.values()]
    assert len(shares) == len(RUNS) and min(shares) * FAIRNESS_FACTOR >= max(shares) > 0, shares


async def test_a_row_written_while_other_reads_are_in_flight_is_read_back_at_once(storage):
    """Regression: the shared reader connection kept a read transaction open while any of its cursors was, so a
    run created while other tasks read could not be read back ("runs: no row with id 3")."""
    stop = asyncio.Event()

    async def keep_reading() -> None:
        while not stop.is_set():
            await storage.db.fetchall("SELECT * FROM runs")

    readers = [asyncio.create_task(keep_reading()) for _ in range(4)]
    try:
        created = [await storage.runs.create(name=f"run-{i}", channel_id="C1", requester="U1", spec={})
                   for i in range(200)]
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert [run.name for run in created] == [f"run-{i}" for i in range(200)]
