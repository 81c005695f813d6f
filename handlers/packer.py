"""The one packer every message and view passes through on its way to Slack: Block Kit's limits kept, and what
was left out said.

Slack's limits (https://docs.slack.dev/reference/block-kit/blocks, /reference/block-kit/block-elements,
/surfaces/modals): at most 50 blocks in a message and 100 in a modal; a section's text 3,000 characters and at
most 10 fields of 2,000; a header 150; a context block 10 elements of 3,000; a button's text 75; a modal's title
and its buttons 24; a plain_text_input's max_length at most 3,000, with its initial_value within it. A message's
fallback text past 40,000 characters is cut by Slack (chat.postMessage). A block over a limit makes Slack refuse
the whole message (`invalid_blocks`), so nothing user-sized may reach it unpacked.

Lines are packed into as few sections as the limit allows and, past 50 blocks, into several messages, numbered
"(1/2)". A text still too long is cut in the middle, never at its end: a message starts with what it is about
and ends with why and what to do, so both stay and the cut says how many characters it left out. A cut never
splits an escaped character (`&amp;`) or a `<...>` mention or link.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from handlers import messages
from handlers.mrkdwn import escape, masked

MAX_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_VIEW_TITLE = 24  # a modal's title, submit and close texts
MAX_INPUT = 3000  # plain_text_input: the most max_length may be
MAX_FALLBACK_TEXT = 40_000
FENCE = "```"
# Spans a cut must not split: an escaped character, and a mention or link in angle brackets.
_UNSPLITTABLE = re.compile(r"&(?:amp|lt|gt);|<[^<>\n]*>")


@dataclass(frozen=True)
class Message:
    text: str  # fallback: notifications, and clients that cannot draw blocks
    blocks: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


# ----- text ----------------------------------------------------------------------------------------------

def trim(text: str, limit: int) -> str:
    """`text` within `limit` characters: cut in the middle, the cut saying how much it left out."""
    if len(text) <= limit:
        return text
    room = limit - len(messages.left_out(len(text)))
    if room < 2:
        return text[:limit]
    head_end, tail_start = _clear_of_spans(text, room - room // 2, len(text) - room // 2)
    return text[:head_end] + messages.left_out(tail_start - head_end) + text[tail_start:]


def _clear_of_spans(text: str, head_end: int, tail_start: int) -> tuple[int, int]:
    """Cut points moved outward from the kept text so that neither falls inside an unsplittable span."""
    for span in _UNSPLITTABLE.finditer(text, max(0, head_end - MAX_SECTION_TEXT), head_end + MAX_SECTION_TEXT):
        if span.start() < head_end < span.end():
            head_end = span.start()
    for span in _UNSPLITTABLE.finditer(text, max(0, tail_start - MAX_SECTION_TEXT), tail_start + MAX_SECTION_TEXT):
        if span.start() < tail_start < span.end():
            tail_start = span.end()
    return head_end, tail_start


def pack(lines: Sequence[str], *, header: Sequence[str] = (), fence: str = "",
         limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Join lines into texts of at most `limit` characters (fences and header included), in order; a line too
    long for a text on its own is cut in its middle."""
    room = limit - 2 * len(fence)
    header_size = sum(len(h) + 1 for h in header)
    chunks: list[list[str]] = []
    current: list[str] = []
    size = header_size
    for line in lines or [""]:
        line = trim(line, room - header_size - 1)
        if current and size + len(line) + 1 > room:
            chunks.append(current)
            current, size = [], header_size
        current.append(line)
        size += len(line) + 1
    chunks.append(current)
    return [fence + "\n".join([*header, *chunk]) + fence for chunk in chunks]


