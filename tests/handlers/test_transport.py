"""What every request goes through: signature checks, redelivered events, other bots' messages, the health check."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import aiohttp
import pytest

from bot.examples import TICKETS_CSV
from sandbox.slack import SlackDriver, payloads
from tests.handlers.conftest import thread_texts


@pytest.fixture(params=["async_dispatch", "http"])
async def either(request, make_bot):
    return await make_bot(over_http=request.param == "http")


def _command_body(slack, text: str) -> bytes:
    ws = slack.workspace
    fields = payloads.slash_command_fields(ws, user=ws.user("alice"), channel=ws.channel("general"),
                                           command="/distill", text=text, response_url=f"{slack.base_url}/x")
    return payloads.form_body(fields)


async def test_stale_or_forged_signatures_get_401_and_run_nothing(either):
    body = _command_body(either.slack, "new tickets")
    stale = await either.driver.send(body, payloads.FORM, timestamp=int(time.time()) - 6 * 60)
    forger = SlackDriver(either.slack, deliver=either.url or either.bot.app, signing_secret="not-the-secret")
    forged = await forger.send(body, payloads.FORM)
    await either.bot.idle()
    assert stale.status == 401 and forged.status == 401
    assert await either.run("tickets") is None and either.slack.calls_to("chat.postMessage") == []
    fresh = await either.driver.send(body, payloads.FORM)
    await either.bot.idle()
    assert fresh.status == 200 and await either.run("tickets") is not None


async def test_a_redelivered_event_is_processed_once(either):
    await either.command("new tickets")
    thread_ts = (await either.run("tickets")).thread_ts
    first = await either.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=thread_ts)
    for retry in (1, 2):
        again = await either.driver.send_event(first.payload, retry_num=retry, retry_reason="http_timeout")
        assert again.status == 200
    await either.bot.idle()
    loaded = [t for t in thread_texts(await either.thread("tickets")) if t.startswith(":white_check_mark: Loaded")]
    assert len(loaded) == 1 and len(either.slack.downloads) == 1


async def _csv_shared_unannounced(bot, user: str, **message_fields) -> dict:
    """The event of a CSV shared in the run's thread, put in the workspace but not yet sent to the app."""
    await bot.command("new tickets")
    thread_ts = (await bot.run("tickets")).thread_ts
    ws = bot.slack.workspace
    stored = ws.add_file("U0ALICE", "it-tickets.csv", TICKETS_CSV.read_bytes())
    message = ws.user_message(user, "", subtype="file_share", **message_fields)
    posted = ws.share([stored], ws.channel("general"), message, thread_ts)
    return payloads.event_callback(ws, payloads.message_event(posted, ws.channel("general")))


async def test_an_event_whose_first_delivery_never_arrived_is_handled_on_retry(bot):
    event = await _csv_shared_unannounced(bot, "U0ALICE")
    await bot.driver.send_event(event, retry_num=1, retry_reason="http_error")
    await bot.bot.idle()
    assert (await bot.run("tickets")).dataset_id is not None


async def test_the_scheduler_forgets_slack_event_ids_after_a_day(make_bot, clock):
    bot = await make_bot(DISTILL_POLL_SECONDS="0.05")
    events = bot.bot.storage.slack_events
    assert await events.first_time("Ev-old") and await events.first_time("Ev-new")
    day_and_more = (clock.now() - timedelta(days=1, minutes=1)).isoformat()
    await bot.bot.storage.db.execute("UPDATE slack_events SET received_at = ? WHERE event_id = 'Ev-old'",
                                     (day_and_more,))
    for _ in range(200):
        if await bot.bot.storage.db.fetchone("SELECT 1 FROM slack_events WHERE event_id = 'Ev-old'") is None:
            break
        await asyncio.sleep(0.02)
    remaining = [r[0] for r in await bot.bot.storage.db.fetchall("SELECT event_id FROM slack_events")]
    assert "Ev-old" not in remaining and "Ev-new" in remaining


async def test_files_shared_by_a_bot_are_ignored(bot):
    await bot.driver.send_event(await _csv_shared_unannounced(bot, "U0OTHERBOT", bot_id="B0OTHER"))
    await bot.bot.idle()
    assert bot.slack.downloads == [] and (await bot.run("tickets")).dataset_id is None


async def test_the_http_app_answers_health_checks_and_slacks_url_verification(make_bot):
    bot = await make_bot(over_http=True)
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as health:
        assert health.status == 200 and await health.text() == "ok"
    challenge = json.dumps({"token": "t", "challenge": "c4ll3nge", "type": "url_verification"}).encode()
    verified = await bot.driver.send(challenge, payloads.JSON)
    assert verified.status == 200 and verified.body == {"challenge": "c4ll3nge"}
    unsigned = await bot.driver.send(challenge, payloads.JSON, headers={"X-Slack-Signature": "v0=00"})
    assert unsigned.status == 401
