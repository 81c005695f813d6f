"""What the sandbox was asked and what it charged: one record per request, for tests to count.

`paid` is True for an answered chat completion with usage (a 200 live answer, or a batch line completed at
half price with `batch=True`): "no row paid twice" is counted from these records by `messages_hash`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from aiohttp import web


@dataclass
class RequestRecord:
    time: float
    method: str
    path: str
    request_id: str
    status: int = 0
    model: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    messages_hash: str | None = None
    last_user_text: str | None = None
    usage: dict | None = None  # prompt_tokens, completion_tokens, total_tokens
    paid: bool = False
    batch: bool = False
    fault: str | None = None  # the injected or random fault that answered instead, if any

    def as_json(self) -> dict:
        return asdict(self)


class RequestLog(list[RequestRecord]):
    def paid(self) -> list[RequestRecord]:
        return [r for r in self if r.paid]


# Where the middleware leaves a request's record for the handler to fill in (model, usage, ...).
RECORD_KEY = web.RequestKey("record", RequestRecord)
