"""Slack messages as terminal text: what a person in the sandbox workspace would see, readable in a log.

Top-level messages start at the margin and thread replies are indented under "↳ thread of ...". Code blocks
(the bot's tables) keep their alignment, a section's fields become "Label: value" in two columns, buttons are
listed with the action name `:click` takes, ephemeral messages say who alone sees them, and edits are shown
again marked "(edited)" unless nothing visible changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.slack import SlackEvent

INDENT = "  "
THREAD_INDENT = "    "
FIELD_COLUMN_MAX = 44  # wider left cells put each field on its own line
_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
# The emoji the bot's messages use, as a terminal can show them (Slack draws them from these names).
EMOJI = {"white_check_mark": "✅", "x": "❌", "warning": "⚠️", "no_entry": "⛔", "no_entry_sign": "🚫",
         "stop_sign": "🛑", "moneybag": "💰", "money_with_wings": "💸", "abacus": "🧮", "arrow_forward": "▶️",
         "ballot_box_with_check": "☑️", "gear": "⚙️", "hourglass": "⌛", "information_source": "ℹ️",
         "wastebasket": "🗑️", "bar_chart": "📊", "tada": "🎉", "test_tube": "🧪", "scissors": "✂️"}
_FENCE = "```"


def _link(match: re.Match[str], user_name: Callable[[str], str], channel_name: Callable[[str], str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return f"@{user_name(target[1:])}"
    if target.startswith("#"):
        return f"#{label or channel_name(target[1:])}"
    if target.startswith("!subteam^"):
        return f"@{label or target.removeprefix('!subteam^')}"
    if target.startswith("!"):
        return f"@{target[1:]}"
    return f"{label} ({target})" if label and label != target else target


class Renderer:
    """Turns SlackEvents into text. `user_name` and `channel_name` map Slack IDs to names ("U0ALICE" -> "alice")."""

    def __init__(self, user_name: Callable[[str], str], channel_name: Callable[[str], str]) -> None:
        self.user_name = user_name
        self.channel_name = channel_name
        self._shown: dict[tuple[str, str, str | None], list[str]] = {}
        self._titles: dict[tuple[str, str], str] = {}

    # ----- text ---------------------------------------------------------------------------------------------

    def mrkdwn(self, text: str) -> list[str]:
        """Lines of mrkdwn as plain text: mentions and links resolved, code fences dropped (their content kept
        as is, so tables stay aligned), Slack's escapes undone."""
        lines: list[str] = []
        for n, part in enumerate(text.split(_FENCE)):
            if n % 2 == 0:  # outside code blocks; inside them Slack shows the text as it is, tables aligned
                part = _LINK.sub(lambda m: _link(m, self.user_name, self.channel_name), part)
                part = _EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), part)
            part = part.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            lines += part.strip("\n").split("\n") if part.strip() else []
        return lines

    def _fields(self, fields: list[dict[str, Any]]) -> list[str]:
        cells = []
        for field in fields:
            label, _, value = self.mrkdwn_text(field.get("text", "")).partition("\n")
            label = label.strip().strip("*")
            cells.append(f"{label}: {value.strip()}" if value else label)
        rows = [cells[i:i + 2] for i in range(0, len(cells), 2)]
        width = max((len(row[0]) for row in rows if len(row) == 2), default=0)
        if width > FIELD_COLUMN_MAX:
            return cells
        return [f"{row[0]:<{width}}   {row[1]}" if len(row) == 2 else row[0] for row in rows]

    def mrkdwn_text(self, text: str) -> str:
        return "\n".join(self.mrkdwn(text))

    def _block(self, block: dict[str, Any]) -> list[str]:
        kind = block.get("type")
        if kind == "header":
            return [block["text"]["text"]]
        if kind == "section":
            lines = self.mrkdwn(block["text"]["text"]) if block.get("text") else []
            return lines + self._fields(block.get("fields") or [])
        if kind == "context":
            texts = [self.mrkdwn_text(e.get("text", "")) for e in block.get("elements", []) if "text" in e]
            return [f"» {line}" for line in "  ".join(texts).split("\n")]
        if kind == "actions":
            buttons = [f"[{e['text']['text']} → :click {e['action_id']}]" for e in block.get("elements", [])
                       if e.get("type") == "button"]
            return ["buttons: " + " ".join(buttons)] if buttons else []
        if kind == "divider":
            return ["─" * 20]
        if kind == "image":
            return [f"[image: {block.get('alt_text', '')}]"]
        return []  # rich_text: the message's own text says the same

    def body(self, message: dict[str, Any]) -> list[str]:
        """The lines a person reads in one message."""
        blocks = [b for b in message.get("blocks") or [] if b.get("type") != "rich_text"]
        lines = [line for block in blocks for line in self._block(block)]
        if not lines and message.get("text"):
            lines = self.mrkdwn(message["text"])
        for shared in message.get("files") or []:
            title = shared.get("title") or ""
            lines.append(f"[file: {shared.get('name')}" + (f" — {title}]" if title and title != shared.get("name")
                                                            else "]"))
        return lines

    # ----- events -------------------------------------------------------------------------------------------

    def render(self, event: SlackEvent) -> str | None:
        """The text for one event, or None when an edit changed nothing a person would see."""
        message = event.message
        ts, thread_ts = message.get("ts", ""), message.get("thread_ts")
        reply = bool(thread_ts) and thread_ts != ts
        key = (event.channel, ts, event.visible_to)
        lines = self.body(message)
        if event.kind == "message_deleted":
            self._shown.pop(key, None)
            summary = f": {lines[0]}" if lines else ""
            return self._layout(event, reply, "deleted a message" + summary, [])
        if event.kind == "message_changed" and self._shown.get(key) == lines:
            return None
        self._shown[key] = lines
        if not reply and lines:
            self._titles[(event.channel, ts)] = lines[0]
        marks = " (edited)" if event.kind == "message_changed" else ""
        if event.visible_to:
            marks += f" (only @{self.user_name(event.visible_to)} sees this)"
        return self._layout(event, reply, marks, lines)

    def _layout(self, event: SlackEvent, reply: bool, marks: str, lines: list[str]) -> str:
        author = self.user_name(event.message.get("user", "")) or "someone"
        where = f"#{self.channel_name(event.channel)}"
        if reply:
            title = self._titles.get((event.channel, event.message["thread_ts"]), event.message["thread_ts"])
            where = f"↳ {where} thread of {title!r}"
        separator = " " if marks.startswith("deleted") else ""
        indent = THREAD_INDENT if reply else ""
        head = f"{indent}{where} · {author}{separator}{marks}"
        return "\n".join([head, *(f"{indent}{INDENT}{line}".rstrip() for line in lines)])
