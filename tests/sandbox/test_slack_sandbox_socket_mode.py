"""Socket Mode in the Slack sandbox: a real Bolt AsyncSocketModeHandler connects, gets requests, and acks them."""

from __future__ import annotations

import asyncio

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackDriver


async def test_an_app_connected_over_socket_mode_answers_commands_and_events(slack_sandbox):
    seen: list = []
    client = AsyncWebClient(token=slack_sandbox.bot_token, base_url=slack_sandbox.api_url)
    app = AsyncApp(client=client, signing_secret="unused-in-socket-mode")

    @app.command("/distill")
    async def distill(ack, command):
        await ack(f"Working on `{command['text']}`")

    @app.event("message")
    async def message(body):
        seen.append(body["event"]["text"])

    handler = AsyncSocketModeHandler(app, slack_sandbox.socket_mode.app_token)
    await handler.connect_async()
    try:
        while not slack_sandbox.socket_mode.connected:
            await asyncio.sleep(0.01)
        driver = SlackDriver(slack_sandbox, deliver=slack_sandbox.socket_mode)
        reply = await driver.slash_command(user="alice", channel="general", text="new wine")
        assert reply.status == 200 and reply.body == {"text": "Working on `new wine`"}
        assert [e.message["text"] for e in slack_sandbox.ephemerals("alice")] == ["Working on `new wine`"]
        await driver.say(user="bob", channel="general", text="hello")
        while not seen:
            await asyncio.sleep(0.01)
        assert seen == ["hello"]
    finally:
        await handler.close_async()


async def test_connections_open_needs_the_app_level_token(slack_sandbox, slack_client):
    with pytest.raises(SlackApiError) as caught:
        await slack_client.apps_connections_open(app_token=slack_sandbox.bot_token)
    assert caught.value.response["error"] == "not_allowed_token_type"
    opened = await slack_client.apps_connections_open(app_token=slack_sandbox.socket_mode.app_token)
    assert opened["url"].startswith("ws://127.0.0.1:")
