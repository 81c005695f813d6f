"""SIGKILL the bot at random points of a collection (several seeds): a restart finishes the run, posts no milestone
twice, and pays for nothing twice beyond the requests that were in flight at the kill."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from bot.examples import TICKETS_CSV
from sandbox.slack import SlackDriver
from tests.reliability.crash import KillPoint, World, crash_and_restart
from tests.waiting import until

TRAIN, EVAL = 200, 50
REQUESTS = TRAIN + 2 * EVAL  # the teacher on train and eval, the base student on eval
CONCURRENCY = 4
TASKS_AT_ONCE = 3  # those three are collected at once, each with CONCURRENCY requests in flight
FINISHED = ":white_check_mark: Collection finished"
RESUMED = ":information_source: The bot restarted; resuming the collection"


@pytest.fixture
def make_world(tmp_path, slack_sandbox, make_openai_sandbox) -> Callable[[float], Awaitable[World]]:
    async def make(latency_seconds: float) -> World:
        openai = await make_openai_sandbox(latency_seconds=latency_seconds)
        return World.create(slack_sandbox, openai, tmp_path, DISTILL_AUTO_APPROVE_USD="50",
                            DISTILL_CONCURRENCY=str(CONCURRENCY))

    return make


def collect_tickets(world: World) -> Callable[[SlackDriver], Awaitable[None]]:
    """What alice types: a new run, the tickets CSV in its thread, the settings, collect (auto-approved)."""

    async def drive(driver: SlackDriver) -> None:
        await driver.slash_command(user="alice", channel="general", text="new tickets")
        await until(lambda: bool(world.thread("tickets")), what="the run card")
        await driver.share_file(TICKETS_CSV.read_bytes(), user="alice", channel="general", filename="it-tickets.csv",
                                thread_ts=world.thread("tickets")[0]["ts"])
        await until(lambda: world.said("tickets", ":white_check_mark: Loaded") == 1, what="the CSV to load")
        await driver.slash_command(user="alice", channel="general",
                                   text=f"set tickets label=category train={TRAIN} eval={EVAL}")
        await until(lambda: world.said("tickets", "<@U0ALICE> changed") == 1, what="the settings")
        await driver.slash_command(user="alice", channel="general", text="collect tickets")

    return drive


def card_state(world: World, name: str = "tickets") -> str:
    card = world.thread(name)[0]
    state = next(f["text"] for b in card["blocks"] for f in b.get("fields", []) if f["text"].startswith("*State*"))
    return state.removeprefix("*State*").strip()


def collected(world: World) -> bool:
    return world.said("tickets", FINISHED) > 0 and card_state(world) == "collected"


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_collection_killed_at_a_random_point_is_finished_by_a_restart_without_posting_or_paying_twice(
        make_world, seed):
    world = await make_world(0.02)
    # Between a fifth and nine tenths of the way: the collection is well under way and still running at the kill.
    kill_point = KillPoint.after_paid_answers(random.Random(seed).randrange(REQUESTS // 5, REQUESTS * 9 // 10))
    outcome = await crash_and_restart(world, drive=collect_tickets(world), kill_point=kill_point,
                                      finished=lambda: collected(world))

    assert outcome.driven_before_kill and outcome.stored_at_kill < REQUESTS
    assert world.query("SELECT state FROM runs WHERE name = 'tickets'") == [("collected",)]
    assert world.query("SELECT status, COUNT(*) FROM completions GROUP BY status") == [("ok", REQUESTS)]
    posts = world.posts_in_threads()
    assert [text for text, n in posts.items() if n > 1] == [], "a milestone was posted twice"
    assert world.said("tickets", FINISHED) == 1 and world.said("tickets", RESUMED) == 1
    assert len([c for c in world.slack.calls_to("chat.postMessage") if not c.thread_ts]) == 1, "one run card"
    assert len({(r.model, r.messages_hash) for r in world.openai.requests.paid()}) == REQUESTS
    # Only answers that were paid for but not yet stored when the process died are asked (and paid) again.
    assert world.paid_twice() <= outcome.paid_at_kill - outcome.stored_at_kill


@pytest.mark.slow
async def test_answers_paid_but_not_yet_stored_never_exceed_the_requests_in_flight(make_world):
    """What a SIGKILL at any instant would make the restart pay again, sampled through a whole collection.
    Regression: workers sent their next request before their answer was committed, and over 100 answers from a
    5 ms provider waited unstored at once."""
    world = await make_world(0.005)  # a fast provider: answers arrive faster than a lagging writer stores them
    bot = world.bot()
    await bot.start()
    try:
        await collect_tickets(world)(SlackDriver(world.slack, deliver=bot.url))
        at_risk = 0
        while not collected(world):
            paid = len(world.openai.requests.paid())  # read before the database, so never overstated
            at_risk = max(at_risk, paid - world.stored_answers())
            await asyncio.sleep(0.005)
        await bot.stop()
    finally:
        await bot.kill()
    assert world.stored_answers() == REQUESTS
    assert at_risk <= CONCURRENCY * TASKS_AT_ONCE


@pytest.mark.slow
async def test_a_clean_stop_just_after_the_collection_finished_leaves_the_card_right_after_a_restart(make_world):
    """Regression: the stop cancelled the stage between its last post and its card refresh, and nothing showed the
    card again, so it said 'collecting' for good."""
    world = await make_world(0.005)
    bot = world.bot()
    await bot.start()
    try:
        await collect_tickets(world)(SlackDriver(world.slack, deliver=bot.url))
        await until(lambda: world.said("tickets", FINISHED) > 0, what="the collection to finish")
        await bot.stop()  # SIGTERM the moment the milestone is posted, as a deploy might
    finally:
        await bot.kill()
    again = world.bot()
    await again.start()
    try:
        await until(lambda: card_state(world) == "collected", within=5, what="the card to show the collected run")
        await again.stop()
    finally:
        await again.kill()
