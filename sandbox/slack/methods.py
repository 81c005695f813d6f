"""The Web API methods the bot uses, answered from the in-memory workspace with Slack's reply shapes and errors.

Reply shapes follow ../shared/slack/samples/responses: chat.postMessage returns the stored message, chat.update
the mercury capture's shape, chat.postEphemeral only `message_ts`, files.completeUploadExternal full file objects.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from sandbox.slack.calls import ApiCall, ApiError
from sandbox.slack.content import read_content, with_reply_warnings
from sandbox.slack.ids import opaque
from sandbox.slack.shapes import StoredFile, file_info_object
from sandbox.slack.workspace import Channel, Workspace

# Methods whose docs say `json_input_supported`; Slack reads other methods' arguments from the query or a form only.
JSON_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral", "files.completeUploadExternal", "views.open",
                "views.update"}
MAX_REPLIES_PAGE = 1000


def resolve_channel(ws: Workspace, value: Any) -> Channel:
    channel = ws.find_channel(str(value or ""))
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def resolve_thread(ws: Workspace, channel: Channel, thread_ts: str | None) -> str | None:
    """The thread to post into; a reply's ts is refused, as Slack's docs say to use the parent's."""
    if not thread_ts:
        return None
    root = ws.thread_root(channel, thread_ts)
    if root is None:
        raise ApiError("thread_not_found")
    if root.get("thread_ts", thread_ts) != thread_ts:
        raise ApiError("cannot_reply_to_message")
    return thread_ts


