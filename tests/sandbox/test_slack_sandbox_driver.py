"""The user-side driver against a tiny real Bolt app: signed requests in Slack's shapes, in-process and over HTTP."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackDriver
from sandbox.slack.signing import signature

INBOUND = "slack/samples/inbound"
FORM = "application/x-www-form-urlencoded"
STALE_BODY = b"command=%2Fdistill&text=replayed"
BUTTONS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Spend $12.40 on collection?"}},
    {"type": "actions", "elements": [
        {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": "Approve"}, "value": "run-1"},
        {"type": "button", "action_id": "reject", "text": {"type": "plain_text", "text": "Reject"}, "value": "run-1"},
    ]},
]


def _sample(shared_dir, name: str) -> dict:
    return json.loads((shared_dir / INBOUND / name).read_text())


def bolt_app(slack, seen: list) -> AsyncApp:
    """The smallest app that answers a command, a button and message events, recording what it received."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    app = AsyncApp(signing_secret=slack.signing_secret, client=client, process_before_response=True)

    @app.command("/distill")
    async def distill(ack, command):
        seen.append(command)
        await ack(f"Working on `{command['text']}`")

    @app.action("approve")
    async def approve(ack, body, respond):
        await ack()
        seen.append(body)
        await respond(replace_original=True, text=f"Approved by <@{body['user']['id']}>")

    @app.event("message")
    async def message(body, request):
        seen.append((body, request.headers.get("x-slack-retry-num")))

    return app


def test_signatures_match_slacks_documented_example(shared_dir):
    example = _sample(shared_dir, "slash_command.docs-signing-example.signature.json")
    body = (shared_dir / INBOUND / "slash_command.docs-signing-example.body.txt").read_bytes().strip()
    assert signature(example["signing_secret"], example["X-Slack-Request-Timestamp"], body) == \
        example["X-Slack-Signature"]


async def test_slash_command_is_accepted_and_its_ack_is_shown_to_the_user(slack_sandbox, shared_dir):
    seen: list = []
    driver = SlackDriver(slack_sandbox, deliver=bolt_app(slack_sandbox, seen))
    reply = await driver.slash_command(user="alice", channel="general", text="new wine")
    assert reply.status == 200 and reply.body == "Working on `new wine`"  # Bolt acks text as text/plain
    assert seen[0]["command"] == "/distill" and seen[0]["user_id"] == "U0ALICE"
    assert seen[0]["channel_name"] == "general" and seen[0]["is_enterprise_install"] == "false"
    captured = set(_sample(shared_dir, "slash_command.modified-real-payload.java-sdk.fields.json"))
    assert set(reply.payload) == captured - {"enterprise_id", "enterprise_name"} | {"is_enterprise_install"}
    assert reply.payload["response_url"].startswith(slack_sandbox.base_url)
    assert [e.message["text"] for e in slack_sandbox.ephemerals("alice")] == ["Working on `new wine`"]
    assert slack_sandbox.ephemerals("bob") == []


async def test_stale_or_wrongly_signed_requests_get_401_in_process(slack_sandbox):
    seen: list = []
    app = bolt_app(slack_sandbox, seen)
    stale = await SlackDriver(slack_sandbox, deliver=app).send(STALE_BODY, FORM, timestamp=int(time.time()) - 600)
    forged = await SlackDriver(slack_sandbox, deliver=app, signing_secret="not-the-secret").slash_command(
        user="alice", channel="general")
    assert (stale.status, forged.status) == (401, 401) and seen == []


async def test_requests_over_http_reach_bolts_web_app(slack_sandbox):
    seen: list = []
    runner = web.AppRunner(bolt_app(slack_sandbox, seen).web_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        host, port = runner.addresses[0][:2]
        driver = SlackDriver(slack_sandbox, deliver=f"http://{host}:{port}")
        reply = await driver.slash_command(user="alice", channel="general", text="status")
        assert reply.status == 200 and seen[0]["text"] == "status"
        stale = await driver.send(STALE_BODY, FORM, timestamp=int(time.time()) - 600)
        assert stale.status == 401 and len(seen) == 1
    finally:
        await runner.cleanup()


async def test_click_sends_the_real_message_and_respond_replaces_it(slack_sandbox, shared_dir):
    seen: list = []
    client = AsyncWebClient(token=slack_sandbox.bot_token, base_url=slack_sandbox.api_url)
    posted = await client.chat_postMessage(channel="C0GENERAL", text="Approve spend?", blocks=BUTTONS)
    driver = SlackDriver(slack_sandbox, deliver=bolt_app(slack_sandbox, seen))

    reply = await driver.click(user="bob", channel="C0GENERAL", message_ts=posted["ts"], action_id="approve")
    body = seen[0]
    assert reply.status == 200
    assert set(body) == set(_sample(shared_dir, "block_actions.button-in-message.bolt-python.json")) | {"token"}
    assert body["message"]["blocks"] == posted["message"]["blocks"]
    assert body["container"] == {"type": "message", "message_ts": posted["ts"], "channel_id": "C0GENERAL",
                                 "is_ephemeral": False}
    action = body["actions"][0]
    assert (action["action_id"], action["value"], body["user"]["id"]) == ("approve", "run-1", "U0BOB")
    assert action["block_id"] == posted["message"]["blocks"][1]["block_id"]
    replaced = slack_sandbox.message("C0GENERAL", posted["ts"])
    assert replaced["text"] == "Approved by <@U0BOB>" and "blocks" not in replaced

    with pytest.raises(LookupError, match="its buttons: none"):
        await driver.click(user="bob", channel="C0GENERAL", message_ts=posted["ts"], action_id="approve")


async def test_file_share_in_a_thread_reaches_the_app_and_a_retry_is_marked(slack_sandbox, shared_dir, tmp_path):
    seen: list = []
    root = slack_sandbox.workspace.post(slack_sandbox.channel("general"), slack_sandbox.workspace.bot_message("run"))
    csv = tmp_path / "tickets.csv"
    csv.write_bytes(b"text,category\nlogin fails,account\n")
    driver = SlackDriver(slack_sandbox, deliver=bolt_app(slack_sandbox, seen))

    reply = await driver.share_file(csv, user="alice", channel="general", thread_ts=root["ts"], text="here")
    (body, retry_num), = seen
    event = body["event"]
    assert reply.status == 200 and retry_num is None
    assert set(body) == set(_sample(shared_dir, "event_callback.message_file_share.png-channel.bolt-python.json"))
    assert (event["subtype"], event["thread_ts"], event["user"]) == ("file_share", root["ts"], "U0ALICE")
    file = event["files"][0]
    assert (file["name"], file["filetype"], file["mimetype"]) == ("tickets.csv", "csv", "text/csv")
    assert slack_sandbox.thread("C0GENERAL", root["ts"])[-1]["files"][0]["id"] == file["id"]
    async with aiohttp.ClientSession() as http, http.get(
            file["url_private_download"], headers={"Authorization": f"Bearer {slack_sandbox.bot_token}"}) as got:
        assert await got.read() == csv.read_bytes()

    retry = await driver.send_event(reply.payload, retry_num=1, retry_reason="http_timeout")
    assert retry.status == 200 and seen[1][1] == ["1"]
    assert seen[1][0]["event_id"] == body["event_id"]
