"""Who is in a Slack user group, for the approval rules (bot.approvals.Directory).

usergroups.users.list is a Tier 2 method (about 20 calls a minute,
https://docs.slack.dev/reference/methods/usergroups.users.list), and every approval click asks, so members
are cached for a short while: a person added to the group can approve a minute later at the latest. A group
that does not exist (no_such_subteam) is a mistake in DISTILL_APPROVERS, told as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import ApprovalError
from handlers import messages

CACHE_SECONDS = 60.0


class SlackDirectory:
    def __init__(self, client: AsyncWebClient, *, cache_seconds: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._members: dict[str, tuple[float, set[str]]] = {}

    async def members_of(self, group_id: str) -> set[str]:
        cached = self._members.get(group_id)
        if cached and self.clock() - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            reply = await self.client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            if exc.response.get("error") == "no_such_subteam":
                raise ApprovalError(messages.no_such_group(group_id)) from exc
            raise
        members = set(reply.get("users") or [])
        self._members[group_id] = (self.clock(), members)
        return members
