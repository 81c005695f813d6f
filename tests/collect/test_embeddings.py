"""bot/collect/embeddings.py against the OpenAI sandbox: batches within OpenAI's limits, exact cost, the approved cap,
retries and refusals."""

from __future__ import annotations

import numpy as np
import openai
import pytest

from bot.collect.embeddings import Embedder, EmbeddingError, count_tokens
from bot.collect.ratelimit import RateLimiters
from bot.core.errors import BudgetExceeded, PriceError
from bot.costs.budget import Budget
from bot.prices.table import PriceTable
from bot.prompts.embedding_requests import plan_batches
from tests.sandbox.openai_sandbox_support import client

SMALL = "text-embedding-3-small"
TEXTS = [f"Ticket {i}: the {word} does not work since this morning" for i, word in
         enumerate(["printer", "VPN", "invoice page", "laptop screen", "password reset"])]


@pytest.fixture
async def sdk(openai_sandbox):
    async with client(openai_sandbox) as made:
        yield made


def _embedder(sdk, openai_sandbox, **limits) -> Embedder:
    limiters = RateLimiters(requests_per_minute=10_000, tokens_per_minute=10_000_000)
    return Embedder(sdk, PriceTable.load(), limiters, base_url=openai_sandbox.url, **limits)


async def _all(embedder: Embedder, texts, budget: Budget, model: str = SMALL, **options):
    return [batch async for batch in embedder.batches(texts, model, budget, **options)]


def _requests(openai_sandbox) -> list:
    return [r for r in openai_sandbox.requests if r.path == "/v1/embeddings"]


def test_batches_keep_within_the_input_and_token_limits_in_order():
    assert plan_batches([5, 5, 5, 5, 5], max_inputs=2) == [[0, 1], [2, 3], [4]]
    assert plan_batches([4, 4, 4, 1], max_request_tokens=8) == [[0, 1], [2, 3]]
    assert plan_batches([9], max_request_tokens=8) == [[0]]  # one text alone is checked by its own limit
    assert plan_batches([]) == []


async def test_vectors_come_back_in_order_with_the_providers_tokens_and_their_exact_cost(sdk, openai_sandbox):
    batches = await _all(_embedder(sdk, openai_sandbox, max_inputs=2), TEXTS, Budget(None))
    assert [b.positions for b in batches] == [[0, 1], [2, 3], [4]]
    vectors = np.vstack([b.vectors for b in batches])
    direct = await sdk.embeddings.create(model=SMALL, input=TEXTS)
    assert vectors.dtype == np.float32 and np.array_equal(vectors, np.array([d.embedding for d in direct.data],
                                                                              dtype=np.float32))
    tokens = count_tokens(TEXTS, SMALL)
    assert [b.prompt_tokens for b in batches] == [tokens[0] + tokens[1], tokens[2] + tokens[3], tokens[4]]
    assert [r.usage["prompt_tokens"] for r in _requests(openai_sandbox)[:3]] == [b.prompt_tokens for b in batches]
    # $0.02 per 1M tokens = 0.02 micro-dollars a token, rounded up per request
    assert [b.cost_micro_usd for b in batches] == [-(-b.prompt_tokens * 2 // 100) for b in batches]


async def test_the_approved_cap_stops_before_the_request_that_could_pass_it(sdk, openai_sandbox):
    embedder = _embedder(sdk, openai_sandbox, max_inputs=1)
    budget = Budget(cap_micro_usd=2)  # each text is about 12 tokens: 1 micro-dollar a request
    got = []
    with pytest.raises(BudgetExceeded, match="Stopped before the approved cap"):
        async for batch in embedder.batches(TEXTS, SMALL, budget):
            got.append(batch)
    assert len(got) == 2 and len(_requests(openai_sandbox)) == 2
    assert budget.spent_micro_usd == sum(b.cost_micro_usd for b in got) <= 2 and budget.reserved_micro_usd == 0


async def test_a_text_over_the_limit_or_empty_is_refused_before_anything_is_sent(sdk, openai_sandbox):
    embedder = _embedder(sdk, openai_sandbox)
    with pytest.raises(EmbeddingError, match=r"Text 1 has 9,000 tokens; .* at most 8,192"):
        await _all(embedder, ["fine", "hello" + " hello" * 8999], Budget(None))
    with pytest.raises(EmbeddingError, match="Text 0 is empty"):
        await _all(embedder, [""], Budget(None))
    with pytest.raises(PriceError, match="not an embedding model"):
        await _all(embedder, ["fine"], Budget(None), model="gpt-6-luna")
    assert _requests(openai_sandbox) == []


async def test_a_server_error_and_a_rate_limit_are_retried_and_paid_once(sdk, openai_sandbox):
    openai_sandbox.inject("/v1/embeddings", 500)
    openai_sandbox.inject("/v1/embeddings", 429, retry_after=0.01)
    budget = Budget(None)
    [batch] = await _all(_embedder(sdk, openai_sandbox), TEXTS, budget)
    assert [r.status for r in _requests(openai_sandbox)] == [500, 429, 200]
    assert budget.spent_micro_usd == batch.cost_micro_usd and budget.reserved_micro_usd == 0


async def test_a_refusal_is_not_retried_and_quotes_the_provider(sdk, openai_sandbox):
    budget = Budget(None)
    with pytest.raises(EmbeddingError, match=r"HTTP 400\): Invalid 'dimensions'"):
        await _all(_embedder(sdk, openai_sandbox), TEXTS, budget, dimensions=5000)
    assert len(_requests(openai_sandbox)) == 1 and budget.spent_micro_usd == budget.reserved_micro_usd == 0


async def test_dimensions_shorten_the_vectors(sdk, openai_sandbox):
    [batch] = await _all(_embedder(sdk, openai_sandbox), TEXTS, Budget(None), dimensions=64)
    assert batch.vectors.shape == (5, 64)
    assert np.allclose(np.linalg.norm(batch.vectors, axis=1), 1, atol=1e-5)


async def test_an_unreachable_provider_is_named(openai_sandbox):
    async with openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-sandbox", max_retries=0) as dead:
        embedder = Embedder(dead, PriceTable.load(), RateLimiters(requests_per_minute=10_000,
                                                                  tokens_per_minute=10_000_000),
                            base_url="http://127.0.0.1:9/v1", max_attempts=2)
        with pytest.raises(EmbeddingError, match=r"Could not reach http://127\.0\.0\.1:9/v1"):
            await _all(embedder, TEXTS, Budget(None))
