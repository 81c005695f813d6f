"""The Slack sandbox's Web API, driven by the real slack_sdk AsyncWebClient over HTTP."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack.content import MISSING_TEXT

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Run* wine"}}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def _error(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def test_auth_test_answers_for_the_bot_and_refuses_missing_or_wrong_tokens(slack_sandbox, slack_client):
    reply = await slack_client.auth_test()
    ws = slack_sandbox.workspace
    assert (reply["user_id"], reply["bot_id"], reply["team_id"]) == (ws.bot_user_id, ws.bot_id, "T0SANDBOX")
    anonymous = AsyncWebClient(base_url=slack_sandbox.api_url)
    assert (await _error(anonymous.auth_test())).response.data == {"ok": False, "error": "not_authed"}
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack_sandbox.api_url)
    assert (await _error(wrong.auth_test())).response["error"] == "invalid_auth"


async def test_post_message_returns_the_stored_message_with_increasing_ts(slack_sandbox, slack_client):
    first = await slack_client.chat_postMessage(channel="C0GENERAL", text="Run wine", blocks=[SECTION])
    second = await slack_client.chat_postMessage(channel="#general", text="again")
    message = first["message"]
    assert first["channel"] == "C0GENERAL" and re.fullmatch(r"\d{10}\.\d{6}", first["ts"])
    assert float(second["ts"]) > float(first["ts"])
    assert message["bot_id"] == slack_sandbox.workspace.bot_id and message["team"] == "T0SANDBOX"
    assert message["app_id"] and message["bot_profile"]["id"] == message["bot_id"]
    assert message["blocks"][0]["block_id"], "Slack gives every block a block_id"
    assert [m["text"] for m in slack_sandbox.messages("C0GENERAL")] == ["Run wine", "again"]
    call = slack_sandbox.calls_to("chat.postMessage")[0]
    assert call.args["blocks"] == [SECTION] and "token" not in call.args and call.warnings == []


async def test_form_encoded_arguments_work_like_json(slack_sandbox, slack_client):
    reply = await slack_client.api_call("chat.postMessage", data={
        "channel": "C0GENERAL", "text": "form", "blocks": json.dumps([SECTION])})
    assert reply["message"]["blocks"][0]["text"]["text"] == "*Run* wine"
    assert slack_sandbox.calls[-1].args["blocks"] == [SECTION]


async def test_blocks_without_fallback_text_are_posted_but_recorded(slack_sandbox, slack_client):
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        reply = await slack_client.chat_postMessage(channel="C0GENERAL", blocks=[SECTION])
    assert reply["ok"] and "warning" not in reply.data, "Slack itself does not warn; its SDKs do"
    assert slack_sandbox.calls[-1].warnings == [MISSING_TEXT]


async def test_message_limits_are_enforced_like_slack(slack_sandbox, slack_client):
    too_many = await _error(slack_client.chat_postMessage(channel="C0GENERAL", text="t", blocks=[SECTION] * 51))
    assert too_many.response["error"] == "invalid_blocks"
    assert too_many.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]
    assert (await slack_client.chat_postMessage(channel="C0GENERAL", text="t", blocks=[SECTION] * 50))["ok"]

    long_section = await _error(slack_client.chat_postMessage(channel="C0GENERAL", text="t",
                                                              blocks=[_section("x" * 3001)]))
    assert "[json-pointer:/blocks/0/text/text]" in long_section.response["response_metadata"]["messages"][0]
    assert (await slack_client.chat_postMessage(channel="C0GENERAL", text="t", blocks=[_section("x" * 3000)]))["ok"]

    long_text = await slack_client.chat_postMessage(channel="C0GENERAL", text="y" * 40_001)
    assert long_text["warning"] == "message_truncated" and len(long_text["message"]["text"]) == 40_000
    updated = await _error(slack_client.chat_update(channel="C0GENERAL", ts=long_text["ts"], text="z" * 40_001))
    assert updated.response["error"] == "msg_too_long"

    assert (await _error(slack_client.chat_postMessage(channel="C0NOPE", text="t"))).response.data == {
        "ok": False, "error": "channel_not_found"}
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        empty = await _error(slack_client.chat_postMessage(channel="C0GENERAL", text=""))
    assert empty.response["error"] == "no_text"
    assert len(slack_sandbox.messages("C0GENERAL")) == 3, "refused messages are not stored"


async def test_update_edits_in_place_keeps_blocks_and_refuses_what_slack_refuses(slack_sandbox, slack_client):
    posted = await slack_client.chat_postMessage(channel="C0GENERAL", text="card", blocks=[SECTION])
    reply = await slack_client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="card v2")
    ws = slack_sandbox.workspace
    assert (reply["channel"], reply["ts"], reply["text"]) == ("C0GENERAL", posted["ts"], "card v2")
    assert reply["message"]["edited"]["user"] == ws.bot_id
    assert reply["message"]["blocks"] == posted["message"]["blocks"], "blocks left out are kept"
    assert slack_sandbox.message("C0GENERAL", posted["ts"])["text"] == "card v2"

    missing = await _error(slack_client.chat_update(channel="C0GENERAL", ts="1.000001", text="x"))
    assert missing.response["error"] == "message_not_found"
    someone_else = ws.post(ws.channel("general"), ws.user_message(slack_sandbox.user("alice")["id"], "mine"))
    refused = await _error(slack_client.chat_update(channel="C0GENERAL", ts=someone_else["ts"], text="x"))
    assert refused.response["error"] == "cant_update_message"


async def test_ephemeral_messages_are_seen_only_by_their_user(slack_sandbox, slack_client):
    seen = []
    slack_sandbox.subscribe(seen.append)
    alice = slack_sandbox.user("alice")["id"]
    reply = await slack_client.chat_postEphemeral(channel="C0GENERAL", user=alice, text="only you")
    assert set(reply.data) == {"ok", "message_ts"}
    assert [e.message["text"] for e in slack_sandbox.ephemerals("alice")] == ["only you"]
    assert slack_sandbox.ephemerals("bob") == [] and slack_sandbox.messages("C0GENERAL") == []
    assert seen[-1].visible_to == alice and seen[-1].message["ts"] == reply["message_ts"]
    nobody = await _error(slack_client.chat_postEphemeral(channel="C0GENERAL", user="U0NOBODY", text="x"))
    assert nobody.response["error"] == "user_not_found"


async def test_replies_come_parent_first_and_page_with_cursors(slack_sandbox, slack_client):
    root = await slack_client.chat_postMessage(channel="C0GENERAL", text="root")
    for n in range(4):
        await slack_client.chat_postMessage(channel="C0GENERAL", text=f"reply {n}", thread_ts=root["ts"])
    first = await slack_client.conversations_replies(channel="C0GENERAL", ts=root["ts"], limit=2)
    parent = first["messages"][0]
    assert parent["text"] == "root" and parent["reply_count"] == 4 and parent["thread_ts"] == root["ts"]
    assert first["has_more"] and first["messages"][1]["parent_user_id"] == slack_sandbox.workspace.bot_user_id
    texts = [m["text"] for m in first["messages"]]
    cursor = first["response_metadata"]["next_cursor"]
    while cursor:
        page = await slack_client.conversations_replies(channel="C0GENERAL", ts=root["ts"], limit=2, cursor=cursor)
        texts += [m["text"] for m in page["messages"]]
        cursor = page.get("response_metadata", {}).get("next_cursor")
    assert texts == ["root", "reply 0", "reply 1", "reply 2", "reply 3"]
    assert [m["text"] for m in slack_sandbox.messages("C0GENERAL")] == ["root"], "replies stay in the thread"

    reply_ts = slack_sandbox.thread("C0GENERAL", root["ts"])[1]["ts"]
    nested = await _error(slack_client.chat_postMessage(channel="C0GENERAL", text="x", thread_ts=reply_ts))
    assert nested.response["error"] == "cannot_reply_to_message"
    unknown = await _error(slack_client.conversations_replies(channel="C0GENERAL", ts="1.000001"))
    assert unknown.response["error"] == "thread_not_found"


async def test_a_deleted_thread_root_leaves_a_tombstone_or_nothing(slack_sandbox, slack_client):
    busy = await slack_client.chat_postMessage(channel="C0GENERAL", text="busy root")
    await slack_client.chat_postMessage(channel="C0GENERAL", text="reply", thread_ts=busy["ts"])
    lonely = await slack_client.chat_postMessage(channel="C0GENERAL", text="lonely root")
    slack_sandbox.delete_message("C0GENERAL", busy["ts"])
    slack_sandbox.delete_message("C0GENERAL", lonely["ts"])

    thread = (await slack_client.conversations_replies(channel="C0GENERAL", ts=busy["ts"]))["messages"]
    assert [m.get("subtype") for m in thread] == ["tombstone", None]
    assert (await slack_client.chat_postMessage(channel="C0GENERAL", text="more", thread_ts=busy["ts"]))["ok"]
    gone = await _error(slack_client.chat_postMessage(channel="C0GENERAL", text="x", thread_ts=lonely["ts"]))
    assert gone.response["error"] == "thread_not_found"
    card = await _error(slack_client.chat_update(channel="C0GENERAL", ts=busy["ts"], text="card"))
    assert card.response["error"] == "message_not_found"


async def test_users_are_created_on_first_use_and_groups_list_members(slack_sandbox, slack_client):
    alice = slack_sandbox.user("alice")
    assert alice["id"] == "U0ALICE" and slack_sandbox.user("U0ALICE") is alice
    info = await slack_client.users_info(user="U0ALICE")
    assert info["user"]["name"] == "alice" and info["user"]["is_bot"] is False
    assert (await _error(slack_client.users_info(user="U0NOBODY"))).response["error"] == "user_not_found"
    slack_sandbox.add_usergroup("S0APPROVERS", ["bob", "U0ALICE"])
    members = await slack_client.usergroups_users_list(usergroup="S0APPROVERS")
    assert members["users"] == ["U0BOB", "U0ALICE"]
    assert (await _error(slack_client.usergroups_users_list(usergroup="S0NONE"))).response["error"] == "no_such_subteam"


async def test_files_upload_v2_lands_in_the_thread_and_downloads_need_the_bot_token(slack_sandbox, slack_client):
    root = await slack_client.chat_postMessage(channel="C0GENERAL", text="run card")
    csv = b"text,label\nfine wine,red\n"
    uploaded = await slack_client.files_upload_v2(channel="C0GENERAL", thread_ts=root["ts"], content=csv,
                                                  filename="eval.csv", title="Eval table")
    file = uploaded["file"]
    assert (file["name"], file["title"], file["filetype"], file["size"]) == ("eval.csv", "Eval table", "csv", len(csv))
    reply = slack_sandbox.thread("C0GENERAL", root["ts"])[-1]
    assert reply["files"][0]["id"] == file["id"] and reply["user"] == slack_sandbox.workspace.bot_user_id

    info = (await slack_client.files_info(file=file["id"]))["file"]
    assert info["shares"]["public"]["C0GENERAL"][0]["thread_ts"] == root["ts"]
    async with aiohttp.ClientSession() as http:
        url = info["url_private_download"]
        async with http.get(url, headers={"Authorization": f"Bearer {slack_sandbox.bot_token}"}) as response:
            assert await response.read() == csv
        async with http.get(url) as response:
            assert response.status == 200 and response.content_type == "text/html"
            assert "Sign in" in await response.text()
    assert (await _error(slack_client.files_info(file="F0NONE"))).response["error"] == "file_not_found"


async def test_injected_429_carries_retry_after_and_the_sdk_retry_handler_gets_through(slack_sandbox, slack_client):
    slack_sandbox.inject_ratelimit("chat.update", count=1, retry_after=7)
    posted = await slack_client.chat_postMessage(channel="C0GENERAL", text="card")
    limited = await _error(slack_client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="v2"))
    assert limited.response.status_code == 429 and limited.response.headers["Retry-After"] == "7"
    assert limited.response.data == {"ok": False, "error": "ratelimited"}

    slack_sandbox.inject_ratelimit("chat.update", count=2, retry_after=0)
    patient = AsyncWebClient(token=slack_sandbox.bot_token, base_url=slack_sandbox.api_url,
                             retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    assert (await patient.chat_update(channel="C0GENERAL", ts=posted["ts"], text="v3"))["ok"]
    assert [c.status for c in slack_sandbox.calls_to("chat.update")] == [429, 429, 429, 200]
    assert slack_sandbox.message("C0GENERAL", posted["ts"])["text"] == "v3"
