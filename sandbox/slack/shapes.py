"""JSON shapes of Slack objects (users, bot profiles, files, messages) as Slack returns and sends them.

Field sets follow the captures in ../shared/slack/samples: users.info.bsstatus (user), chat.update.mercury
(bot message and bot_profile), files.completeUploadExternal.python-sdk-tutorial and the text-snippet file_share
events (file). Values are the sandbox's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

# filetype -> (mimetype, pretty_type). Text kinds are shown by Slack as snippets with a preview.
FILE_TYPES: dict[str, tuple[str, str]] = {
    "csv": ("text/csv", "CSV"),
    "text": ("text/plain", "Plain Text"),
    "json": ("application/json", "JSON"),
    "png": ("image/png", "PNG"),
    "binary": ("application/octet-stream", "Binary"),
}
TEXT_TYPES = {"csv", "text", "json"}
EXTENSION_TYPES = {"csv": "csv", "txt": "text", "jsonl": "text", "json": "json", "png": "png"}
PREVIEW_LINES = 5


def filetype_for(name: str) -> str:
    """Slack's filetype for a file name; unknown extensions are 'binary', as Slack labels them."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return EXTENSION_TYPES.get(extension, "binary")


def user_object(user_id: str, name: str, team_id: str, *, is_bot: bool = False, updated: int = 0) -> dict[str, Any]:
    return {
        "id": user_id,
        "team_id": team_id,
        "name": name,
        "deleted": False,
        "real_name": name,
        "tz": "Etc/UTC",
        "tz_label": "Coordinated Universal Time",
        "tz_offset": 0,
        "profile": {
            "real_name": name,
            "real_name_normalized": name,
            "display_name": name,
            "display_name_normalized": name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "team": team_id,
        },
        "is_admin": False,
        "is_owner": False,
        "is_bot": is_bot,
        "is_app_user": False,
        "updated": updated,
    }


def bot_profile(bot_id: str, app_id: str, name: str, team_id: str, updated: int) -> dict[str, Any]:
    return {"id": bot_id, "app_id": app_id, "name": name, "icons": {}, "deleted": False, "updated": updated,
            "team_id": team_id}


def rich_text(text: str, block_id: str) -> dict[str, Any]:
    """The block Slack clients attach to what a person types."""
    section = {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}
    return {"type": "rich_text", "block_id": block_id, "elements": [section]}


@dataclass
class StoredFile:
    """A file held by the sandbox: its bytes, its metadata and where it was shared."""

    id: str
    name: str
    title: str
    filetype: str
    user: str
    created: int
    content: bytes = b""
    uploaded: bool = False
    shares: list[tuple[str, str, str | None]] = field(default_factory=list)  # (channel, ts, thread_ts)

    def path(self, team_id: str, *, download: bool) -> str:
        middle = "/download" if download else ""
        return f"/files-pri/{team_id}-{self.id}{middle}/{quote(self.name)}"


def file_object(stored: StoredFile, team_id: str, base_url: str) -> dict[str, Any]:
    """The file as it appears in events and messages (no share details, like the captured events)."""
    mimetype, pretty_type = FILE_TYPES[stored.filetype]
    is_text = stored.filetype in TEXT_TYPES
    obj: dict[str, Any] = {
        "id": stored.id,
        "created": stored.created,
        "timestamp": stored.created,
        "name": stored.name,
        "title": stored.title,
        "mimetype": mimetype,
        "filetype": stored.filetype,
        "pretty_type": pretty_type,
        "user": stored.user,
        "user_team": team_id,
        "editable": is_text,
        "size": len(stored.content),
        "mode": "snippet" if is_text else "hosted",
        "is_external": False,
        "external_type": "",
        "is_public": True,
        "public_url_shared": False,
        "display_as_bot": False,
        "username": "",
        "url_private": base_url + stored.path(team_id, download=False),
        "url_private_download": base_url + stored.path(team_id, download=True),
        "permalink": f"{base_url}/files/{stored.user}/{stored.id}/{quote(stored.name)}",
        "has_rich_preview": False,
        "file_access": "visible",
    }
    if is_text:
        lines = stored.content.decode("utf-8", errors="replace").splitlines()
        obj.update(preview="\n".join(lines[:PREVIEW_LINES]), lines=len(lines),
                   lines_more=max(0, len(lines) - PREVIEW_LINES), preview_is_truncated=len(lines) > PREVIEW_LINES)
    return obj


def file_info_object(stored: StoredFile, team_id: str, base_url: str, channel_names: dict[str, str]) -> dict[str, Any]:
    """The file as files.info and files.completeUploadExternal return it: with `shares` and `channels`."""
    public: dict[str, list[dict[str, Any]]] = {}
    for channel, ts, thread_ts in stored.shares:
        share = {"reply_users": [], "reply_users_count": 0, "reply_count": 0, "ts": ts,
                 "channel_name": channel_names.get(channel, ""), "team_id": team_id, "share_user_id": stored.user}
        if thread_ts:
            share["thread_ts"] = thread_ts
        public.setdefault(channel, []).append(share)
    obj = file_object(stored, team_id, base_url)
    obj.update(shares={"public": public} if public else {}, channels=list(public), groups=[], ims=[],
               comments_count=0)
    return obj
