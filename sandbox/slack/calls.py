"""Web API calls as the sandbox records them, the errors they end with, and injected rate limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """A Web API failure: Slack's error code, plus `response_metadata.messages` details when Slack gives them."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


@dataclass
class ApiCall:
    """One Web API request: its arguments (JSON strings already decoded, token removed) and how it ended.

    `warnings` holds Slack's own reply warnings (message_truncated) and the sandbox's observations that Slack
    does not report, such as missing_text_in_message, so tests can assert on both.
    """

    method: str
    args: dict[str, Any]
    time: float
    status: int = 200
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def channel(self) -> str | None:
        return self.args.get("channel") or self.args.get("channel_id")

    @property
    def thread_ts(self) -> str | None:
        return self.args.get("thread_ts")


class RateLimits:
    """429 answers queued for the next calls of a method, each with its Retry-After seconds."""

    def __init__(self) -> None:
        self._pending: dict[str, list[int]] = {}

    def inject(self, method: str, count: int, retry_after: int) -> None:
        if count < 1 or retry_after < 0:
            raise ValueError(f"count must be at least 1 and retry_after at least 0, got {count} and {retry_after}")
        self._pending.setdefault(method, []).extend([retry_after] * count)

    def take(self, method: str) -> int | None:
        """Retry-After seconds when this call must be refused, else None."""
        pending = self._pending.get(method)
        return pending.pop(0) if pending else None
