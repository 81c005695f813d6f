"""`response_url` endpoints: where an app answers a slash command or a button click after acking it.

Slack's rules (https://docs.slack.dev/interactivity/handling-user-interaction): a response_url takes up to 5
messages within 30 minutes. A message is ephemeral to the user unless `response_type` is "in_channel";
`replace_original` / `delete_original` change the message that held the clicked button. The app's immediate
reply to a slash command (the ack body) is shown the same way without using up the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack.calls import ApiError
from sandbox.slack.content import read_content
from sandbox.slack.ids import opaque
from sandbox.slack.methods import resolve_thread
from sandbox.slack.workspace import Channel, Ephemeral, Workspace

MAX_USES = 5
LIFETIME_SECONDS = 30 * 60


@dataclass
class ResponseTarget:
    """What a response_url answers: the user who acted, where, and the message they clicked on (if any)."""

    url: str
    channel: str
    user: str
    issued_at: float
    message_ts: str | None = None
    ephemeral: bool = False
    thread_ts: str | None = None
    uses: int = 0


class ResponseUrls:
    def __init__(self, ws: Workspace, clock: Callable[[], float]) -> None:
        self.ws = ws
        self.clock = clock
        self._targets: dict[str, ResponseTarget] = {}

    def issue(self, kind: str, *, channel: str, user: str, message_ts: str | None = None, ephemeral: bool = False,
              thread_ts: str | None = None) -> ResponseTarget:
        """A fresh response_url; kind is "commands" or "actions", as in Slack's hooks.slack.com paths."""
        path = f"/{kind}/{self.ws.team['id']}/{len(self._targets) + 1}/{opaque(24)}"
        target = ResponseTarget(self.ws.base_url + path, channel, user, self.clock(), message_ts, ephemeral, thread_ts)
        self._targets[path] = target
        return target

    def use(self, path: str, payload: Any) -> tuple[int, dict[str, Any]]:
        """An app's POST to a response_url: (HTTP status, JSON body)."""
        target = self._targets.get(path)
        if target is None or target.uses >= MAX_USES or self.clock() - target.issued_at > LIFETIME_SECONDS:
            return 404, {"ok": False, "error": "expired_url"}
        if not isinstance(payload, dict):
            return 400, {"ok": False, "error": "invalid_payload"}
        target.uses += 1
        try:
            self.show(target, payload)
        except ApiError as exc:
            return 400, exc.body()
        return 200, {"ok": True}

    def show(self, target: ResponseTarget, payload: dict[str, Any]) -> None:
        """Apply a response message to the workspace, or raise ApiError as Slack would refuse it."""
        channel = self.ws.channel(target.channel)
        if payload.get("delete_original"):
            self._delete_original(target, channel)
            return
        content = read_content(payload, new_block_id=self.ws.block_id)
        if payload.get("replace_original") and target.message_ts:
            self._replace_original(target, channel, content.fields())
            return
        thread_ts = payload.get("thread_ts") or target.thread_ts
        if payload.get("response_type") == "in_channel":
            thread_ts = resolve_thread(self.ws, channel, thread_ts)
            self.ws.post(channel, self.ws.bot_message(**content.fields()), thread_ts)
        else:
            self.ws.post_ephemeral(channel, target.user, self.ws.bot_message(**content.fields(), thread_ts=thread_ts))

    def _original(self, target: ResponseTarget, channel: Channel) -> Ephemeral | dict[str, Any] | None:
        if target.ephemeral:
            return self.ws.find_ephemeral(channel.id, target.message_ts or "")
        message = channel.messages.get(target.message_ts or "")
        return message if self.ws.is_live(message) else None

    def _delete_original(self, target: ResponseTarget, channel: Channel) -> None:
        original = self._original(target, channel)
        if original is None:
            raise ApiError("message_not_found")
        if target.ephemeral:
            self.ws.delete_ephemeral(original)
        else:
            self.ws.delete(channel, original["ts"])

    def _replace_original(self, target: ResponseTarget, channel: Channel, fields: dict[str, Any]) -> None:
        original = self._original(target, channel)
        if original is None:
            raise ApiError("message_not_found")
        if target.ephemeral:
            self.ws.replace_ephemeral(original, fields)
        else:
            self.ws.update(channel, original["ts"], fields, replace=True)
