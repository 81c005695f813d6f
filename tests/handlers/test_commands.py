"""/distill: every subcommand's happy path and its bad-argument message, through signed requests to the real app."""

from __future__ import annotations

import re

import pytest

from bot.examples import TICKETS_CSV
from bot.spec.settings import SETTABLE_KEYS
from handlers.commands import COMMANDS
from tests.conftest import doc_text
from tests.handlers.conftest import CHANNEL, buttons, thread_texts


@pytest.fixture(params=["async_dispatch", "http"])
async def either(request, make_bot):
    """The same bot, reached through Bolt's async_dispatch or over HTTP."""
    return await make_bot(over_http=request.param == "http")


async def test_a_run_goes_from_new_to_an_approval_request(either):
    reply = await either.command("new tickets")
    assert reply.status == 200 and reply.body == ""  # acked at once; the card is the answer
    [card] = either.slack.messages(CHANNEL)
    assert card["blocks"][0]["text"]["text"] == "Distill run: tickets" and "Reply in this thread" in card["text"]
    await either.command("set tickets label=category train=60 eval=30")  # no data yet: stored, checked later
    await either.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=card["ts"])
    run = await either.run("tickets")
    assert run.state == "ready" and run.spec["label"] == "category" and run.spec["train_size"] == 60
    await either.command("estimate tickets")
    await either.command("collect tickets")
    thread = await either.thread("tickets")
    texts = "\n".join(thread_texts(thread))
    assert "Loaded *it-tickets.csv*: 480 rows" in texts and "Estimate for tickets" in texts
    assert "Spending request: collect" in texts and buttons(thread[-1]) == {"approve": "1", "reject": "1"}
    assert either.said_to("alice") == []  # nothing went wrong, so nothing was said to alice alone


async def test_help_lists_every_subcommand_and_setting_from_their_declarations(bot):
    await bot.command("help")
    await bot.command("")
    [shown, bare] = bot.said_to("alice")
    assert shown == bare
    for command in COMMANDS:
        assert f"`/distill {command.name}" in shown and command.example in shown
    for key in SETTABLE_KEYS:
        assert f"`{key}`" in shown


@pytest.mark.parametrize(("text", "expected"), [
    ("estimat tickets", "There is no `/distill estimat`. Did you mean `/distill estimate`?"),
    ("new", "`/distill new` takes NAME, not 0 arguments."),
    ("new a b", "`/distill new` takes NAME, not 2 arguments."),
    ("set tickets", "`/distill set` takes NAME key=value ..., not 1 argument."),
    ("set tickets labelcategory", "`labelcategory` is not a setting: write `key=value`"),
    ('set tickets template="unclosed', "Could not read the command: no closing quotation"),
    ("list everything", "`/distill list` takes no arguments, not 1 argument."),
    ("status a b", "`/distill status` takes [NAME], not 2 arguments."),
])
async def test_bad_arguments_get_the_usage_in_the_ack_and_nothing_runs(bot, text, expected):
    reply = await bot.command(text)
    assert reply.status == 200 and reply.body["response_type"] == "ephemeral"
    [shown] = bot.said_to("alice")
    assert expected in shown and "Traceback" not in shown
    name = text.split()[0]
    if name in {c.name for c in COMMANDS}:
        assert "Usage: `/distill" in shown and "Example: `/distill" in shown
    assert bot.slack.messages(CHANNEL) == []


def _wrong_count(command) -> str:
    low, high = command.arity
    return command.name if low else " ".join([command.name, *["extra"] * (int(high) + 1)])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
async def test_every_subcommand_answers_a_wrong_argument_count_with_its_usage(bot, command):
    await bot.command(_wrong_count(command))
    [shown] = bot.said_to("alice")
    assert f"`/distill {command.name}` takes" in shown and command.usage() in shown


@pytest.mark.parametrize(("text", "expected"), [
    ("new Bad!Name", "'Bad!Name' cannot be a run name"),
    ("set nosuch label=x", "No run named 'nosuch' in this channel"),
    ("estimate nosuch", "No run named 'nosuch' in this channel. This channel has no runs yet."),
    ("train nosuch", "No run named 'nosuch'"),
])
async def test_refusals_from_the_product_are_shown_as_they_are(bot, text, expected):
    await bot.command(text)
    [shown] = bot.said_to("alice")
    assert shown.startswith(":no_entry: ") and expected in shown and "error id" not in shown


