"""response_url endpoints, driven by slack_sdk's AsyncWebhookClient (what Bolt's `respond` uses)."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from sandbox.slack import SlackSandbox


class Clock:
    def __init__(self) -> None:
        self.now = 1_732_268_400.0

    def __call__(self) -> float:
        return self.now


async def test_a_response_url_takes_five_messages_within_thirty_minutes():
    clock = Clock()
    slack = SlackSandbox(clock=clock)
    await slack.start()
    try:
        alice = slack.user("alice")["id"]
        hook = AsyncWebhookClient(slack.responses.issue("commands", channel="C0GENERAL", user=alice).url)
        statuses = [(await hook.send(text=f"step {n}")).status_code for n in range(6)]
        assert statuses == [200] * 5 + [404]
        assert len(slack.ephemerals("alice")) == 5, "responses are ephemeral unless in_channel"

        later = AsyncWebhookClient(slack.responses.issue("commands", channel="C0GENERAL", user=alice).url)
        clock.now += 30 * 60 + 1
        expired = await later.send(text="too late")
        assert (expired.status_code, expired.body) == (404, '{"ok": false, "error": "expired_url"}')
    finally:
        await slack.stop()


async def test_in_channel_replace_and_delete_original(slack_sandbox, slack_client):
    seen = []
    slack_sandbox.subscribe(seen.append)
    bob = slack_sandbox.user("bob")["id"]
    card = await slack_client.chat_postMessage(channel="C0GENERAL", text="card")
    hook = AsyncWebhookClient(slack_sandbox.responses.issue("actions", channel="C0GENERAL", user=bob,
                                                            message_ts=card["ts"]).url)

    assert (await hook.send(text="Collected", response_type="in_channel")).status_code == 200
    assert [m["text"] for m in slack_sandbox.messages("C0GENERAL")] == ["card", "Collected"]
    assert (await hook.send(text="card v2", replace_original=True)).status_code == 200
    assert slack_sandbox.message("C0GENERAL", card["ts"])["text"] == "card v2"
    refused = await hook.send(text="x", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}])
    assert refused.status_code == 400 and "invalid_blocks" in refused.body
    assert (await hook.send(delete_original=True)).status_code == 200
    assert slack_sandbox.message("C0GENERAL", card["ts"]) is None
    assert [(e.kind, e.message["text"]) for e in seen] == [
        ("message", "card"), ("message", "Collected"), ("message_changed", "card v2"), ("message_deleted", "card v2")]


async def test_an_ephemeral_original_is_replaced_for_its_user_only(slack_sandbox, slack_client):
    alice = slack_sandbox.user("alice")["id"]
    posted = await slack_client.chat_postEphemeral(channel="C0GENERAL", user=alice, text="Approve?")
    hook = AsyncWebhookClient(slack_sandbox.responses.issue("actions", channel="C0GENERAL", user=alice,
                                                            message_ts=posted["message_ts"], ephemeral=True).url)
    assert (await hook.send(text="Approved", replace_original=True)).status_code == 200
    assert [e.message["text"] for e in slack_sandbox.ephemerals("alice")] == ["Approved"]
    assert (await hook.send(delete_original=True)).status_code == 200
    assert slack_sandbox.ephemerals("alice") == []


async def test_json_bodies_are_read_only_for_methods_that_accept_json(slack_sandbox, slack_client):
    slack_sandbox.user("alice")
    # users.info takes query or form arguments; Slack ignores a JSON body there, so the user is missing.
    with pytest.raises(SlackApiError) as ignored:
        await slack_client.api_call("users.info", json={"user": "U0ALICE"})
    assert ignored.value.response["error"] == "user_not_found"
    assert (await slack_client.api_call("users.info", params={"user": "U0ALICE"}))["user"]["id"] == "U0ALICE"
