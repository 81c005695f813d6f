"""The sandbox Slack server: Slack's Web API, file hosting and response_url endpoints on 127.0.0.1.

Point a real `AsyncWebClient(token=..., base_url=await slack.start())` at it. Like Slack it takes the token as
a bearer header or a `token` argument, form or JSON bodies (JSON only for methods that accept it), answers
errors with HTTP 200 and `{"ok": false, "error": ...}`, and 429 with Retry-After when a limit is injected.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.serving import serve
from sandbox.slack.calls import ApiCall, ApiError, RateLimits
from sandbox.slack.ids import opaque
from sandbox.slack.methods import JSON_METHODS, WebApi
from sandbox.slack.responses import ResponseUrls
from sandbox.slack.scopes import BOT_SCOPES, FILES_READ, METHOD_SCOPES, missing_scope
from sandbox.slack.shapes import FILE_TYPES
from sandbox.slack.socket_mode import SocketMode
from sandbox.slack.workspace import Channel, Ephemeral, SlackEvent, Workspace

JSON_ARGUMENTS = ("blocks", "attachments", "files", "metadata", "view")
# What files.slack.com serves to a request without the bot token: a sign-in page with status 200, not an error.
LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in | Slack</title></head>
<body><h1>Sign in to your workspace</h1><form action="/signin" method="post"><input name="email"></form></body>
</html>
"""


def _decode_json_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """Form fields such as `blocks` carry JSON text; decode them, leaving invalid JSON as text for the method."""
    for name in JSON_ARGUMENTS:
        if isinstance(args.get(name), str):
            try:
                args[name] = json.loads(args[name])
            except ValueError:
                pass
    return args


