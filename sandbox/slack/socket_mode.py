"""Socket Mode: the app connects out to Slack over a WebSocket and receives its requests there.

As Slack does it (https://docs.slack.dev/apis/events-api/using-socket-mode): the app calls
apps.connections.open with its app-level token (xapp-...; a bot token gets not_allowed_token_type) and gets
a one-time WebSocket URL; on connecting it is greeted with `hello`; each request then arrives as an envelope
`{envelope_id, type, payload, accepts_response_payload, retry_attempt, retry_reason}` (type slash_commands,
interactive or events_api; shape: socket_mode.slash_commands.python-sdk.json) and the app acknowledges it by
sending back `{envelope_id}`, with a `payload` when it answers (the ack body of an HTTP app).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

from sandbox.slack.calls import ApiError
from sandbox.slack.ids import opaque

ACK_TIMEOUT_SECONDS = 10.0


class SocketMode:
    def __init__(self, app_token: str, app_id: str) -> None:
        self.app_token = app_token
        self.app_id = app_id
        self._tickets: set[str] = set()
        self._connections: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.base_url = ""

    def open_connection(self, token: str | None) -> dict[str, Any]:
        """apps.connections.open: a WebSocket URL for one connection."""
        if token is None or not token.startswith("xapp-"):
            raise ApiError("not_allowed_token_type")
        if token != self.app_token:
            raise ApiError("invalid_auth")
        ticket = opaque(32)
        self._tickets.add(ticket)
        return {"url": f"{self.base_url.replace('http://', 'ws://')}/socket-mode/{ticket}"}

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self._connections)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.match_info["ticket"]
        if ticket not in self._tickets:
            return web.Response(status=404, text="unknown or used Socket Mode URL")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._connections.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self._connections),
                            "connection_info": {"app_id": self.app_id}, "debug_info": {"host": "sandbox"}})
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    ack = json.loads(message.data)
                    future = self._acks.pop(str(ack.get("envelope_id")), None)
                    if future is not None and not future.done():
                        future.set_result(ack)
        finally:
            self._connections.remove(ws)
        return ws

    async def close(self) -> None:
        for ws in list(self._connections):
            await ws.close()

    async def send(self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0,
                   retry_reason: str = "") -> dict[str, Any]:
        """Send one envelope to the newest connection and wait for the app's ack."""
        live = [ws for ws in self._connections if not ws.closed]
        if not live:
            raise ConnectionError("no app is connected over Socket Mode")
        envelope_id = opaque(32)
        future = self._acks[envelope_id] = asyncio.get_running_loop().create_future()
        await live[-1].send_json({"envelope_id": envelope_id, "type": kind, "payload": payload,
                                  "accepts_response_payload": kind != "events_api", "retry_attempt": retry_attempt,
                                  "retry_reason": retry_reason})
        return await asyncio.wait_for(future, ACK_TIMEOUT_SECONDS)

    async def deliver(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:
        """What the driver sends an HTTP app, sent as a Socket Mode envelope instead (signatures play no part)."""
        if headers.get("Content-Type") == "application/json":
            kind, payload = "events_api", json.loads(body)
        else:
            fields = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            kind, payload = ("interactive", json.loads(fields["payload"])) if "payload" in fields else (
                "slash_commands", fields)
        retry = int(headers.get("X-Slack-Retry-Num", 0))
        ack = await self.send(kind, payload, retry_attempt=retry, retry_reason=headers.get("X-Slack-Retry-Reason", ""))
        answer = ack.get("payload")
        return 200, "application/json" if answer else "text/plain", json.dumps(answer) if answer else ""
