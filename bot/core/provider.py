"""One chat request to any OpenAI-compatible endpoint, with the facts the collector needs back.

The SDK's own retries are turned off (max_retries=0): the collector retries itself so that every attempt
passes through the shared rate limiter and is counted. Failures come back as `ProviderFailure`, which
says whether a retry can help and how long the provider asked us to wait.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

log = logging.getLogger(__name__)

# Statuses worth retrying: rate limit, the provider's own trouble, and a request timeout (OpenAI's
# error-codes guide lists 429, 500, 503; 502/504 come from proxies in front of compatible servers).
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ChatAnswer:
    content: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int  # visible answer and hidden reasoning together, as billed
    latency_ms: int
    request_id: str | None
    completion_id: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    finish_reason: str | None = None  # "length": max_completion_tokens ran out before the answer was done
    reasoning_tokens: int = 0  # usage.completion_tokens_details.reasoning_tokens (0 when not reported)


class ProviderFailure(Exception):
    """A request that did not produce an answer."""

    def __init__(self, message: str, *, status: int | None, retryable: bool, retry_after: float | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.headers = dict(headers or {})


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The wait a 429 or 503 asks for: OpenAI sends retry-after-ms and retry-after (seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = body.get("message") if "message" in body else (body.get("error") or {}).get("message")
    return f"HTTP {exc.status_code}: {detail or exc.message}"


def provider_date(value: object) -> dt.date | None:
    """An ISO date (OpenAI's shutdown_date) or Unix seconds (Azure's deprecation times) as a UTC date."""
    if isinstance(value, str) and value:
        return dt.date.fromisoformat(value[:10])
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    return None


async def delete_file(client: AsyncOpenAI, file_id: str) -> None:
    """Delete a file uploaded to the provider (a training or batch file); one already gone is no error."""
    try:
        await client.files.delete(file_id)
    except openai.NotFoundError:
        log.info("file %s was already deleted at the provider", file_id)


class ChatProvider:
    """Chat Completions over AsyncOpenAI at any base URL."""

    def __init__(self, *, base_url: str, api_key: str, store: bool = True, timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.store = store
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    async def close(self) -> None:
        await self.client.close()

    async def shutdown_date(self, model: str) -> dt.date | None:
        """The date the provider will stop serving `model` (GET /models/{model}); None when it announces none,
        or cannot say (servers without that endpoint, a model it does not list)."""
        try:
            found = await self.client.models.retrieve(model)
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            log.info("%s did not say whether %s has a shutdown date: %s", self.base_url, model, type(exc).__name__)
            return None
        return provider_date(found.to_dict().get("shutdown_date"))

    async def complete(self, *, model: str, messages: list[dict[str, Any]], response_format: dict[str, Any] | None,
                       metadata: Mapping[str, str] | None = None,
                       options: Mapping[str, Any] | None = None) -> ChatAnswer:
        """One answer. `options` are the budget's fields (bot/prices/reasoning.py): max_completion_tokens, and
        reasoning_effort and temperature where the model takes them. Without `response_format` the answer is text."""
        extra: dict[str, Any] = dict(options or {})
        if response_format is not None:
            extra["response_format"] = response_format
        if self.store:
            extra.update(store=True, metadata=dict(metadata or {}))
        started = time.monotonic()
        try:
            raw = await self.client.chat.completions.with_raw_response.create(
                model=model, messages=messages, **extra
            )
        except openai.APIStatusError as exc:
            headers = dict(exc.response.headers)
            raise ProviderFailure(
                _error_message(exc), status=exc.status_code, retryable=exc.status_code in RETRYABLE_STATUSES,
                retry_after=retry_after_seconds(headers), headers=headers,
            ) from exc
        except openai.APITimeoutError as exc:
            raise ProviderFailure("the request timed out", status=None, retryable=True) from exc
        except openai.APIConnectionError as exc:
            raise ProviderFailure(f"could not connect: {exc}", status=None, retryable=True) from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        headers = dict(raw.headers)
        try:
            completion = raw.parse()
            choice = completion.choices[0]
            usage = completion.usage
        except (json.JSONDecodeError, openai.APIResponseValidationError, IndexError, AttributeError,
                TypeError, ValueError) as exc:
            raise ProviderFailure(
                f"the provider sent a body that is not a chat completion ({type(exc).__name__})",
                status=raw.status_code, retryable=True, headers=headers,
            ) from exc
        details = getattr(usage, "completion_tokens_details", None)
        return ChatAnswer(
            content=choice.message.content,
            refusal=getattr(choice.message, "refusal", None),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=latency_ms,
            request_id=headers.get("x-request-id"),
            completion_id=completion.id,
            headers=headers,
            finish_reason=choice.finish_reason,
            reasoning_tokens=(getattr(details, "reasoning_tokens", None) or 0) if details else 0,
        )
