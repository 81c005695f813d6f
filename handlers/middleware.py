"""Cross-cutting concerns of every request, one middleware each: logging, skipping bots' messages, and
processing a redelivered event once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

Next = Callable[[], Awaitable[None]]
Middleware = Callable[..., Awaitable[BoltResponse | None]]
# Message events nobody acts on: edits, deletions and other apps' posts.
IGNORED_SUBTYPES = frozenset({"bot_message", "message_changed", "message_deleted"})


def _skip() -> BoltResponse:
    """Answer Slack 200 without running any listener."""
    return BoltResponse(status=200, body="")


def describe_request(body: dict[str, Any]) -> str:
    """A short, secret-free description of a request for the log: never the command's full text."""
    if "command" in body:
        words = str(body.get("text", "")).split()
        subcommand = words[0] if words else ""
        return f"command {body['command']} {subcommand} by {body.get('user_id')} in {body.get('channel_id')}"
    kind = body.get("type")
    if kind == "block_actions":
        action = (body.get("actions") or [{}])[0]
        return f"button {action.get('action_id')}={action.get('value')} by {(body.get('user') or {}).get('id')}"
    if kind == "view_submission":
        return f"modal {(body.get('view') or {}).get('callback_id')} by {(body.get('user') or {}).get('id')}"
    if kind == "event_callback":
        event = body.get("event") or {}
        return f"event {body.get('event_id')} {event.get('type')}/{event.get('subtype', '-')} in {event.get('channel')}"
    return f"request {kind}"


async def log_requests(body: dict[str, Any], next: Next) -> None:
    log.info("slack: %s", describe_request(body))
    await next()


async def ignore_bot_messages(body: dict[str, Any], next: Next) -> BoltResponse | None:
    """Skip messages posted by bots (this one's own cards and replies included) and edits or deletions.

    It replaces Bolt's built-in self-event filter, which skips only this bot's messages: a file another bot
    shares into a run's thread must not start an upload either.
    """
    event = body.get("event") or {}
    if event.get("type") == "message" and (event.get("bot_id") or event.get("subtype") in IGNORED_SUBTYPES):
        return _skip()
    await next()
    return None


def dedupe_events(first_delivery: Callable[[str], Awaitable[bool]]) -> Middleware:
    """Process each Events API event once.

    Slack redelivers an event (with X-Slack-Retry-Num and X-Slack-Retry-Reason) when the first delivery was not
    acked in 3 seconds or failed (https://docs.slack.dev/apis/events-api/#retries), and Socket Mode can send an
    envelope twice. Every event id is recorded when first seen, before it is handled, so a redelivery — by
    either path — is skipped while a retry of an event whose first delivery never arrived is still handled.
    """

    async def dedupe(body: dict[str, Any], request: AsyncBoltRequest, next: Next) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        retry = (request.headers.get("x-slack-retry-num") or [None])[0]
        if event_id and not await first_delivery(str(event_id)):
            reason = (request.headers.get("x-slack-retry-reason") or ["-"])[0]
            log.info("slack: event %s already handled; skipping redelivery (retry %s, %s)", event_id, retry, reason)
            return _skip()
        if retry is not None:
            log.info("slack: event %s arrived first as retry %s; handling it", event_id, retry)
        await next()
        return None

    return dedupe
