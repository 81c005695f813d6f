"""The sandbox's Slack workspace held in memory: team, bot, users, user groups, channels, messages, files.

Users and channels are created on first use by name ("alice" -> U0ALICE, "general" -> C0GENERAL) so a test or
the shell can speak of people and places without setting them up. Every change to what people would see is
announced to subscribers as a `SlackEvent`, which is how the shell renders the conversation.
"""

from __future__ import annotations

import copy
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.slack.ids import Sequence, TsClock, name_id
from sandbox.slack.shapes import StoredFile, bot_profile, file_object, filetype_for, rich_text, user_object
from sandbox.slack.views import Views

log = logging.getLogger(__name__)

POSTED, CHANGED, DELETED = "message", "message_changed", "message_deleted"


@dataclass(frozen=True)
class SlackEvent:
    """Something a person in the workspace would see change.

    kind is "message", "message_changed" or "message_deleted" (Slack's own names); visible_to is the one user
    who sees an ephemeral message, None when the whole channel does.
    """

    kind: str
    channel: str
    message: dict[str, Any]
    visible_to: str | None = None

    @property
    def thread_ts(self) -> str | None:
        return self.message.get("thread_ts")


@dataclass
class Channel:
    id: str
    name: str
    dm_user: str | None = None  # the person in a direct-message channel with the bot
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> message, in ts order

    @property
    def channel_type(self) -> str:
        return "im" if self.dm_user else "channel"


@dataclass
class Ephemeral:
    channel: str
    user: str
    message: dict[str, Any]


def _drop_content(message: dict[str, Any]) -> None:
    for key in ("text", "blocks", "attachments"):
        message.pop(key, None)


