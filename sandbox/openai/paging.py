"""Cursor paging as OpenAI's list endpoints do it: `after` is the id of the last item of the previous page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from aiohttp import web

from sandbox.openai.errors import bad_request

T = TypeVar("T")


def limit_param(request: web.Request, default: int = 20, maximum: int = 100) -> int:
    raw = request.query.get("limit", str(default))
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(f"Invalid 'limit': {raw!r} is not an integer.", param="limit") from None
    if not 1 <= limit <= maximum:
        raise bad_request(f"Invalid 'limit': {limit}. Expected a value between 1 and {maximum}.", param="limit")
    return limit


def page(items: Sequence[T], after: str | None, limit: int, key: Callable[[T], str]) -> tuple[list[T], bool]:
    """The `limit` items following the one whose id is `after` (from the start when None), and has_more."""
    start = 0
    if after:
        ids = [key(item) for item in items]
        if after not in ids:
            raise bad_request(f"Invalid 'after': no object with id {after!r} in this list.", param="after")
        start = ids.index(after) + 1
    chunk = list(items[start : start + limit])
    return chunk, start + limit < len(items)


def list_body(data: list[dict], has_more: bool, cursor_ids: bool = False) -> dict:
    """OpenAI's list envelope; chat completion lists also name their first and last ids."""
    body: dict = {"object": "list", "data": data, "has_more": has_more}
    if cursor_ids:
        body["first_id"] = data[0]["id"] if data else None
        body["last_id"] = data[-1]["id"] if data else None
    return body
