"""Slack's message limits, checked the way Slack checks them before it stores a message.

Sources: Block Kit reference https://docs.slack.dev/reference/block-kit/blocks (50 blocks per message; section
text 3000 characters, at most 10 fields of 2000; header 150; actions 25 elements; context 10 elements; block_id
255) and the chat.postMessage reference (100 attachments; text over 40,000 characters is truncated). Problems are
reported in Slack's `[ERROR] <what> [json-pointer:<where>]` form, as in the captured reply
../shared/slack/samples/responses/error.invalid_arguments.views.publish.mercury.json.
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_ID = 255  # block_id and action_id
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_TEXT = 40_000
MAX_ATTACHMENTS = 100

BLOCK_TYPES = {"actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text",
               "section", "table", "video"}
TEXT_TYPES = {"plain_text", "mrkdwn"}


def _error(what: str, pointer: str) -> str:
    return f"[ERROR] {what} [json-pointer:{pointer}]"


def _text_object(obj: Any, pointer: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [_error("must provide an object with a string 'text'", pointer)]
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    if obj.get("type") not in allowed:
        return [_error(f"must be one of {sorted(allowed)}", f"{pointer}/type")]
    if not obj["text"]:
        return [_error("must be more than 0 characters", f"{pointer}/text")]
    if len(obj["text"]) > limit:
        return [_error(f"must be less than {limit + 1} characters", f"{pointer}/text")]
    return []


def _element(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [_error("must provide an object with a 'type'", pointer)]
    problems = []
    if len(str(element.get("action_id", ""))) > MAX_ID:
        problems.append(_error(f"must be less than {MAX_ID + 1} characters", f"{pointer}/action_id"))
    if element["type"] == "button":
        problems += _text_object(element.get("text"), f"{pointer}/text", MAX_BUTTON_TEXT, plain_only=True)
        if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
            problems.append(_error(f"must be less than {MAX_BUTTON_VALUE + 1} characters", f"{pointer}/value"))
    return problems


def _elements(block: dict[str, Any], pointer: str, limit: int) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [_error("must provide a non-empty array", f"{pointer}/elements")]
    if len(elements) > limit:
        return [_error(f"no more than {limit} items allowed", f"{pointer}/elements")]
    problems = []
    action_ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
    if len(action_ids) != len(set(action_ids)):
        problems.append(_error("action_id values must be unique within a block", f"{pointer}/elements"))
    if block["type"] == "actions":
        for i, element in enumerate(elements):
            problems += _element(element, f"{pointer}/elements/{i}")
    return problems


def _section(block: dict[str, Any], pointer: str) -> list[str]:
    problems = []
    if "text" not in block and "fields" not in block:
        problems.append(_error("must provide 'text' or 'fields'", pointer))
    if "text" in block:
        problems += _text_object(block["text"], f"{pointer}/text", MAX_SECTION_TEXT)
    fields = block.get("fields", [])
    if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
        problems.append(_error(f"no more than {MAX_SECTION_FIELDS} items allowed", f"{pointer}/fields"))
    else:
        for i, item in enumerate(fields):
            problems += _text_object(item, f"{pointer}/fields/{i}", MAX_FIELD_TEXT)
    if "accessory" in block:
        problems += _element(block["accessory"], f"{pointer}/accessory")
    return problems


def block_problems(blocks: Any, *, most: int = MAX_BLOCKS, pointer: str = "/blocks") -> list[str]:
    """Every reason Slack would answer `invalid_blocks` (a message: at most 50 blocks) or `invalid_arguments` (a
    modal's blocks, at most 100, under /view/blocks); empty when the blocks are acceptable."""
    if not isinstance(blocks, list):
        return [_error("must provide an array", pointer)]
    if len(blocks) > most:
        return [_error(f"no more than {most} items allowed", pointer)]
    problems: list[str] = []
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"{pointer}/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(_error("failed to match all allowed schemas", where))
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > MAX_ID:
                problems.append(_error(f"must be less than {MAX_ID + 1} characters", f"{where}/block_id"))
            if block_id in block_ids:
                problems.append(_error("block_id values must be unique within a message", f"{where}/block_id"))
            block_ids.add(block_id)
        if block["type"] == "section":
            problems += _section(block, where)
        elif block["type"] == "header":
            problems += _text_object(block.get("text"), f"{where}/text", MAX_HEADER_TEXT, plain_only=True)
        elif block["type"] == "actions":
            problems += _elements(block, where, MAX_ACTIONS_ELEMENTS)
        elif block["type"] == "context":
            problems += _elements(block, where, MAX_CONTEXT_ELEMENTS)
    return problems
