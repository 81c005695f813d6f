"""The provider's stored chat completions, read back: what `/distill import` and `/distill watch` sample.

A chat completion made with `store: true` is kept by OpenAI for 30 days. `GET /chat/completions` lists them in
cursor pages with `model` and `metadata[key]=value` filters (the SDK's `chat.completions.list`; newest first with
`order=desc`) and has no date filter, so `since` is applied here: the walk stops at the first completion older
than it. Each completion holds the reply; its request's messages are a second list,
`GET /chat/completions/{id}/messages` (`chat.completions.messages.list`), read for the completions kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.core.errors import SpecError, StateError
from bot.data.chat_examples import ChatExample, ChatExamples, Unusable, example_from_messages

RETENTION_DAYS = 30
DEFAULT_LIMIT = 1000
MAX_LIMIT = 20_000
PAGE = 100  # the most one list call returns
READERS = 8  # message lists read at once
LIST_RETRIES = 2
_KEY = re.compile(r"^metadata\.([A-Za-z0-9_.:-]{1,64})$")


@dataclass(frozen=True)
class StoredFilter:
    """Which stored completions: by model, by metadata pairs (all must match), since a day, at most `limit`."""

    model: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    since: dt.date | None = None
    limit: int = DEFAULT_LIMIT

    def to_args(self) -> list[str]:
        """The filter as `/distill import` takes it (parse_filter reads it back)."""
        parts = [f"model={self.model}"] if self.model else []
        parts += [f"metadata.{k}={v}" for k, v in self.metadata.items()]
        parts += [f"since={self.since.isoformat()}"] if self.since else []
        return [*parts, f"limit={self.limit}"]

    def describe(self) -> str:
        return " ".join(self.to_args())


def parse_filter(args: Sequence[str], *, allowed: Sequence[str] = ("model", "since", "limit"),
                 max_limit: int = MAX_LIMIT) -> StoredFilter:
    """`model=M metadata.KEY=VALUE ... since=YYYY-MM-DD limit=N`, each checked; SpecError names what is wrong."""
    model, metadata, since, limit = None, {}, None, DEFAULT_LIMIT
    for arg in args:
        key, _, value = arg.partition("=")
        found = _KEY.match(key)
        if found and value:
            metadata[found.group(1)] = value
        elif key == "model" and "model" in allowed and value:
            model = value
        elif key == "since" and "since" in allowed:
            try:
                since = dt.date.fromisoformat(value)
            except ValueError:
                raise SpecError(f"since={value} is not a date: write since=YYYY-MM-DD (e.g. since=2026-11-01).") \
                    from None
        elif key == "limit" and "limit" in allowed:
            limit = int(value) if value.isdigit() else 0
            if not 1 <= limit <= max_limit:
                raise SpecError(f"limit={value} is not a number from 1 to {max_limit:,}.")
        else:
            known = ", ".join([*(f"{a}=..." for a in allowed), "metadata.KEY=VALUE"])
            raise SpecError(f"{arg!r} is not a filter of stored completions; use {known}.")
    if len(metadata) > 16:
        raise SpecError("At most 16 metadata pairs: OpenAI's metadata holds 16 keys.")
    return StoredFilter(model, metadata, since, limit)


async def list_stored(client: AsyncOpenAI, wanted: StoredFilter, *, newer_than: float | None = None) -> list[Any]:
    """The matching completions, newest first: at most `limit`, none older than `since` (or `newer_than`, Unix
    seconds)."""
    oldest = newer_than
    if wanted.since is not None:
        start = dt.datetime.combine(wanted.since, dt.time(0), dt.UTC).timestamp()
        oldest = max(oldest or start, start)
    found: list[Any] = []
    options: dict[str, Any] = {"order": "desc", "limit": PAGE}
    if wanted.model:
        options["model"] = wanted.model
    if wanted.metadata:
        options["metadata"] = dict(wanted.metadata)
    try:
        async for completion in client.with_options(max_retries=LIST_RETRIES).chat.completions.list(**options):
            if oldest is not None and completion.created < oldest:
                break
            found.append(completion)
            if len(found) >= wanted.limit:
                break
    except openai.NotFoundError as exc:
        raise StateError(f"The provider at {client.base_url} has no stored chat completions to list "
                         f"(GET /chat/completions answered 404). Share a JSONL file of the examples instead.") from exc
    except openai.APIStatusError as exc:
        raise StateError(f"Listing stored completions failed: HTTP {exc.status_code}. Try again later.") from exc
    except openai.APIConnectionError as exc:
        raise StateError(f"Could not reach {client.base_url} to list stored completions. Try again later.") from exc
    return found


async def examples_of(client: AsyncOpenAI, completions: Sequence[Any]) -> ChatExamples:
    """Each completion with its request's messages as an example; one that cannot be one is named with why."""
    gate = asyncio.Semaphore(READERS)

    async def one(completion: Any) -> ChatExample | Unusable:
        async with gate:
            try:
                messages = [m.to_dict() async for m in client.with_options(max_retries=LIST_RETRIES)
                            .chat.completions.messages.list(completion.id, limit=PAGE)]
            except openai.NotFoundError:
                return Unusable(completion.id, "no longer stored (kept 30 days)")
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                return Unusable(completion.id, f"its messages could not be read ({type(exc).__name__})")
        request = [{"role": m["role"], "content": m.get("content_parts") or m.get("content")} for m in messages]
        reply = completion.choices[0].message.to_dict() if completion.choices else None
        try:
            return example_from_messages(request, reply, completion.id, model=completion.model,
                                         created=completion.created, metadata=completion.metadata)
        except ValueError as exc:
            return Unusable(completion.id, str(exc))

    done = await asyncio.gather(*(one(c) for c in completions))
    return ChatExamples([d for d in done if isinstance(d, ChatExample)], [d for d in done if isinstance(d, Unusable)])


def counts_by_metadata(completions: Sequence[Any]) -> dict[str, Counter[str]]:
    """For each metadata key, how many completions carry each value; and `model` the same way."""
    counts: dict[str, Counter[str]] = {"model": Counter(c.model for c in completions)}
    for completion in completions:
        for key, value in (completion.metadata or {}).items():
            counts.setdefault(f"metadata.{key}", Counter())[value] += 1
    return counts


def retention_warning(completions: Sequence[Any], today: dt.date) -> str:
    """When the oldest of these is deleted by the provider."""
    if not completions:
        return ""
    oldest = dt.datetime.fromtimestamp(min(c.created for c in completions), dt.UTC).date()
    gone = oldest + dt.timedelta(days=RETENTION_DAYS)
    left = (gone - today).days
    return (f"Stored completions are kept {RETENTION_DAYS} days: the oldest of these ({oldest.isoformat()}) is "
            f"deleted by the provider on {gone.isoformat()} (in {max(left, 0)} days). Import before then; once "
            "imported, the bot keeps its copy.")