async def test_set_reads_quoted_values_and_refuses_unknown_keys_by_name(bot):
    await bot.command("new tickets")
    # Slack sends & < > in command text escaped, and some clients type typographic quotes.
    await bot.command("set tickets template=“Ticket: {subject} &amp; {body}” system='Answer &lt;briefly&gt;'")
    run = await bot.run("tickets")
    assert run.spec["template"] == "Ticket: {subject} & {body}" and run.spec["system"] == "Answer <briefly>"
    await bot.command("set tickets colour=red epochs=99")
    [refused] = bot.said_to("alice")
    assert "unknown setting 'colour'" in refused and "epochs: expected a whole number from 1 to 50" in refused
    changed = thread_texts(await bot.thread("tickets"))[-1]
    assert "Answer &lt;briefly&gt;" in changed and "&amp;" in changed  # echoed escaped into mrkdwn


async def test_collect_without_data_and_train_before_collection_say_what_to_do(bot):
    await bot.command("new tickets")
    await bot.command("collect tickets")
    await bot.command("train tickets")
    no_data, no_training = bot.said_to("alice")
    assert "Cannot collect answers while run 'tickets' is created: reply in the thread with a CSV first" in no_data
    assert "Cannot train the student while run 'tickets' is created" in no_training


async def test_status_list_audit_and_models(bot):
    await bot.command("list")
    await bot.ready_run("tickets")
    await bot.command("new wine")
    await bot.command("status tickets")
    await bot.command("status")
    await bot.command("audit tickets")
    await bot.command("models")
    empty, status, listed, audit, models = bot.said_to("alice")
    assert "This channel has no runs yet" in empty
    assert "*tickets* is *ready*" in status and "Dataset: it-tickets.csv (480 rows)" in status
    assert "*tickets* — ready, spent $0.00" in listed and "*wine* — created" in listed
    assert "Audit log of tickets" in audit
    assert all(action in audit for action in ("run-created", "dataset-attached", "spec-changed"))
    assert "gpt-6.2-sol " in models and "default teacher" in models and "2027-01-14" in models


async def test_models_lists_teachers_and_each_trainers_students_with_prices_efforts_and_dates(make_bot):
    bot = await make_bot(TOGETHER_API_KEY="together-key")
    await bot.command("models")
    [said] = bot.said_to("alice")
    rows = {line.split()[0]: line for line in said.splitlines() if line.startswith(("gpt-", "meta-llama", "Qwen"))}
    assert rows["gpt-6.2-sol"].split()[1:7] == ["teacher,", "student", "(dicl)", "$2.00", "/", "$10.00"]
    assert "low..max" in rows["gpt-6.2-sol"]
    assert "student (dicl)" in rows["gpt-6-luna"] and "student (openai)" not in rows["gpt-6-luna"]
    assert "none announced" in rows["gpt-6.2-sol"] and "default teacher" in rows["gpt-6.2-sol"]
    assert "none..max" in rows["gpt-6.1-terra"] and "none..max" in rows["gpt-6-luna"]
    student = rows["gpt-4o-mini-2024-07-18"]
    assert "teacher, student (openai)" in student and "$3.00" in student and "2027-01-14" in student
    assert "SHUT 2026-10-23" in rows["gpt-4.1-nano-2025-04-14"] and "2026-12-11" in rows["gpt-5"]
    assert "student (together)" in rows["Qwen/Qwen3.5-9B"] and "$0.48" in rows["Qwen/Qwen3.5-9B"]
    # Together trains Llama 3.1 8B Reference but cannot serve its fine-tunes for the eval: not offered as a student.
    assert "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference" not in said
    assert "text-embedding-3-small" not in said  # not a chat model: neither teacher nor student


async def test_report_and_export_before_any_answers_say_what_to_do_first(bot):
    await bot.ready_run("tickets")
    await bot.command("report tickets")
    await bot.command("export tickets")
    report, export = bot.said_to("alice")
    assert "no eval split yet: collect answers first" in report
    assert "no answers on the eval split to export yet" in export


async def test_cancel_asks_first_and_only_the_confirmation_cancels(bot):
    await bot.ready_run("tickets")
    await bot.command("cancel tickets")
    [question] = bot.slack.ephemerals("alice")
    assert buttons(question.message) == {"cancel_confirmed": "1", "cancel_kept": "1"}
    await bot.click(question.message["ts"], "cancel_kept", user="alice")
    assert (await bot.run("tickets")).state == "ready" and "was not cancelled" in bot.said_to("alice")[-1]

    await bot.command("cancel tickets")
    question = bot.slack.ephemerals("alice")[-1]
    await bot.click(question.message["ts"], "cancel_confirmed", user="alice")
    assert (await bot.run("tickets")).state == "cancelled"
    assert question not in bot.slack.ephemerals("alice"), "the question goes away once answered"
    assert "Cancelled by <@U0ALICE>" in thread_texts(await bot.thread("tickets"))[-1]


