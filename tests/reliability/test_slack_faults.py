"""Slack faults while a run works: 429s on chat.update and chat.postMessage, retried events, a deleted thread root.

Nothing the run stored is lost, nothing is posted twice, and what the bot does next is clear.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.examples import TICKETS_CSV
from sandbox.slack import payloads
from tests.handlers.conftest import CHANNEL, thread_texts

ROWS = 120  # Harness.ready_run: train 60, eval 30 for the teacher and the base student
FINISHED = ":white_check_mark: Collection finished."


@pytest.fixture
async def ready(make_bot, openai_sandbox):
    """The tickets run ready to collect (auto-approved), against a provider slow enough to act mid-collection."""
    openai_sandbox.latency_seconds = 0.02
    bot = await make_bot(DISTILL_AUTO_APPROVE_USD="50")
    await bot.ready_run("tickets")
    return bot


async def collecting(bot, answers: int = 5) -> None:
    """Type `/distill collect tickets` and return once the collection has stored some answers."""
    await bot.driver.slash_command(user="alice", channel="general", text="collect tickets")
    while (await bot.bot.storage.db.fetchone("SELECT COUNT(*) FROM completions"))[0] < answers:
        await asyncio.sleep(0.005)


def card_state(bot, ts: str) -> str:
    fields = next(b["fields"] for b in bot.slack.message(CHANNEL, ts)["blocks"] if "fields" in b)
    return fields[0]["text"].removeprefix("*State*").strip()


def posted_twice(bot) -> list[str]:
    texts = Counter(c.args.get("text") for c in bot.slack.calls_to("chat.postMessage") if c.ok)
    return [text for text, n in texts.items() if n > 1]


async def stored_answers(bot) -> int:
    return len(await bot.bot.storage.completions.for_run((await bot.run("tickets")).id))


async def test_429s_on_card_edits_during_a_collection_delay_them_and_the_card_ends_right(ready):
    await collecting(ready)
    ready.slack.inject_ratelimit("chat.update", count=5, retry_after=0)  # one edit outlasts the client's 3 retries
    await ready.bot.idle()
    run = await ready.run("tickets")
    assert run.state == "collected" and await stored_answers(ready) == ROWS
    assert [c.status for c in ready.slack.calls_to("chat.update")].count(429) == 5
    assert posted_twice(ready) == []
    assert card_state(ready, run.card_ts) == "collected"  # regression: an older refused edit came after a newer one


async def test_a_card_edit_refused_past_the_retries_is_sent_again(ready):
    """Regression: the notifier logged such an edit and dropped it, and the card kept the old state."""
    await ready.command("collect tickets")
    ready.slack.inject_ratelimit("chat.update", count=4, retry_after=0)
    await ready.command("set tickets seed=3")  # new prompts: the run goes back to ready
    run = await ready.run("tickets")
    assert run.state == "ready" and await stored_answers(ready) == ROWS
    assert [c.status for c in ready.slack.calls_to("chat.update")].count(429) == 4
    assert card_state(ready, run.card_ts) == "ready"


async def test_429s_on_posts_during_a_collection_are_retried_and_each_message_is_posted_once(ready):
    await collecting(ready)
    ready.slack.inject_ratelimit("chat.postMessage", count=3, retry_after=0)  # within the client's 3 retries
    await ready.bot.idle()
    assert (await ready.run("tickets")).state == "collected"
    assert [c.status for c in ready.slack.calls_to("chat.postMessage")].count(429) == 3
    finished = [t for t in thread_texts(await ready.thread("tickets")) if t.startswith(f"{FINISHED} Spent $")]
    assert len(finished) == 1 and finished[0].endswith(" approved.")
    assert posted_twice(ready) == []


async def test_a_429_storm_on_posts_when_a_collection_ends_keeps_the_run_collected(ready):
    """Regression: the post's SlackApiError failed the stage, and the collected run was set to failed."""
    await collecting(ready)
    ready.slack.inject_ratelimit("chat.postMessage", count=4, retry_after=0)  # the first post after it is lost
    await ready.bot.idle()
    run = await ready.run("tickets")
    assert run.state == "collected" and run.error is None
    assert await stored_answers(ready) == ROWS and posted_twice(ready) == []
    assert card_state(ready, run.card_ts) == "collected"


async def test_an_event_and_its_retry_arriving_together_are_handled_once(bot):
    """Slack retries an event whose ack it did not see in 3 seconds, possibly while the first is still handled."""
    await bot.command("new tickets")
    thread_ts = (await bot.run("tickets")).thread_ts
    ws = bot.slack.workspace
    shared = ws.share([ws.add_file("U0ALICE", "it-tickets.csv", TICKETS_CSV.read_bytes())], ws.channel("general"),
                      ws.user_message("U0ALICE", "", subtype="file_share"), thread_ts)
    event = payloads.event_callback(ws, payloads.message_event(shared, ws.channel("general")))
    replies = await asyncio.gather(bot.driver.send_event(event),
                                   bot.driver.send_event(event, retry_num=1, retry_reason="http_timeout"),
                                   bot.driver.send_event(event, retry_num=2, retry_reason="http_timeout"))
    await bot.bot.idle()
    assert [r.status for r in replies] == [200, 200, 200]
    assert len(bot.slack.downloads) == 1
    loaded = [t for t in thread_texts(await bot.thread("tickets")) if t.startswith(":white_check_mark: Loaded")]
    assert len(loaded) == 1 and (await bot.run("tickets")).dataset_id is not None


async def test_a_deleted_card_is_posted_again_and_the_collection_goes_on_in_its_thread(ready):
    old = await ready.run("tickets")
    await collecting(ready)
    ready.slack.delete_message(CHANNEL, old.card_ts)  # the root has replies: a tombstone stays
    await ready.bot.idle()
    run = await ready.run("tickets")
    assert run.state == "collected" and await stored_answers(ready) == ROWS
    assert run.card_ts != old.card_ts and run.thread_ts == run.card_ts
    assert [m["ts"] for m in ready.slack.messages(CHANNEL)] == [run.card_ts], "one card, the new one"
    assert card_state(ready, run.card_ts) == "collected"
    texts = thread_texts(await ready.thread("tickets"))
    assert texts[1].startswith(":card_index: This run's card was deleted, so the bot posted it again here")
    assert sum(t.startswith(FINISHED) for t in texts) == 1
    await ready.command("status tickets")
    assert ready.said_to("alice")[-1].startswith("*tickets* is *collected*.")


async def test_a_card_deleted_before_any_reply_is_posted_again_and_the_settings_are_kept(bot):
    """Regression: posts into its thread got thread_not_found, and `/distill set` answered with an error id."""
    await bot.command("new tickets")
    old = (await bot.run("tickets")).card_ts
    bot.slack.delete_message(CHANNEL, old)
    await bot.command("set tickets train=100")
    run = await bot.run("tickets")
    assert run.spec["train_size"] == 100 and bot.said_to("alice") == []
    assert run.card_ts != old and [m["ts"] for m in bot.slack.messages(CHANNEL)] == [run.card_ts]
    texts = thread_texts(await bot.thread("tickets"))
    assert texts[-1] == "<@U0ALICE> changed `train=100`." and "card was deleted" in texts[1]
