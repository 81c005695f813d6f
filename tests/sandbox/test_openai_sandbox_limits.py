"""Rate limits and faults of the OpenAI sandbox, as the real openai SDK sees them."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from tests.sandbox.openai_sandbox_support import classification_format, client

USER = [{"role": "user", "content": "Where is my parcel? The shipping is late."}]


async def test_tpm_limit_answers_429_with_retry_after_and_is_not_paid(make_openai_sandbox):
    sandbox = await make_openai_sandbox(tpm_limits={"gpt-4o": 100})
    async with client(sandbox) as sdk:
        ok = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-2024-08-06", messages=USER,
                                                                 max_tokens=60)
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=60)
    assert ok.headers["x-ratelimit-limit-tokens"] == "100"
    assert int(ok.headers["x-ratelimit-remaining-tokens"]) <= 100 - 60
    assert ok.headers["x-ratelimit-reset-tokens"].endswith("s")
    assert ok.headers["x-request-id"].startswith("req_")
    error = refused.value
    assert error.code == "rate_limit_exceeded" and error.type == "tokens"
    assert "on tokens per min (TPM): Limit 100, Used" in error.message and "Please try again in" in error.message
    assert int(error.response.headers["retry-after"]) >= 1
    assert int(error.response.headers["retry-after-ms"]) > 0
    assert [(r.status, r.paid) for r in sandbox.requests] == [(200, True), (429, False)]


async def test_rpm_limit_and_request_too_large(make_openai_sandbox):
    sandbox = await make_openai_sandbox(rpm_limits={"gpt-4o-mini": 1}, tpm_limits={"gpt-4o-mini": 50})
    async with client(sandbox) as sdk:
        with pytest.raises(openai.RateLimitError, match="Request too large"):
            await sdk.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=500)
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=5)
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=5)
        unlimited = await sdk.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
    assert refused.value.type == "requests" and "requests per min (RPM): Limit 1" in refused.value.message
    assert "x-ratelimit-limit-requests" not in unlimited.headers


async def test_sdk_retry_honours_retry_after_and_pays_once(make_openai_sandbox):
    sandbox = await make_openai_sandbox()
    sandbox.inject("/v1/chat/completions", 429, count=1, retry_after=0.2)
    async with client(sandbox, max_retries=1) as sdk:
        answer = await sdk.chat.completions.create(model="gpt-4o", messages=USER,
                                                   response_format=classification_format(["Shipping", "Billing"]))
    assert answer.choices[0].message.content == '{"label":"Shipping"}'
    assert [r.status for r in sandbox.requests] == [429, 200]
    assert sandbox.requests[1].time - sandbox.requests[0].time >= 0.2
    assert len(sandbox.requests.paid()) == 1


@pytest.mark.parametrize(("outcome", "error"), [(500, openai.InternalServerError), (503, openai.InternalServerError),
                                                ("malformed", json.JSONDecodeError)])
async def test_injected_faults_reach_the_client(make_openai_sandbox, outcome, error):
    sandbox = await make_openai_sandbox()
    sandbox.inject("/v1/chat/completions", outcome, count=2)
    async with client(sandbox) as sdk:
        with pytest.raises(error):
            await sdk.chat.completions.create(model="gpt-4o", messages=USER)
        with pytest.raises(error):
            await sdk.chat.completions.create(model="gpt-4o", messages=USER)
        await sdk.models.list()  # other paths are untouched
        await sdk.chat.completions.create(model="gpt-4o", messages=USER)  # the injection is used up
    assert [r.fault for r in sandbox.requests] == [f"injected {outcome}"] * 2 + [None, None]
    assert [r.paid for r in sandbox.requests] == [False, False, False, True]


async def test_injected_timeout_holds_the_request_until_the_client_gives_up(make_openai_sandbox):
    sandbox = await make_openai_sandbox()
    sandbox.inject("/v1/chat/completions", "timeout")
    async with openai.AsyncOpenAI(base_url=sandbox.url, api_key="sk-sandbox", max_retries=0, timeout=0.3) as sdk:
        with pytest.raises(openai.APITimeoutError):
            await sdk.chat.completions.create(model="gpt-4o", messages=USER)


async def test_random_faults_are_seeded_and_retried_by_the_sdk(make_openai_sandbox):
    async def statuses(seed: int) -> list[int]:
        sandbox = await make_openai_sandbox(seed=seed, fault_rate=0.5)
        async with client(sandbox, max_retries=0) as sdk:
            for _ in range(12):
                try:
                    await sdk.models.list()
                except openai.InternalServerError:
                    pass
        return [r.status for r in sandbox.requests]

    first, again, other = await statuses(1), await statuses(1), await statuses(2)
    assert first == again != other
    assert {500, 503, 200} == set(first)


async def test_latency_and_slow_answers(make_openai_sandbox):
    sandbox = await make_openai_sandbox(latency_seconds=0.05, slow_rate=1.0, slow_seconds=0.1)
    async with client(sandbox) as sdk:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await sdk.models.list()
        elapsed = loop.time() - start
    assert elapsed >= 0.15
