"""Embeddings through any OpenAI-compatible `/embeddings` endpoint: texts in, float vectors and what they cost out.

Texts go in batches within OpenAI's limits (openapi.yaml, CreateEmbeddingRequest): at most 2048 inputs and
300,000 tokens per request, none empty, each within 8,192 tokens. Every text is counted first with the model's
tokenizer (cl100k_base for text-embedding-3), so a text too long is refused before anything is sent, and each
request reserves its exact cost against the approved cap (bot/costs/budget.py) before it goes: embeddings bill input
tokens only, so the reservation is the most the request can cost. The real cost, from the provider's
`usage.prompt_tokens`, replaces it.

`batches` yields each batch as it arrives and sends the next only when the caller asks for it, so a caller that
stores each batch first loses at most the one in flight to a crash. Every attempt passes through the shared
rate limiter (bot/collect/ratelimit.py) and is retried like a chat request: 429, 5xx and lost connections with backoff,
honouring Retry-After; anything else is refused at once with the provider's reason.

Vectors are asked for as base64 (little-endian float32, what the openai SDK itself asks for) and read with
numpy; a server that sends float lists instead is read too.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
import openai
from openai import AsyncOpenAI

from bot.collect.ratelimit import RateLimiters
from bot.core.errors import BudgetExceeded, PriceError, ProviderError
from bot.core.provider import RETRYABLE_STATUSES, retry_after_seconds
from bot.core.retries import backoff_seconds
from bot.costs.budget import Budget
from bot.prices.table import ModelPrice, PriceTable
from bot.prompts.embedding_requests import MAX_INPUT_TOKENS, MAX_INPUTS, MAX_REQUEST_TOKENS, plan_batches
from bot.prompts.encodings import encoding_for_model


class EmbeddingError(ProviderError):
    """The provider refused the embedding request, or a text cannot be embedded as it is."""


@dataclass(frozen=True)
class EmbeddedBatch:
    positions: list[int]  # which of the texts given, in order
    vectors: np.ndarray  # float32, one row per text
    text_tokens: list[int]  # each text's tokens, as counted before sending
    prompt_tokens: int  # the request's, as the provider reported them
    cost_micro_usd: int


def count_tokens(texts: Sequence[str], model: str) -> list[int]:
    """Each text's tokens as the embedding model counts them (CPU work: callers on the event loop use a thread)."""
    encoding = encoding_for_model(model)
    return [len(encoding.encode_ordinary(text)) for text in texts]




def check_texts(texts: Sequence[str], tokens: Sequence[int], model: str, names: Sequence[str] = ()) -> None:
    """Refuse what the endpoint would refuse, naming the text (`names`, else its position) and the fix."""
    for position, (text, count) in enumerate(zip(texts, tokens, strict=True)):
        name = names[position] if names else f"Text {position}"
        if not text:
            raise EmbeddingError(f"{name} is empty, and {model} embeds no empty text. Leave the row out or give it "
                                 "content.")
        if count > MAX_INPUT_TOKENS:
            raise EmbeddingError(f"{name} has {count:,} tokens; {model} embeds at most {MAX_INPUT_TOKENS:,} per "
                                 "text. Shorten the template or the row.")


def _vectors(data: Sequence[object]) -> np.ndarray:
    rows = []
    for item in data:
        value = getattr(item, "embedding", None)
        if isinstance(value, str):
            rows.append(np.frombuffer(base64.b64decode(value), dtype="<f4"))
        else:
            rows.append(np.asarray(value, dtype=np.float32))
    return np.vstack(rows).astype(np.float32, copy=False)


@dataclass
class Embedder:
    """Embeds texts with one OpenAI-compatible client (it does not own it), through the shared rate limiters."""

    client: AsyncOpenAI
    prices: PriceTable
    limiters: RateLimiters
    base_url: str
    max_attempts: int = 6
    max_inputs: int = MAX_INPUTS
    max_request_tokens: int = MAX_REQUEST_TOKENS

    def price_of(self, model: str) -> ModelPrice:
        """The model's price line; PriceError when the table does not list it as an embedding model."""
        price = self.prices.get(model)
        if price.facts.kind != "embedding":
            raise PriceError(f"{model} is not an embedding model in the price table. Pick one such as "
                             "text-embedding-3-small.")
        return price

    async def batches(self, texts: Sequence[str], model: str, budget: Budget, *,
                      dimensions: int | None = None) -> AsyncIterator[EmbeddedBatch]:
        """The texts' vectors, one request at a time (see the module docstring). BudgetExceeded when the next
        request could take spend past the cap; EmbeddingError when the provider refuses."""
        price = self.price_of(model)
        tokens = await asyncio.to_thread(count_tokens, texts, model)
        check_texts(texts, tokens, model)
        for positions in plan_batches(tokens, max_inputs=self.max_inputs, max_request_tokens=self.max_request_tokens):
            batch_tokens = sum(tokens[p] for p in positions)
            reserve = price.cost_micro_usd(batch_tokens, 0)
            if not await budget.reserve_when_possible(reserve):
                raise BudgetExceeded(f"Stopped before the approved cap: embedding the next {len(positions):,} texts "
                                     f"({batch_tokens:,} tokens) could take spend past it.")
            try:
                vectors, reported = await self._request([texts[p] for p in positions], model, batch_tokens,
                                                        dimensions)
            except BaseException:
                await budget.settle(reserve, 0)
                raise
            cost = price.cost_micro_usd(reported, 0)
            await budget.settle(reserve, cost)
            yield EmbeddedBatch(positions, vectors, [tokens[p] for p in positions], reported, cost)

    async def _request(self, inputs: list[str], model: str, tokens: int,
                       dimensions: int | None) -> tuple[np.ndarray, int]:
        limiter = self.limiters.for_model(self.base_url, model)
        extra = {"dimensions": dimensions} if dimensions is not None else {}
        attempt = 0
        while True:
            attempt += 1
            await limiter.acquire(tokens)
            try:
                raw = await self.client.embeddings.with_raw_response.create(
                    model=model, input=inputs, encoding_format="base64", **extra)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                limiter.release(tokens)
                status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
                wait = retry_after_seconds(exc.response.headers) if isinstance(exc, openai.APIStatusError) else None
                if status == 429:
                    limiter.pause(wait if wait is not None else 1.0)
                if (status is not None and status not in RETRYABLE_STATUSES) or attempt >= self.max_attempts:
                    raise EmbeddingError(self._refusal(model, exc)) from exc
                await asyncio.sleep(backoff_seconds(attempt, wait))
                continue
            limiter.observe(raw.headers, tokens)
            response = raw.parse()
            if len(response.data) != len(inputs):
                raise EmbeddingError(f"{self.base_url} answered {len(response.data)} embeddings for {len(inputs)} "
                                     "texts. Check that OPENAI_BASE_URL serves OpenAI's embeddings API.")
            ordered = sorted(response.data, key=lambda item: item.index)
            usage = response.usage.prompt_tokens if response.usage else tokens
            return _vectors(ordered), usage

    def _refusal(self, model: str, exc: Exception) -> str:
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            reason = body.get("message") or (body.get("error") or {}).get("message") or exc.message
            return f"The provider refused to embed with {model} (HTTP {exc.status_code}): {reason}"
        return (f"Could not reach {self.base_url} to embed with {model} ({type(exc).__name__}). Check OPENAI_BASE_URL "
                "and the network, then try again.")
