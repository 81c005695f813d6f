"""CSV files shared in a run's thread: downloaded with the bot token and loaded; everything else told why not."""

from __future__ import annotations

from bot.examples import TICKETS_CSV
from tests.handlers.conftest import CHANNEL, thread_texts


async def _card_ts(bot, name="tickets") -> str:
    await bot.command(f"new {name}")
    return (await bot.run(name)).thread_ts


async def test_a_csv_shared_in_the_thread_is_downloaded_once_and_profiled(bot):
    thread_ts = await _card_ts(bot)
    await bot.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=thread_ts)
    run = await bot.run("tickets")
    assert run.state == "ready" and run.dataset_id
    assert len(bot.slack.downloads) == 1
    texts = "\n".join(thread_texts(await bot.thread("tickets")))
    assert "Loaded *it-tickets.csv*: 480 rows, 6 columns." in texts
    # Issue 19: `channel` (4 values) was ranked first; the task's label is `category`, named so and the last column.
    assert "Likely label column: *category* (others: channel, priority, subject)" in texts
    assert "`/distill set tickets label=category`" in texts and "Network    105" in texts  # rows per label
    card = bot.slack.message(CHANNEL, thread_ts)
    assert "it-tickets.csv (480 rows)" in str(card["blocks"]) and card.get("edited")


async def test_an_html_sign_in_page_means_the_files_read_scope_is_missing(bot):
    thread_ts = await _card_ts(bot)
    bot.slack.revoke_scope("files:read")
    await bot.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=thread_ts)
    last = thread_texts(await bot.thread("tickets"))[-1]
    assert last.startswith(":warning: Could not use *it-tickets.csv*: Slack answered with a sign-in page")
    assert "files:read" in last and (await bot.run("tickets")).dataset_id is None


async def test_a_file_that_is_not_a_csv_is_refused_without_downloading_it(bot):
    thread_ts = await _card_ts(bot)
    await bot.share(b"\x89PNG\r\n\x1a\n....", "chart.png", thread_ts=thread_ts)
    last = thread_texts(await bot.thread("tickets"))[-1]
    assert "Could not use *chart.png*: it is PNG, not a CSV" in last
    assert bot.slack.downloads == []


async def test_an_oversized_file_is_refused_by_the_size_slack_reports_before_downloading(make_bot):
    bot = await make_bot(DISTILL_MAX_CSV_MB="1")
    thread_ts = await _card_ts(bot)
    big = b"text,label\n" + b"".join(b"row %d with some words,a\n" % i for i in range(60_000))
    await bot.share(big, "big.csv", thread_ts=thread_ts)
    last = thread_texts(await bot.thread("tickets"))[-1]
    assert "Could not use *big.csv*" in last and "over the 1.0 MB limit (DISTILL_MAX_CSV_MB)" in last
    assert bot.slack.downloads == []


async def test_a_broken_csv_is_explained_and_the_data_loaded_before_is_kept(bot):
    thread_ts = await _card_ts(bot)
    await bot.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=thread_ts)
    first = (await bot.run("tickets")).dataset_id
    await bot.share(b"only one column\n", "empty.csv", thread_ts=thread_ts)
    last = thread_texts(await bot.thread("tickets"))[-1]
    assert last.startswith(":warning: Could not use *empty.csv*:")
    assert (await bot.run("tickets")).dataset_id == first


async def test_files_outside_a_run_thread_are_left_alone(bot):
    await _card_ts(bot)
    await bot.share(TICKETS_CSV.read_bytes(), "top-level.csv", thread_ts=None)
    other = bot.slack.workspace.post(bot.slack.channel("general"), bot.slack.workspace.user_message("U0BOB", "hi"))
    await bot.share(TICKETS_CSV.read_bytes(), "elsewhere.csv", thread_ts=other["ts"])
    assert bot.slack.downloads == [] and (await bot.run("tickets")).dataset_id is None
    bot_id = bot.slack.workspace.bot_user_id
    assert [m for m in bot.slack.thread(CHANNEL, other["ts"]) if m.get("user") == bot_id] == []


async def test_a_csv_over_the_process_threshold_gets_the_same_messages_from_the_worker_process(make_bot):
    in_thread, in_process = await make_bot(), await make_bot(DISTILL_PROCESS_OVER_MB="0")
    for bot in (in_thread, in_process):
        await bot.ready_run("tickets", settings="label=colour")  # refused: not a column
        await bot.command("set tickets label=category train=60 eval=30")
        await bot.command("estimate tickets")
        thread_ts = (await bot.run("tickets")).thread_ts
        await bot.share(b"only one column\n", "empty.csv", thread_ts=thread_ts)
    assert in_process.bot.service.datasets._pool is not None and in_thread.bot.service.datasets._pool is None
    texts = [thread_texts(await bot.thread("tickets"))[1:] for bot in (in_thread, in_process)]
    assert texts[0] == texts[1]
    assert any("Estimate for tickets" in t for t in texts[1]) and "Could not use *empty.csv*" in texts[1][-1]
    assert in_thread.said_to("alice") == in_process.said_to("alice")
    assert any("colour" in said for said in in_process.said_to("alice"))


async def test_a_77_class_upload_lists_the_first_labels_and_status_lists_them_all(bot):
    """Issue 19: a 77-class upload posted a 77-row table into the thread, and setting 77 choices echoed them all."""
    labels = [f"class-{i:02d}" for i in range(77)]
    csv = "text,label\n" + "".join(f"ticket {i} about {labels[i % 77]},{labels[i % 77]}\n" for i in range(77 * 6))
    thread_ts = await _card_ts(bot)
    await bot.share(csv.encode(), "many.csv", thread_ts=thread_ts)
    loaded = "\n".join(thread_texts(await bot.thread("tickets")))
    assert sum(label in loaded for label in labels) == 10
    assert "… and 67 more labels (402 rows). `/distill status tickets` lists every label." in loaded

    await bot.command(f"set tickets label=label choices={','.join(labels)}")
    confirmation = thread_texts(await bot.thread("tickets"))[-1]
    assert sum(label in confirmation for label in labels) == 10
    assert "(77 labels; `/distill status tickets` lists them all)" in confirmation

    await bot.command("status tickets")
    status = "\n".join(bot.said_to("alice"))
    assert all(status.count(label) >= 2 for label in labels), "every choice, and every label's rows"
    assert "*Choices* (77)" in status and "Rows per label in *label*:" in status
