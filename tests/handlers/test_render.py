"""What reaches Slack: within Slack's limits, escaped, secrets masked, the card edited in place and throttled."""

from __future__ import annotations

import json

from bot.core.events import Note, RunFailed, TableReady
from sandbox.slack.content import MISSING_TEXT
from tests.conftest import SLACK_BOT_TOKEN
from tests.handlers.conftest import CHANNEL, thread_texts

ROW = "{:>3}  {:<40}  {:>8}  {}"


def _table(rows: int) -> str:
    lines = [ROW.format("#", "model", "accuracy", "note"), "-" * 100]
    lines += [ROW.format(i, f"ft:gpt-4o-mini:run-{i}", f"{i / rows:.1%}", "x" * 80) for i in range(rows)]
    return "\n".join(lines)


def _posted_after(bot, count: int) -> list[dict]:
    return [c.args for c in bot.slack.calls_to("chat.postMessage")[count:]]


async def test_a_60_row_table_is_split_into_sections_within_slacks_limits(bot):
    await bot.command("new tickets")
    run = await bot.run("tickets")
    before = len(bot.slack.calls_to("chat.postMessage"))
    await bot.bot.notifier.post(run, TableReady("Eval report", _table(60), summary="distilled vs teacher & base"))
    [message] = _posted_after(bot, before)
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert len(sections) >= 3 and all(len(s) <= 3000 for s in sections) and len(message["blocks"]) <= 50
    assert message["text"].startswith("*Eval report*")
    tables = sections[1:]
    assert all(t.startswith("```  #  model") for t in tables), "each part repeats the header"
    rows = [line for t in tables for line in t.strip("`").splitlines()[2:]]
    assert [int(r.split()[0]) for r in rows] == list(range(60))


async def test_a_table_longer_than_fifty_blocks_continues_in_more_messages(bot):
    await bot.command("new tickets")
    run = await bot.run("tickets")
    before = len(bot.slack.calls_to("chat.postMessage"))
    await bot.bot.notifier.post(run, TableReady("Predictions", _table(2_000)))
    messages = _posted_after(bot, before)
    assert len(messages) >= 2 and all(len(m["blocks"]) <= 50 for m in messages)
    assert [m["text"].rsplit(" ", 1)[-1] for m in messages] == [f"({n}/{len(messages)})" for n in
                                                                 range(1, len(messages) + 1)]
    rows = [line for m in messages for b in m["blocks"][1 if m is messages[0] else 0:]
            for line in b["text"]["text"].strip("`").splitlines()[2:]]
    assert len(rows) == 2_000 and all(c.ok for c in bot.slack.calls)


async def test_user_text_is_escaped_everywhere_it_enters_mrkdwn(bot):
    await bot.command("new tickets")
    thread_ts = (await bot.run("tickets")).thread_ts
    csv = "text,team\n" + "".join(f"row {i} needs help,<!channel> & co\nother {i},R&D <b>\n" for i in range(10))
    await bot.share(csv.encode(), "<!here>&more.csv", thread_ts=thread_ts)
    await bot.command("set tickets label=&lt;!everyone&gt;")  # Slack sends & < > in command text escaped
    sent = json.dumps([c.args for c in bot.slack.calls if c.method in ("chat.postMessage", "chat.update",
                                                                        "chat.postEphemeral")])
    sent += json.dumps([e.message for e in bot.slack.ephemerals()])
    for raw in ("<!channel>", "<!here>", "<!everyone>", "<b>", "R&D"):
        assert raw not in sent, f"{raw!r} reached Slack unescaped"
    thread = "\n".join(thread_texts(await bot.thread("tickets")))
    assert "&lt;!channel&gt; &amp; co" in thread and "*&lt;!here&gt;&amp;more.csv*" in thread
    assert "&lt;!everyone&gt;" in bot.said_to("alice")[-1]


async def test_secrets_never_reach_slack(bot):
    await bot.command("new tickets")
    run = await bot.run("tickets")
    await bot.bot.notifier.post(run, Note(f"the provider echoed {SLACK_BOT_TOKEN} and sk-sandbox in an error"))
    await bot.bot.notifier.post(run, RunFailed("HTTP 401: Incorrect API key provided: sk-proj-abcdefghijkl"))
    last_two = "\n".join(thread_texts(await bot.thread("tickets"))[-2:])
    assert SLACK_BOT_TOKEN not in last_two and "sk-sandbox" not in last_two and "sk-proj-abc" not in last_two
    assert last_two.count("********") == 3


async def test_every_message_carries_fallback_text(bot):
    await bot.ready_run("tickets")
    await bot.command("estimate tickets")
    await bot.command("collect tickets")
    await bot.command("help")
    posted = [c for c in bot.slack.calls if c.method.startswith("chat.")]
    assert posted and not [c for c in posted if MISSING_TEXT in c.warnings]


async def test_the_card_is_edited_in_place_at_most_once_per_interval_and_the_newest_wins(make_bot):
    bot = await make_bot(card_interval=0.5)
    await bot.command("new tickets")
    run = await bot.run("tickets")
    service, storage = bot.bot.service, bot.bot.storage
    for i in range(30):
        run = await storage.runs.update(run.id, state="failed", error=f"failure number {i}")
        await service.refresh_card(run)
    assert len(bot.slack.calls_to("chat.update")) <= 1, "edits inside the interval wait"
    await bot.bot.idle()
    updates = bot.slack.calls_to("chat.update")
    assert 1 <= len(updates) <= 2 and all(u.args["ts"] == run.card_ts for u in updates)
    card = bot.slack.message(CHANNEL, run.card_ts)
    assert "failure number 29" in json.dumps(card["blocks"]) and len(bot.slack.messages(CHANNEL)) == 1


async def test_rate_limited_calls_are_retried_after_slacks_retry_after(bot):
    bot.slack.inject_ratelimit("chat.postMessage", count=1, retry_after=0)
    await bot.command("new tickets")
    statuses = [c.status for c in bot.slack.calls_to("chat.postMessage")]
    assert statuses == [429, 200] and len(bot.slack.messages(CHANNEL)) == 1


async def test_a_report_chart_is_uploaded_into_the_thread(bot, tmp_path):
    await bot.command("new tickets")
    run = await bot.run("tickets")
    chart = tmp_path / "accuracy.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\nchart")
    await bot.bot.notifier.post(run, TableReady("Eval report", _table(3), chart=chart))
    [complete] = bot.slack.calls_to("files.completeUploadExternal")
    assert complete.args["thread_ts"] == run.thread_ts and complete.args["channel_id"] == CHANNEL
    assert any(m.get("files") for m in bot.slack.thread(CHANNEL, run.thread_ts))
