"""Scopes in the Slack sandbox: a revoked scope fails its methods with missing_scope; files:read guards downloads."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError


async def test_a_revoked_scope_answers_missing_scope_naming_it(slack_sandbox, slack_client):
    slack_sandbox.add_usergroup("S0APPROVERS", ["bob"])
    assert (await slack_client.usergroups_users_list(usergroup="S0APPROVERS"))["users"] == ["U0BOB"]
    slack_sandbox.revoke_scope("usergroups:read")
    with pytest.raises(SlackApiError) as caught:
        await slack_client.usergroups_users_list(usergroup="S0APPROVERS")
    reply = caught.value.response
    assert reply["error"] == "missing_scope" and reply["needed"] == "usergroups:read"
    assert "usergroups:read" not in reply["provided"] and "chat:write" in reply["provided"]


async def test_without_files_read_a_download_is_a_sign_in_page(slack_sandbox):
    file = slack_sandbox.add_file("alice", "tickets.csv", b"a,b\n1,2\n")
    headers = {"Authorization": f"Bearer {slack_sandbox.bot_token}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(file["url_private_download"], headers=headers) as response:
            assert response.content_type == "text/csv" and await response.read() == b"a,b\n1,2\n"
        slack_sandbox.revoke_scope("files:read")
        async with session.get(file["url_private_download"], headers=headers) as response:
            assert response.status == 200 and response.content_type == "text/html"
    assert len(slack_sandbox.downloads) == 2
