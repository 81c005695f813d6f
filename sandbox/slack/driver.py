"""The user's side of the sandbox: people typing slash commands, clicking buttons and sharing files.

Each action changes the sandbox workspace the way Slack would (the shared file appears in the thread, the
clicked message is looked up with its real blocks) and then sends the app the signed request Slack would send.
"""

from __future__ import annotations

import asyncio
import json
from os import PathLike
from pathlib import Path
from typing import Any

from sandbox.slack import payloads
from sandbox.slack.delivery import AppReply, Dispatcher, delivery_for, send
from sandbox.slack.server import SlackSandbox
from sandbox.slack.signing import signed_headers
from sandbox.slack.socket_mode import SocketMode
from sandbox.slack.workspace import Channel


class SlackDriver:
    def __init__(self, slack: SlackSandbox, *, deliver: str | Dispatcher | SocketMode,
                 signing_secret: str | None = None) -> None:
        """deliver: the app's base URL (requests go to {url}/slack/events), a Bolt AsyncApp (async_dispatch), or
        `slack.socket_mode` for an app connected over Socket Mode."""
        self.slack = slack
        self.ws = slack.workspace
        self.signing_secret = signing_secret if signing_secret is not None else slack.signing_secret
        self._deliver = delivery_for(deliver)

    def sign(self, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
        """Slack's signature headers for a body; an old timestamp makes a stale request the app must refuse."""
        return signed_headers(self.signing_secret, body.encode() if isinstance(body, str) else body, timestamp)

    async def send(self, body: bytes, content_type: str, *, timestamp: int | None = None,
                   headers: dict[str, str] | None = None, payload: Any = None) -> AppReply:
        """Sign and deliver raw bytes, as Slack would; the building block of every other action."""
        all_headers = {"Content-Type": content_type, **self.sign(body, timestamp), **(headers or {})}
        return await send(self._deliver, body, all_headers, payload)

    async def slash_command(self, *, user: str, channel: str, text: str = "", command: str = "/distill") -> AppReply:
        """Type `{command} {text}`; a non-empty ack body is shown to the user as Slack shows it."""
        person, place = self.ws.user(user), self.ws.channel(channel)
        target = self.slack.responses.issue("commands", channel=place.id, user=person["id"])
        fields = payloads.slash_command_fields(self.ws, user=person, channel=place, command=command, text=text,
                                               response_url=target.url)
        reply = await self.send(payloads.form_body(fields), payloads.FORM, payload=fields)
        if reply.status == 200 and reply.body:
            self.slack.responses.show(target, reply.body if isinstance(reply.body, dict) else {"text": reply.body})
        return reply

    async def click(self, *, user: str, channel: str, message_ts: str, action_id: str,
                    value: str | None = None) -> AppReply:
        """Press a button in a message (or in an ephemeral message shown to this user)."""
        person, place = self.ws.user(user), self.ws.channel(channel)
        message, ephemeral = self._visible_message(person["id"], place, message_ts)
        block_id, element = payloads.find_button(message, action_id, value)
        target = self.slack.responses.issue("actions", channel=place.id, user=person["id"], message_ts=message_ts,
                                            ephemeral=ephemeral, thread_ts=message.get("thread_ts"))
        payload = payloads.block_actions(self.ws, user=person, channel=place, message=message, ephemeral=ephemeral,
                                         block_id=block_id, element=element, response_url=target.url)
        return await self.send(payloads.interactive_body(payload), payloads.FORM, payload=payload)

    async def submit_view(self, *, user: str, view_id: str, values: dict[str, str]) -> AppReply:
        """Fill a modal's inputs (by action_id) and press its submit button; the app's ack closes the modal, keeps
        it open with `errors`, or replaces it."""
        person = self.ws.user(user)
        if self.ws.views.owner.get(view_id) != person["id"]:
            raise LookupError(f"no modal {view_id} open for {person['name']}")
        payload = payloads.view_submission(self.ws, user=person, view=self.ws.views.filled(view_id, values))
        reply = await self.send(payloads.interactive_body(payload), payloads.FORM, payload=payload)
        if reply.status == 200:
            self.ws.views.answer(view_id, reply.body)
        return reply

    async def say(self, *, user: str, channel: str, text: str, thread_ts: str | None = None) -> AppReply:
        """Post a plain message; the app receives it as a `message` event."""
        person, place = self.ws.user(user), self.ws.channel(channel)
        self._check_thread(place, thread_ts)
        posted = self.ws.post(place, self.ws.user_message(person["id"], text), thread_ts)
        return await self.send_event(payloads.event_callback(self.ws, payloads.message_event(posted, place)))

    async def share_file(self, content: bytes | PathLike[str], *, user: str, channel: str,
                         filename: str | None = None, thread_ts: str | None = None, text: str = "") -> AppReply:
        """Upload a file into a channel or thread; the app receives the `message` event with subtype file_share."""
        if not isinstance(content, bytes):
            filename = filename or Path(content).name
            content = await asyncio.to_thread(Path(content).read_bytes)
        if not filename:
            raise ValueError("share_file needs a filename when given bytes, e.g. filename='tickets.csv'")
        person, place = self.ws.user(user), self.ws.channel(channel)
        self._check_thread(place, thread_ts)
        stored = self.ws.add_file(person["id"], filename, content)
        message = self.ws.user_message(person["id"], text, subtype="file_share")
        posted = self.ws.share([stored], place, message, thread_ts)
        return await self.send_event(payloads.event_callback(self.ws, payloads.message_event(posted, place)))

    async def send_event(self, payload: dict[str, Any], *, retry_num: int | None = None,
                         retry_reason: str | None = None) -> AppReply:
        """Deliver an Events API payload; with retry_num it is Slack's redelivery of the same event."""
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason or "http_timeout"}
        return await self.send(json.dumps(payload).encode(), payloads.JSON, headers=headers, payload=payload)

    def _check_thread(self, place: Channel, thread_ts: str | None) -> None:
        if thread_ts and not self.ws.thread_root(place, thread_ts):
            raise LookupError(f"no thread {thread_ts} in #{place.name} to reply in")

    def _visible_message(self, user_id: str, place: Channel, ts: str) -> tuple[dict[str, Any], bool]:
        message = self.ws.message(place, ts)
        if self.ws.is_live(message):
            return message, False  # type: ignore[return-value]
        ephemeral = self.ws.find_ephemeral(place.id, ts)
        if ephemeral is None:
            raise LookupError(f"no message {ts} in #{place.name}")
        if ephemeral.user != user_id:
            raise LookupError(f"message {ts} is ephemeral to {ephemeral.user}; {user_id} cannot see it to click it")
        return ephemeral.message, True