def code_chunks(lines: Sequence[str], *, header_lines: int = 0, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Escaped code blocks of at most `limit` characters holding every line once, in order; the first
    `header_lines` lines are repeated at the top of every block, so each part of a table reads on its own."""
    escaped = [escape(line).replace(FENCE, "ˋˋˋ") for line in lines]  # a fence inside would end the block early
    return pack(escaped[header_lines:], header=escaped[:header_lines], fence=FENCE, limit=limit)


# ----- messages --------------------------------------------------------------------------------------------

def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def sections(lines: Sequence[str]) -> list[dict[str, Any]]:
    """mrkdwn lines packed into as few sections as the 3000-character limit allows."""
    return [section(text) for text in pack([line for line in lines if line])] if any(lines) else []


def code_sections(lines: Sequence[str], header_lines: int = 0) -> list[dict[str, Any]]:
    return [section(chunk) for chunk in code_chunks(lines, header_lines=header_lines)]


def split(blocks: Sequence[dict[str, Any]], text: str | None = None) -> list[Message]:
    """Messages of at most 50 blocks; the fallback text is the first section's unless given."""
    fallback = text or next((b["text"]["text"] for b in blocks if b.get("type") == "section"), "distill")
    fallback = trim(fallback, MAX_SECTION_TEXT)
    parts = [list(blocks[i:i + MAX_BLOCKS]) for i in range(0, len(blocks), MAX_BLOCKS)] or [[section(fallback)]]
    if len(parts) == 1:
        return [Message(fallback, parts[0])]
    return [Message(messages.continued(fallback, n, len(parts)), part) for n, part in enumerate(parts, 1)]


def ephemeral(lines: Sequence[str]) -> list[Message]:
    """A reply to one person: mrkdwn lines, split within the limits."""
    return split(sections(lines))


# ----- the last check before Slack ---------------------------------------------------------------------------

def _text_object(obj: dict[str, Any], limit: int) -> dict[str, Any]:
    return {**obj, "text": trim(str(obj.get("text", "")), limit)}


def _element(element: dict[str, Any]) -> dict[str, Any]:
    if element.get("type") == "button":
        return {**element, "text": _text_object(element["text"], MAX_BUTTON_TEXT)}
    if element.get("type") in ("mrkdwn", "plain_text"):
        return _text_object(element, MAX_SECTION_TEXT)
    return element


def _block(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "section":
        block = {**block}
        if "text" in block:
            block["text"] = _text_object(block["text"], MAX_SECTION_TEXT)
        if "fields" in block:
            fields = block["fields"]
            if len(fields) > MAX_FIELDS:  # the fields past the last one share it
                rest = "\n".join(str(f.get("text", "")) for f in fields[MAX_FIELDS - 1:])
                fields = [*fields[:MAX_FIELDS - 1], {**fields[MAX_FIELDS - 1], "text": rest}]
            block["fields"] = [_text_object(f, MAX_FIELD_TEXT) for f in fields]
        return block
    if kind == "header":
        return {**block, "text": _text_object(block["text"], MAX_HEADER)}
    if kind == "context":
        return {**block, "elements": [_element(e) for e in block["elements"][:MAX_CONTEXT_ELEMENTS]]}
    if kind == "actions":
        return {**block, "elements": [_element(e) for e in block["elements"]]}
    return block


def fit_blocks(blocks: Sequence[dict[str, Any]], most: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """Every block within its limits; past `most` blocks the last one kept says how many were left out."""
    fitted = [_block(block) for block in blocks]
    if len(fitted) > most:
        fitted = [*fitted[:most - 1], section(messages.blocks_left_out(len(fitted) - most + 1))]
    return fitted


def fit(message: Message) -> Message:
    return Message(trim(message.text, MAX_FALLBACK_TEXT), fit_blocks(message.blocks))


def fit_view(view: dict[str, Any]) -> dict[str, Any]:
    """A modal within its limits. An input's initial value longer than the field may hold is not cut (saving
    would then store the cut text): it is left out of the field, and a note under the field says so."""
    view = copy.deepcopy(view)
    for key in ("title", "submit", "close"):
        if key in view:
            view[key] = _text_object(view[key], MAX_VIEW_TITLE)
    blocks: list[dict[str, Any]] = []
    for block in view.get("blocks", []):
        blocks.append(block)
        element = block.get("element") if block.get("type") == "input" else None
        if element is None or element.get("type") != "plain_text_input":
            continue
        element["max_length"] = min(int(element.get("max_length", MAX_INPUT)), MAX_INPUT)
        value = element.get("initial_value")
        if value is not None and len(value) > element["max_length"]:
            del element["initial_value"]
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": messages.initial_value_left_out(len(value), element["max_length"])}]})
    view["blocks"] = fit_blocks(blocks, MAX_MODAL_BLOCKS)
    return view


def outgoing(message: Message, secrets: Iterable[str]) -> dict[str, Any]:
    """The payload of a message as Slack may take it: credentials masked, then packed to its limits (masked first,
    so that a cut cannot leave part of a secret where the mask would no longer recognise it)."""
    return fit(Message(**masked(message.payload(), secrets))).payload()


def outgoing_view(view: dict[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    return fit_view(masked(view, secrets))
