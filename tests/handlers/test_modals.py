"""The prompt-template modal: opened by `/distill template NAME`, checked on submit, saved to the run's spec."""

from __future__ import annotations

from tests.handlers.conftest import thread_texts

TEMPLATE = "Ticket: {subject}\n\n{body}\n\nAnswer with one of: {choices}"


async def _open(bot) -> dict:
    await bot.ready_run("tickets")
    await bot.command("template tickets")
    [view] = bot.slack.views("alice")
    return view


async def test_the_modal_shows_the_columns_and_saves_a_multi_line_template(bot):
    view = await _open(bot)
    assert view["callback_id"] == "set_template" and "`{subject}`" in view["blocks"][0]["text"]["text"]
    reply = await bot.driver.submit_view(user="alice", view_id=view["id"], values={"template": TEMPLATE})
    await bot.bot.idle()
    assert reply.status == 200 and bot.slack.views("alice") == []
    assert (await bot.run("tickets")).spec["template"] == TEMPLATE
    assert "changed `template=Ticket: {subject}" in thread_texts(await bot.thread("tickets"))[-1]

    await bot.command("template tickets")
    [again] = bot.slack.views("alice")
    assert again["blocks"][1]["element"]["initial_value"] == TEMPLATE


async def test_a_template_with_broken_braces_is_refused_under_the_field(bot):
    view = await _open(bot)
    reply = await bot.driver.submit_view(user="alice", view_id=view["id"], values={"template": "Ticket {subject"})
    await bot.bot.idle()
    assert reply.body["response_action"] == "errors" and "template" in reply.body["errors"]
    assert bot.slack.views("alice"), "the modal stays open to be fixed"
    assert (await bot.run("tickets")).spec["template"] is None


async def test_a_placeholder_that_is_not_a_column_is_told_to_the_submitter(bot):
    view = await _open(bot)
    await bot.driver.submit_view(user="alice", view_id=view["id"], values={"template": "Ticket: {subjcet}"})
    await bot.bot.idle()
    assert "subjcet" in bot.said_to("alice")[-1] and bot.said_to("bob") == []
    assert (await bot.run("tickets")).spec["template"] is None