async def test_a_run_in_another_channel_is_invisible(bot):
    await bot.ready_run("tickets")
    for text in ("status tickets", "estimate tickets", "set tickets eval=10", "cancel tickets"):
        await bot.command(text, channel="random")
    await bot.command("list", channel="random")
    *refusals, listed = bot.said_to("alice")
    assert all("No run named 'tickets' in this channel" in r for r in refusals) and len(refusals) == 4
    assert "This channel has no runs yet" in listed
    run = await bot.run("tickets")
    assert run.spec["eval_size"] == 30 and bot.slack.messages("C0RANDOM") == []


def test_every_subcommand_is_in_the_slack_docs():
    documented = doc_text("slack.md")
    for command in COMMANDS:
        if command.name != "help":
            assert f"`/distill {command.name}" in documented, f"docs/slack.md does not mention /distill {command.name}"


def test_every_card_button_is_a_subcommand():
    from handlers.actions import CARD_ACTIONS
    from handlers.commands import BY_NAME

    assert set(CARD_ACTIONS) <= set(BY_NAME)


async def test_card_buttons_do_what_the_subcommand_of_the_same_name_does(bot):
    run = await bot.ready_run("tickets")
    card = bot.slack.message(CHANNEL, run.card_ts)
    assert buttons(card) == {"estimate": str(run.id), "collect": str(run.id)}
    await bot.click(run.card_ts, "estimate", user="bob")
    await bot.click(run.card_ts, "collect", user="bob")
    thread = await bot.thread("tickets")
    assert "Estimate for tickets" in "\n".join(thread_texts(thread))
    assert "asked by <@U0BOB>" in thread_texts([thread[-1]])[0] and set(buttons(thread[-1])) == {"approve", "reject"}
    card = bot.slack.message(CHANNEL, run.card_ts)
    assert "awaiting_approval" in str(card["blocks"]) and buttons(card) == {}


async def test_a_message_slack_keeps_refusing_is_explained_to_the_person_who_asked(bot):
    await bot.ready_run("tickets")
    bot.slack.inject_ratelimit("chat.postMessage", count=4, retry_after=0)  # outlasts the client's 3 retries
    await bot.command("estimate tickets")
    [shown] = bot.said_to("alice")
    assert "Slack refused a message for run 'tickets' (ratelimited)" in shown and "error id" not in shown


async def test_an_unexpected_failure_gets_an_error_id_in_the_reply_the_thread_and_the_log(bot, caplog):
    await bot.ready_run("tickets")
    await bot.bot.storage.db.execute("DROP TABLE audit_log")  # a database that lost a table: a bug, not a user error
    await bot.command("set tickets eval=20")
    [shown] = bot.said_to("alice")
    error_id = re.search(r"error id ([0-9a-f]{8})", shown).group(1)
    assert shown.startswith(":x: Something went wrong")
    assert f"error id {error_id}" in thread_texts(await bot.thread("tickets"))[-1]
    assert any(f"error {error_id}" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_the_cards_next_step_stops_asking_for_a_label_once_one_is_set(bot):
    await bot.command("new tickets")
    run = await bot.run("tickets")
    await bot.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=run.thread_ts)
    card = str(bot.slack.message(CHANNEL, run.thread_ts))
    assert "Set the label column with `/distill set tickets label=COLUMN`" in card
    await bot.command("set tickets label=category")
    card = str(bot.slack.message(CHANNEL, run.thread_ts))
    assert "Set the label column" not in card
    assert ("Check the cost with `/distill estimate tickets` (a reasoning teacher: `/distill pilot tickets` measures "
            "its reasoning on 20 rows first), then `/distill collect tickets`.") in card


async def test_models_says_which_setting_to_fix_when_the_provider_refuses_the_key_or_cannot_be_reached(make_bot):
    """Issue 19: `/distill models` with a 401 or an unreachable provider did not say what to change."""
    refused = await make_bot(OPENAI_API_KEY="sk-not-the-sandbox-key")
    await refused.command("models")
    said = refused.said_to("alice")[-1]
    assert "refused the key (HTTP 401: " in said and "Set a valid key for it in OPENAI_API_KEY." in said
    assert "sk-not-the-sandbox-key" not in "".join(refused.said_to("alice"))
    unreachable = await make_bot(OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    await unreachable.command("models")
    said = unreachable.said_to("alice")[-1]
    assert "Could not reach http://127.0.0.1:9/v1 (APIConnectionError" in said and "Check OPENAI_BASE_URL" in said
    assert "gpt-6.2-sol" in "".join(unreachable.said_to("alice")), "the price table's models are still listed"