def _encode_cursor(ts: str) -> str:
    # Slack's cursors are opaque; the docs' example decodes to "next_ts:<ts without the dot>".
    return base64.b64encode(f"next_ts:{ts.replace('.', '')}".encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        digits = base64.b64decode(cursor, validate=True).decode().removeprefix("next_ts:")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError("invalid_cursor") from exc
    if not digits.isdigit() or len(digits) < 7:
        raise ApiError("invalid_cursor")
    return f"{digits[:-6]}.{digits[-6:]}"


def _int_arg(args: dict[str, Any], name: str, default: int) -> int:
    try:
        value = int(args.get(name, default))
    except (TypeError, ValueError) as exc:
        raise ApiError("invalid_arguments", [f"[ERROR] must be an integer [json-pointer:/{name}]"]) from exc
    return value


class WebApi:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.upload_tickets: dict[str, str] = {}  # ticket in the upload URL -> file id
        self.methods: dict[str, Callable[[dict[str, Any], ApiCall], dict[str, Any]]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "chat.postEphemeral": self.post_ephemeral,
            "conversations.replies": self.replies,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroup_users,
            "files.info": self.files_info,
            "files.getUploadURLExternal": self.upload_url,
            "files.completeUploadExternal": self.complete_upload,
            "views.open": self.views_open,
            "views.update": self.views_update,
        }

    def call(self, method: str, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        if method not in self.methods:
            raise ApiError("unknown_method")
        return {"ok": True, **self.methods[method](args, record)}

    def auth_test(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        ws = self.ws
        return {"url": f"{ws.base_url}/", "team": ws.team["name"], "user": ws.bot_name, "team_id": ws.team["id"],
                "user_id": ws.bot_user_id, "bot_id": ws.bot_id, "is_enterprise_install": False}

    def post_message(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        channel = resolve_channel(self.ws, args.get("channel"))
        thread_ts = resolve_thread(self.ws, channel, args.get("thread_ts"))
        content = read_content(args, new_block_id=self.ws.block_id)
        record.warnings += content.warnings
        message = self.ws.post(channel, self.ws.bot_message(**content.fields()), thread_ts)
        return with_reply_warnings({"channel": channel.id, "ts": message["ts"], "message": message}, content.warnings)

    def update(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        channel = resolve_channel(self.ws, args.get("channel"))
        ts = str(args.get("ts") or "")
        stored = channel.messages.get(ts)
        if not self.ws.is_live(stored):
            raise ApiError("message_not_found")
        if stored["user"] != self.ws.bot_user_id:
            raise ApiError("cant_update_message")
        # chat.update documents msg_too_long where chat.postMessage truncates.
        content = read_content(args, new_block_id=self.ws.block_id, too_long="msg_too_long", previous=stored)
        record.warnings += content.warnings
        message = self.ws.update(channel, ts, content.fields())
        reply_message = {k: v for k, v in message.items() if k != "ts"}
        return {"channel": channel.id, "ts": ts, "text": message["text"], "message": reply_message}

    def post_ephemeral(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        channel = resolve_channel(self.ws, args.get("channel"))
        user = str(args.get("user") or "")
        if user not in self.ws.users:
            raise ApiError("user_not_found")
        content = read_content(args, new_block_id=self.ws.block_id)
        record.warnings += content.warnings
        thread_ts = args.get("thread_ts") or None
        ephemeral = self.ws.post_ephemeral(channel, user, self.ws.bot_message(**content.fields(), thread_ts=thread_ts))
        return with_reply_warnings({"message_ts": ephemeral.message["ts"]}, content.warnings)

    def replies(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        channel = resolve_channel(self.ws, args.get("channel"))
        thread = self.ws.thread(channel, str(args.get("ts") or ""))
        if not thread:
            raise ApiError("thread_not_found")
        limit = min(max(_int_arg(args, "limit", MAX_REPLIES_PAGE), 1), MAX_REPLIES_PAGE)
        start = 0
        if args.get("cursor"):
            after = _decode_cursor(str(args["cursor"]))
            start = next((i for i, m in enumerate(thread) if m["ts"] >= after), len(thread))
        page = thread[start:start + limit]
        reply: dict[str, Any] = {"messages": page, "has_more": start + limit < len(thread)}
        if reply["has_more"]:
            reply["response_metadata"] = {"next_cursor": _encode_cursor(thread[start + limit]["ts"])}
        return reply

    def users_info(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        user = self.ws.users.get(str(args.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user}

    def usergroup_users(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        members = self.ws.usergroups.get(str(args.get("usergroup") or ""))
        if members is None:
            raise ApiError("no_such_subteam")
        return {"users": list(members)}

    def _file(self, file_id: str) -> StoredFile:
        stored = self.ws.files.get(file_id)
        if stored is None or not stored.uploaded:
            raise ApiError("file_not_found")
        return stored

    def _file_info(self, stored: StoredFile) -> dict[str, Any]:
        names = {c.id: c.name for c in self.ws.channels.values()}
        return file_info_object(stored, self.ws.team["id"], self.ws.base_url, names)

    def files_info(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        stored = self._file(str(args.get("file") or ""))
        return {"file": self._file_info(stored), "comments": [], "response_metadata": {"next_cursor": ""}}

    def upload_url(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        filename = args.get("filename")
        if not filename:
            raise ApiError("invalid_arguments", ["[ERROR] missing required field: filename"])
        if _int_arg(args, "length", 0) < 1:
            raise ApiError("missing_argument")  # the docs: "Typically only occurs when the `length` provided is 0"
        stored = self.ws.add_file(self.ws.bot_user_id, str(filename), b"", uploaded=False)
        ticket = opaque(40)
        self.upload_tickets[ticket] = stored.id
        return {"upload_url": f"{self.ws.base_url}/upload/v1/{ticket}", "file_id": stored.id}

    def receive_upload(self, ticket: str, content: bytes) -> bool:
        """Bytes POSTed to an upload URL; False when the ticket is unknown."""
        file_id = self.upload_tickets.pop(ticket, None)
        if file_id is None:
            return False
        stored = self.ws.files[file_id]
        stored.content, stored.uploaded = content, True
        return True

    def complete_upload(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        items = args.get("files")
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("id") for i in items):
            problem = "[ERROR] must be an array of objects with an id [json-pointer:/files]"
            raise ApiError("invalid_arguments", [problem])
        files = [self._file(str(item["id"])) for item in items]
        channel_ids = [c for c in str(args.get("channels") or args.get("channel_id") or "").split(",") if c]
        channels = [resolve_channel(self.ws, c) for c in channel_ids]
        thread_ts = resolve_thread(self.ws, channels[0], args.get("thread_ts")) if channels else None
        for stored, item in zip(files, items, strict=True):
            stored.title = item.get("title") or stored.title
        for channel in channels:
            message = self.ws.bot_message(str(args.get("initial_comment") or ""))
            self.ws.share(files, channel, message, thread_ts)
        return {"files": [self._file_info(stored) for stored in files]}

    def views_open(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        return {"view": self.ws.views.open_view(str(args.get("trigger_id") or ""), args.get("view"))}

    def views_update(self, args: dict[str, Any], record: ApiCall) -> dict[str, Any]:
        return {"view": self.ws.views.update_view(args.get("view_id"), args.get("external_id"), args.get("hash"),
                                                  args.get("view"))}
