"""How the driver hands Slack's requests to the app: over HTTP, or in-process through Bolt's async_dispatch.

Both carry the same signed bytes and headers, so an app that accepts one accepts the other.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from slack_bolt.request.async_request import AsyncBoltRequest

from sandbox.slack.socket_mode import SocketMode


@dataclass(frozen=True)
class AppReply:
    """The app's answer to one request: status, body (parsed when it is JSON) and the payload that was sent."""

    status: int
    body: Any
    payload: Any


class Dispatcher(Protocol):
    async def async_dispatch(self, req: AsyncBoltRequest) -> Any: ...


Deliver = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, str, str]]]  # -> (status, content type, text)


def _decoded(content_type: str, text: str) -> Any:
    if content_type.startswith("application/json") and text:
        return json.loads(text)
    return text


def over_http(app_url: str, path: str = "/slack/events") -> Deliver:
    """POST to the app's Request URL, as Slack does."""
    url = app_url.rstrip("/") + path

    async def deliver(body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
            return response.status, response.content_type, await response.text()

    return deliver


def in_process(app: Dispatcher) -> Deliver:
    """Dispatch straight into a Bolt AsyncApp, skipping the network but not the signature check."""

    async def deliver(body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
        response = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=headers))
        return response.status, response.first_headers().get("content-type", ""), response.body

    return deliver


def delivery_for(target: str | Dispatcher | SocketMode) -> Deliver:
    """An app base URL ("http://127.0.0.1:3000"), an object with `async_dispatch` (a Bolt AsyncApp), or the
    sandbox's SocketMode (the app connected to it over Socket Mode)."""
    if isinstance(target, SocketMode):
        return target.deliver
    if isinstance(target, str):
        return over_http(target)
    if hasattr(target, "async_dispatch"):
        return in_process(target)
    raise TypeError(f"deliver must be the app's base URL or a Bolt AsyncApp, got {type(target).__name__}")


async def send(deliver: Deliver, body: bytes, headers: dict[str, str], payload: Any) -> AppReply:
    status, content_type, text = await deliver(body, headers)
    return AppReply(status, _decoded(content_type, text), payload)