class SlackSandbox:
    def __init__(self, *, bot_token: str = "xoxb-sandbox-token", signing_secret: str = "sandbox-signing-secret",
                 team_id: str = "T0SANDBOX", team_name: str = "Sandbox", bot_name: str = "distill",
                 app_token: str = "xapp-1-sandbox-token", clock: Callable[[], float] = time.time) -> None:
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.clock = clock
        self.workspace = Workspace(team_id=team_id, team_name=team_name, bot_name=bot_name, clock=clock)
        self.api = WebApi(self.workspace)
        self.socket_mode = SocketMode(app_token, self.workspace.app_id)
        self.responses = ResponseUrls(self.workspace, clock)
        self.calls: list[ApiCall] = []
        self.downloads: list[str] = []  # path of every file download with the bot token, served or not
        self.scopes: set[str] = set(BOT_SCOPES)
        self._ratelimits = RateLimits()
        self._runner: web.AppRunner | None = None

    # -- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); returns the Web API base URL, ending in "/api/"."""
        app = web.Application(client_max_size=1024**3)
        app.add_routes([
            web.route("*", "/api/{method}", self._api),
            web.post("/upload/v1/{ticket}", self._upload),
            web.get("/files-pri/{key}/{name}", self._download),
            web.get("/files-pri/{key}/download/{name}", self._download),
            web.post(r"/{kind:commands|actions}/{team}/{n}/{secret}", self._response_url),
            web.get("/socket-mode/{ticket}", self.socket_mode.handle),
        ])
        self._runner, root = await serve(app, host, port)
        self.workspace.base_url = self.socket_mode.base_url = root
        return self.api_url

    async def stop(self) -> None:
        await self.socket_mode.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return self.workspace.base_url

    @property
    def api_url(self) -> str:
        return f"{self.workspace.base_url}/api/"

    # -- what tests and the shell look at

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def subscribe(self, callback: Callable[[SlackEvent], object]) -> Callable[[], None]:
        """Call `callback(event)` for every message posted, changed or deleted, ephemeral ones included."""
        return self.workspace.subscribe(callback)

    def channel(self, name_or_id: str) -> Channel:
        return self.workspace.channel(name_or_id)

    def messages(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        """Top-level messages of a channel, or a whole thread (root first) when thread_ts is given."""
        found = self.workspace.find_channel(channel)
        if found is None:
            return []
        return self.workspace.thread(found, thread_ts) if thread_ts else self.workspace.top_level(found)

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        return self.messages(channel, ts)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        found = self.workspace.find_channel(channel)
        return self.workspace.message(found, ts) if found else None

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages, each seen only by its `user`."""
        user_id = self.workspace.user(user)["id"] if user else None
        return [e for e in self.workspace.ephemerals
                if (user_id is None or e.user == user_id) and (channel is None or e.channel == channel)]

    def views(self, user: str) -> list[dict[str, Any]]:
        """The modals open for this user, as views.open stored them."""
        return self.workspace.views.of_user(self.workspace.user(user)["id"])

    # -- setting the scene

    def user(self, name_or_id: str) -> dict[str, Any]:
        """The user with this ID or name, created on first use ("alice" -> U0ALICE)."""
        return self.workspace.user(name_or_id)

    def add_usergroup(self, usergroup_id: str, members: list[str]) -> list[str]:
        """Define a user group (e.g. "S0APPROVERS") from user IDs or names; returns the member IDs."""
        return self.workspace.add_usergroup(usergroup_id, members)

    def add_file(self, user: str, name: str, content: bytes, filetype: str | None = None) -> dict[str, Any]:
        """A file uploaded by a user but not shared anywhere; returns its file object with url_private(_download)."""
        return self.workspace.file_object(self.workspace.add_file(user, name, content, filetype=filetype))

    def inject_ratelimit(self, method: str, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next `count` calls of `method` with 429 and `Retry-After: retry_after`."""
        self._ratelimits.inject(method, count, retry_after)

    def revoke_scope(self, scope: str) -> None:
        """Take a scope away from the bot token: its methods answer missing_scope, downloads a sign-in page."""
        self.scopes.discard(scope)

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message as its author would; a thread root with replies leaves a tombstone."""
        found = self.workspace.find_channel(channel)
        if found is None or ts not in found.messages:
            raise KeyError(f"no message {ts} in channel {channel}")
        self.workspace.delete(found, ts)

    # -- HTTP handlers

    async def _arguments(self, request: web.Request, method: str) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            if method in JSON_METHODS:
                body = await request.json()
                args.update(body if isinstance(body, dict) else {})
        elif request.can_read_body:
            args.update((k, v) for k, v in (await request.post()).items() if isinstance(v, str))
        return _decode_json_arguments(args)

    def _token(self, request: web.Request, args: dict[str, Any]) -> str | None:
        header = request.headers.get("Authorization", "")
        token = args.pop("token", None)
        return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else token

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args = await self._arguments(request, method)
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"})
        token = self._token(request, args)
        call = ApiCall(method, args, self.clock())
        self.calls.append(call)
        headers = {"x-slack-req-id": opaque(16)}
        if method == "apps.connections.open":  # the one method that takes the app-level token
            try:
                body = {"ok": True, **self.socket_mode.open_connection(token)}
            except ApiError as exc:
                body = exc.body()
        elif token is None:
            body = ApiError("not_authed").body()
        elif token != self.bot_token:
            body = ApiError("invalid_auth").body()
        elif (needed := METHOD_SCOPES.get(method)) and needed not in self.scopes:
            body = missing_scope(needed, self.scopes)
        elif (retry_after := self._ratelimits.take(method)) is not None:
            call.status, call.error = 429, "ratelimited"
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={**headers, "Retry-After": str(retry_after)})
        else:
            try:
                body = self.api.call(method, args, call)
            except ApiError as exc:
                body = exc.body()
        call.error = None if body["ok"] else body["error"]
        return web.json_response(body, headers=headers)

    async def _upload(self, request: web.Request) -> web.Response:
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            part = await reader.next()
            content = await part.read() if part is not None else b""  # type: ignore[union-attr]
        else:
            content = await request.read()
        if not self.api.receive_upload(request.match_info["ticket"], bytes(content)):
            return web.Response(status=404, text="upload ticket not found or already used")
        return web.Response(text=f"OK - {len(content)}")

    async def _download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        self.downloads.append(request.path)
        if FILES_READ not in self.scopes:
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        team_id, _, file_id = request.match_info["key"].partition("-")
        stored = self.workspace.files.get(file_id)
        if team_id != self.workspace.team["id"] or stored is None or stored.name != request.match_info["name"]:
            return web.Response(status=404, text="file not found")
        return web.Response(body=stored.content, content_type=FILE_TYPES[stored.filetype][0])

    async def _response_url(self, request: web.Request) -> web.Response:
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        status, body = self.responses.use(request.path, payload)
        return web.json_response(body, status=status)
