"""Modals in the Slack sandbox: trigger ids, views.open / views.update, and view_submission through a real Bolt app."""

from __future__ import annotations

import pytest
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackDriver

MODAL = {
    "type": "modal", "callback_id": "note", "title": {"type": "plain_text", "text": "Note"},
    "submit": {"type": "plain_text", "text": "Save"}, "private_metadata": "run-7",
    "blocks": [{"type": "input", "block_id": "note", "label": {"type": "plain_text", "text": "Note"},
                "element": {"type": "plain_text_input", "action_id": "text", "multiline": True}}],
}


def modal_app(slack, seen: list) -> AsyncApp:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    app = AsyncApp(signing_secret=slack.signing_secret, client=client, process_before_response=True)

    @app.command("/distill")
    async def open_modal(ack, body, client):
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=MODAL)

    @app.view("note")
    async def submitted(ack, view):
        text = view["state"]["values"]["note"]["text"]["value"]
        seen.append((view["private_metadata"], text))
        if "!" in text:
            await ack(response_action="errors", errors={"note": "No exclamation marks, please."})
        else:
            await ack()

    return app


async def _error(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def test_a_command_opens_a_modal_whose_submission_is_validated_then_closes(slack_sandbox):
    seen: list = []
    driver = SlackDriver(slack_sandbox, deliver=modal_app(slack_sandbox, seen))
    await driver.slash_command(user="alice", channel="general", text="note")
    [view] = slack_sandbox.views("alice")
    assert view["callback_id"] == "note" and view["hash"] and slack_sandbox.views("bob") == []

    refused = await driver.submit_view(user="alice", view_id=view["id"], values={"text": "hi!"})
    assert refused.body == {"response_action": "errors", "errors": {"note": "No exclamation marks, please."}}
    assert slack_sandbox.views("alice"), "a view answered with errors stays open"
    accepted = await driver.submit_view(user="alice", view_id=view["id"], values={"text": "hello & bye"})
    assert accepted.status == 200 and slack_sandbox.views("alice") == []
    assert seen == [("run-7", "hi!"), ("run-7", "hello & bye")]
    with pytest.raises(LookupError):
        await driver.submit_view(user="alice", view_id=view["id"], values={"text": "again"})


async def test_trigger_ids_are_single_use_and_bad_views_are_refused(slack_sandbox, slack_client):
    trigger = slack_sandbox.workspace.views.issue_trigger("U0ALICE")
    long_title = dict(MODAL, title={"type": "plain_text", "text": "A title far over the limit"})
    assert (await _error(slack_client.views_open(trigger_id=trigger, view=long_title))).response["error"] == \
        "invalid_arguments"
    opened = await slack_client.views_open(trigger_id=trigger, view=MODAL)
    assert (await _error(slack_client.views_open(trigger_id=trigger, view=MODAL))).response["error"] == \
        "exchanged_trigger_id"
    assert (await _error(slack_client.views_open(trigger_id="1.2.nope", view=MODAL))).response["error"] == \
        "invalid_trigger_id"
    view = opened["view"]
    updated = await slack_client.views_update(view_id=view["id"], hash=view["hash"], view=dict(MODAL, callback_id="x"))
    assert updated["view"]["callback_id"] == "x"
    stale = await _error(slack_client.views_update(view_id=view["id"], hash="1.stale", view=MODAL))
    assert stale.response["error"] == "hash_conflict"


async def test_an_expired_trigger_cannot_open_a_modal(slack_sandbox, slack_client):
    now = [1_000.0]
    slack_sandbox.workspace.views.clock = lambda: now[0]
    trigger = slack_sandbox.workspace.views.issue_trigger("U0ALICE")
    now[0] += 3.5
    assert (await _error(slack_client.views_open(trigger_id=trigger, view=MODAL))).response["error"] == \
        "expired_trigger_id"
