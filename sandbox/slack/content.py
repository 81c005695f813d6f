"""What a message says (text, blocks, attachments), read from call arguments and checked like Slack does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack.calls import ApiError
from sandbox.slack.limits import MAX_ATTACHMENTS, MAX_TEXT, block_problems

# Slack's reply carries no warning when blocks come without `text`: its SDKs warn on the client side instead
# (slackapi/python-slack-sdk#891). The sandbox records this name on the call so tests can insist on fallback text.
MISSING_TEXT = "missing_text_in_message"
# Documented reply warning of chat.postMessage: text over 40,000 characters is cut, not refused.
TRUNCATED = "message_truncated"


@dataclass
class Content:
    text: str
    blocks: list[dict[str, Any]] | None
    attachments: list[dict[str, Any]] | None
    warnings: list[str]

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"text": self.text}
        if self.blocks is not None:
            fields["blocks"] = self.blocks
        if self.attachments is not None:
            fields["attachments"] = self.attachments
        return fields


def _json_list(args: dict[str, Any], name: str, error: str) -> list[dict[str, Any]] | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, list):  # a form field that was not valid JSON stays a string
        raise ApiError(error, [f"[ERROR] must be a JSON array [json-pointer:/{name}]"])
    return value


def read_content(args: dict[str, Any], *, new_block_id: Callable[[], str], too_long: str | None = None,
                 previous: dict[str, Any] | None = None) -> Content:
    """The message content of a call, or ApiError as Slack would answer.

    `previous` is the stored message for chat.update: blocks and attachments the call leaves out are kept.
    Text over 40,000 characters is truncated with a warning, or refused with `too_long` when given.
    """
    previous = previous or {}
    blocks = _json_list(args, "blocks", "invalid_blocks_format")
    attachments = _json_list(args, "attachments", "invalid_attachments")
    if "blocks" not in args:
        blocks = previous.get("blocks")
    if "attachments" not in args:
        attachments = previous.get("attachments")
    text = str(args["text"]) if args.get("text") is not None else previous.get("text", "")
    warnings = []
    if blocks is not None:
        problems = block_problems(blocks)
        if problems:
            raise ApiError("invalid_blocks", problems)
        blocks = [dict(block, block_id=block.get("block_id") or new_block_id()) for block in blocks]
    if attachments is not None and len(attachments) > MAX_ATTACHMENTS:
        raise ApiError("too_many_attachments")
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    if not text:
        warnings.append(MISSING_TEXT)
    if len(text) > MAX_TEXT:
        if too_long:
            raise ApiError(too_long)
        text = text[:MAX_TEXT]
        warnings.append(TRUNCATED)
    return Content(text, blocks, attachments, warnings)


def with_reply_warnings(reply: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Add the warnings Slack itself reports, in the shape of a captured reply (warning + response_metadata)."""
    reported = [w for w in warnings if w != MISSING_TEXT]
    if reported:
        reply.update(warning=",".join(reported), response_metadata={"warnings": reported})
    return reply
