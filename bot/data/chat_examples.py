"""Chat examples a team already has: one request and the model's reply each, from a JSONL file or the provider.

A line of a `.jsonl` file is one example in any of three shapes:
- OpenAI's fine-tuning format: `{"messages": [system?, user, assistant]}`, the reply being the last message;
- an exported stored completion or chat log: `{"messages": [system?, user], "choices": [{"message": {...}}]}`,
  with `model`, `created` and `metadata` when it has them;
- a logged request and response: `{"request": {"messages": [...]}, "response": {"choices": [...]}}`.

An example is single-turn: optional system (or developer) messages, one user message, the reply. Text content
may be a string or a list of text parts. A line that is not one of these (not JSON, no messages, several user
turns, an image part, a reply without text) is not used; it is counted and named with its line number and the
reason, and the other lines are used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.errors import DatasetError

SYSTEM_ROLES = ("system", "developer")
REASON_CHARS = 120


@dataclass(frozen=True)
class ChatExample:
    where: str  # "line 12", or the stored completion's id
    system: str | None
    user: str
    answer: str  # the reply's text, as the model wrote it
    model: str | None = None
    created: int | None = None  # Unix seconds
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Unusable:
    where: str
    reason: str


@dataclass(frozen=True)
class ChatExamples:
    examples: list[ChatExample]
    unusable: list[Unusable]


def _text(content: Any, what: str) -> str:
    """A message's text: a string, or the text of a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text" or not isinstance(part.get("text"), str):
                raise ValueError(f"the {what} has a part of type {kind or 'unknown'}: only text is distilled")
            texts.append(part["text"])
        return "".join(texts)
    raise ValueError(f"the {what} has no text content")


def example_from_messages(request: Sequence[Any], reply: Any, where: str, *, model: str | None = None,
                          created: int | None = None, metadata: Mapping[str, Any] | None = None) -> ChatExample:
    """The example of a request's messages and the reply message; ValueError says why it cannot be one."""
    if not isinstance(reply, Mapping) or reply.get("role", "assistant") != "assistant":
        raise ValueError("there is no assistant reply after the request")
    answer = _text(reply.get("content"), "assistant's reply").strip() if reply.get("content") is not None else ""
    if not answer:
        raise ValueError("the assistant's reply has no text (a refusal or a tool call)")
    systems, users = [], []
    for message in request:
        role = message.get("role") if isinstance(message, Mapping) else None
        if role in SYSTEM_ROLES and not users:
            systems.append(_text(message.get("content"), f"{role} message"))
        elif role == "user":
            users.append(_text(message.get("content"), "user message"))
        else:
            raise ValueError(f"it has an earlier {role or 'role-less'} message: only single-turn examples "
                             "(system, user, assistant) are distilled")
    if len(users) != 1:
        raise ValueError(f"it has {len(users)} user messages: an example is one user message and the reply")
    tags = {str(k): str(v) for k, v in (metadata or {}).items()}
    return ChatExample(where, "\n\n".join(systems) if systems else None, users[0], answer, model, created, tags)


def _reply(choices: Any) -> Any:
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ValueError("`choices` holds no reply")
    return choices[0].get("message")


def example_from_record(record: Any, where: str) -> ChatExample:
    """One JSONL record in any of the shapes the module docstring lists."""
    if not isinstance(record, Mapping):
        raise ValueError("the line is not a JSON object")
    if isinstance(record.get("request"), Mapping) and isinstance(record.get("response"), Mapping):
        request, response = record["request"], record["response"]
        return example_from_messages(_messages(request), _reply(response.get("choices")), where,
                                     model=response.get("model") or request.get("model"),
                                     created=_int(response.get("created")), metadata=request.get("metadata"))
    messages = _messages(record)
    if "choices" in record:
        reply, request = _reply(record["choices"]), messages
    else:
        reply, request = messages[-1], messages[:-1]
    metadata = record.get("metadata")
    return example_from_messages(request, reply, where, model=record.get("model"), created=_int(record.get("created")),
                                 metadata=metadata if isinstance(metadata, Mapping) else None)


def _messages(record: Mapping[str, Any]) -> list[Any]:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError('it has no "messages" list: expected {"messages": [...]} as in OpenAI\'s fine-tuning format')
    return messages


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_jsonl(data: bytes, filename: str, *, max_bytes: int, max_rows: int) -> ChatExamples:
    """Every usable example of a JSONL file, and every line that is not one (DatasetError when none is usable)."""
    if len(data) > max_bytes:
        raise DatasetError(f"{filename} is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit "
                           "(DISTILL_MAX_CSV_MB). Upload a sample of the lines, or raise DISTILL_MAX_CSV_MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{filename} is not UTF-8 text (bad byte at offset {exc.start}); JSON Lines files are "
                           "UTF-8. Save it as UTF-8 and share it again.") from None
    examples: list[ChatExample] = []
    unusable: list[Unusable] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line)
        except ValueError as exc:
            unusable.append(Unusable(where, f"not JSON ({exc.msg}, column {exc.colno})"))
            continue
        try:
            examples.append(example_from_record(record, where))
        except ValueError as exc:
            unusable.append(Unusable(where, str(exc)[:REASON_CHARS]))
        if len(examples) > max_rows:
            raise DatasetError(f"{filename} has more than {max_rows:,} examples (DISTILL_MAX_ROWS). Upload a sample "
                               "of the lines, or raise DISTILL_MAX_ROWS.")
    if not examples:
        named = "; ".join(f"{u.where}: {u.reason}" for u in unusable[:3])
        raise DatasetError(f"{filename} has no usable chat example" + (f" ({named})" if named else " (it is empty)")
                           + '. Each line should be {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}.')
    return ChatExamples(examples, unusable)


def line_list(unusable: Sequence[Unusable]) -> str:
    """The lines, compactly: "line 3", "lines 3, 7, 9-12"."""
    numbers = [int(u.where.removeprefix("line ")) for u in unusable if u.where.startswith("line ")]
    ranges: list[list[int]] = []
    for n in numbers:
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in ranges]
    return ("line " if len(numbers) == 1 else "lines ") + ", ".join(parts)