class Workspace:
    def __init__(self, *, team_id: str, team_name: str, bot_name: str, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.ts = TsClock(clock)
        self.ids = Sequence()
        self.team = {"id": team_id, "name": team_name, "domain": team_name.lower().replace(" ", "-")}
        self.verification_token = secrets.token_hex(12)
        self.app_id = name_id("A", bot_name)
        self.bot_id = name_id("B", bot_name)
        self.bot_name = bot_name
        self.users: dict[str, dict[str, Any]] = {}
        self.bot_user_id = self._add_user(bot_name, is_bot=True)
        self.bot_profile = bot_profile(self.bot_id, self.app_id, bot_name, team_id, int(clock()))
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, Channel] = {}
        self.channel("general")
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, StoredFile] = {}
        self.views = Views(clock, team_id=team_id, app_id=self.app_id, bot_id=self.bot_id)
        self.base_url = ""
        self._subscribers: list[Callable[[SlackEvent], object]] = []

    # -- people and places

    def _add_user(self, name: str, *, is_bot: bool = False) -> str:
        user_id, n = name_id("U", name), 1
        while user_id in self.users:
            n += 1
            user_id = f"{name_id('U', name)}{n}"
        self.users[user_id] = user_object(user_id, name, self.team["id"], is_bot=is_bot, updated=int(self.clock()))
        return user_id

    def user(self, name_or_id: str) -> dict[str, Any]:
        """The user with this ID or name, created on first use."""
        if name_or_id in self.users:
            return self.users[name_or_id]
        for user in self.users.values():
            if user["name"] == name_or_id:
                return user
        return self.users[self._add_user(name_or_id)]

    def channel(self, name_or_id: str) -> Channel:
        """The channel with this ID or name (a user gets their DM with the bot), created on first use."""
        found = self.find_channel(name_or_id)
        if found:
            return found
        name = name_or_id.lstrip("#")
        if re.fullmatch(r"C0[A-Z0-9]+", name):  # an ID made up by a test, e.g. C0RANDOM -> #random
            channel_id, name = name, name[2:]
        else:
            channel_id = name_id("C", name)
        self.channels[channel_id] = Channel(channel_id, name.lower())
        return self.channels[channel_id]

    def find_channel(self, name_or_id: str) -> Channel | None:
        """What the Web API resolves a `channel` argument to: an ID, a name, or a user ID (their DM)."""
        if name_or_id in self.channels:
            return self.channels[name_or_id]
        name = name_or_id.lstrip("#")
        for channel in self.channels.values():
            if channel.name == name and not channel.dm_user:
                return channel
        if name_or_id in self.users:
            dm_id = "D" + name_or_id[1:]
            dm = self.channels.setdefault(dm_id, Channel(dm_id, "directmessage", dm_user=name_or_id))
            return dm
        return None

    def add_usergroup(self, usergroup_id: str, members: list[str]) -> list[str]:
        self.usergroups[usergroup_id] = [self.user(member)["id"] for member in members]
        return self.usergroups[usergroup_id]

    # -- subscriptions

    def subscribe(self, callback: Callable[[SlackEvent], object]) -> Callable[[], None]:
        """Call `callback(event)` on the event loop for every visible change; returns a function to unsubscribe.

        The callback runs synchronously inside the request that caused the change: hand slow work to a queue.
        """
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def _emit(self, kind: str, channel: str, message: dict[str, Any], visible_to: str | None = None) -> None:
        event = SlackEvent(kind, channel, copy.deepcopy(message), visible_to)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken renderer must not break the Web API call that caused the event
                log.exception("Slack sandbox subscriber %r failed on %s", callback, kind)

    # -- messages

    def bot_message(self, text: str, blocks: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
        message = {"user": self.bot_user_id, "type": "message", "bot_id": self.bot_id, "app_id": self.app_id,
                   "text": text, "team": self.team["id"], "bot_profile": self.bot_profile}
        if blocks is not None:
            message["blocks"] = blocks
        message.update({k: v for k, v in extra.items() if v is not None})
        return message

    def user_message(self, user: str, text: str, **extra: Any) -> dict[str, Any]:
        message = {"type": "message", "text": text, "user": user, "team": self.team["id"],
                   "client_msg_id": secrets.token_hex(16)}
        if text:
            message["blocks"] = [rich_text(text, self.block_id())]
        message.update({k: v for k, v in extra.items() if v is not None})
        return message

    def block_id(self) -> str:
        """Slack gives every block without a block_id a short random one."""
        return secrets.token_urlsafe(3)

    def thread_root(self, channel: Channel, thread_ts: str) -> dict[str, Any] | None:
        return channel.messages.get(thread_ts)

    def post(self, channel: Channel, message: dict[str, Any], thread_ts: str | None = None) -> dict[str, Any]:
        """Store a message (a reply when thread_ts is given; the caller checked the root exists)."""
        message = dict(message, ts=self.ts.next())
        if thread_ts:
            root = channel.messages[thread_ts]
            message.update(thread_ts=thread_ts, parent_user_id=root.get("user", ""))
        channel.messages[message["ts"]] = message
        self._emit(POSTED, channel.id, message)
        return self.message(channel, message["ts"]) or message

    def update(self, channel: Channel, ts: str, changes: dict[str, Any], *, replace: bool = False) -> dict[str, Any]:
        """Edit a stored message; `replace` drops content the changes leave out (a response_url replace_original)."""
        message = channel.messages[ts]
        if replace:
            _drop_content(message)
        message.update(changes)
        message["edited"] = {"user": self.bot_id, "ts": f"{int(self.clock())}.000000"}
        self._emit(CHANGED, channel.id, message)
        return self.message(channel, ts) or message

    def delete(self, channel: Channel, ts: str) -> None:
        """Delete a message; a thread root with replies stays as a tombstone, as in Slack."""
        message = channel.messages[ts]
        has_replies = any(m.get("thread_ts") == ts and m["ts"] != ts for m in channel.messages.values())
        if has_replies:
            channel.messages[ts] = {"type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                                    "user": "USLACKBOT", "hidden": True, "ts": ts, "thread_ts": ts}
        else:
            del channel.messages[ts]
        self._emit(DELETED, channel.id, message)

    def is_live(self, message: dict[str, Any] | None) -> bool:
        return message is not None and message.get("subtype") != "tombstone"

    def message(self, channel: Channel, ts: str) -> dict[str, Any] | None:
        """A copy of the message, with Slack's thread summary on a root that has replies."""
        message = channel.messages.get(ts)
        if message is None:
            return None
        message = copy.deepcopy(message)
        replies = [m for m in channel.messages.values() if m.get("thread_ts") == ts and m["ts"] != ts]
        if replies:
            reply_users = list(dict.fromkeys(m.get("user", "") for m in replies))
            message.update(thread_ts=ts, reply_count=len(replies), reply_users_count=len(reply_users),
                           latest_reply=replies[-1]["ts"], reply_users=reply_users, is_locked=False, subscribed=False)
        return message

    def thread(self, channel: Channel, ts: str) -> list[dict[str, Any]]:
        """The thread containing ts (root first), or just the message when it has no thread; [] when unknown."""
        message = channel.messages.get(ts)
        if message is None:
            return []
        root_ts = message.get("thread_ts", ts)
        replies = [m["ts"] for m in channel.messages.values() if m.get("thread_ts") == root_ts and m["ts"] != root_ts]
        return [m for m in (self.message(channel, t) for t in [root_ts, *replies]) if m is not None]

    def top_level(self, channel: Channel) -> list[dict[str, Any]]:
        return [self.message(channel, ts) or m for ts, m in channel.messages.items()
                if m.get("thread_ts", ts) == ts and self.is_live(m)]

    # -- ephemeral messages

    def post_ephemeral(self, channel: Channel, user: str, message: dict[str, Any]) -> Ephemeral:
        ephemeral = Ephemeral(channel.id, user, dict(message, ts=self.ts.next()))
        self.ephemerals.append(ephemeral)
        self._emit(POSTED, channel.id, ephemeral.message, visible_to=user)
        return ephemeral

    def find_ephemeral(self, channel: str, ts: str) -> Ephemeral | None:
        return next((e for e in self.ephemerals if e.channel == channel and e.message["ts"] == ts), None)

    def replace_ephemeral(self, ephemeral: Ephemeral, changes: dict[str, Any]) -> None:
        _drop_content(ephemeral.message)
        ephemeral.message.update(changes)
        self._emit(CHANGED, ephemeral.channel, ephemeral.message, visible_to=ephemeral.user)

    def delete_ephemeral(self, ephemeral: Ephemeral) -> None:
        self.ephemerals.remove(ephemeral)
        self._emit(DELETED, ephemeral.channel, ephemeral.message, visible_to=ephemeral.user)

    # -- files

    def add_file(self, user: str, name: str, content: bytes, *, filetype: str | None = None,
                 title: str | None = None, uploaded: bool = True) -> StoredFile:
        stored = StoredFile(id=self.ids.next("F"), name=name, title=title or name,
                            filetype=filetype or filetype_for(name), user=self.user(user)["id"],
                            created=int(self.clock()), content=content, uploaded=uploaded)
        self.files[stored.id] = stored
        return stored

    def file_object(self, stored: StoredFile) -> dict[str, Any]:
        if not self.base_url:
            raise RuntimeError("start() the Slack sandbox before adding files: their URLs point at its address")
        return file_object(stored, self.team["id"], self.base_url)

    def share(self, files: list[StoredFile], channel: Channel, message: dict[str, Any],
              thread_ts: str | None) -> dict[str, Any]:
        """Post the message that carries files into a channel or thread, and remember the shares."""
        posted = self.post(channel, dict(message, files=[self.file_object(f) for f in files], upload=True,
                                         display_as_bot=False), thread_ts)
        for stored in files:
            stored.shares.append((channel.id, posted["ts"], thread_ts))
        return posted
