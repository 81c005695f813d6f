"""The Batch API of the OpenAI sandbox: same answers as live calls, paid once at batch price, on its clock."""

from __future__ import annotations

import json

import openai

from tests.sandbox.openai_sandbox_support import classification_format, client, jsonl, wait_until

LABELS = ["Billing", "Shipping", "Refund"]
TEXTS = ["I was charged twice on my invoice", "The parcel shipping is late", "I want a refund for this",
         "Nothing to say"]


def request_line(custom_id: str, text: str, model: str = "gpt-4o") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": {
        "model": model, "messages": [{"role": "user", "content": text}],
        "response_format": classification_format(LABELS), "metadata": {"row": custom_id}}}


async def run_batch(sdk: openai.AsyncOpenAI, lines: list[dict]):
    batch_file = await sdk.files.create(file=("batch.jsonl", jsonl(lines)), purpose="batch")
    batch = await sdk.batches.create(input_file_id=batch_file.id, endpoint="/v1/chat/completions",
                                     completion_window="24h", metadata={"run": "r1"})
    assert batch.status == "validating"
    return await wait_until(lambda: sdk.batches.retrieve(batch.id),
                            lambda b: b.status in ("completed", "failed", "expired", "cancelled"))


async def test_batch_answers_like_live_mode_and_is_paid_once_as_batch(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600)
    lines = [request_line(f"row-{i}", text) for i, text in enumerate(TEXTS)]
    lines.append({**request_line("broken", "x"), "body": {"model": "gpt-4o", "messages": []}})
    async with client(sandbox) as sdk:
        live = [await sdk.chat.completions.create(**line["body"]) for line in lines[:-1]]
        done = await run_batch(sdk, lines)
        output = [json.loads(x) for x in (await sdk.files.content(done.output_file_id)).text.splitlines()]
        errors = [json.loads(x) for x in (await sdk.files.content(done.error_file_id)).text.splitlines()]
    assert done.status == "completed" and done.model == "gpt-4o" and done.metadata == {"run": "r1"}
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (5, 4, 1)
    assert [o["custom_id"] for o in output] == [f"row-{i}" for i in range(4)]
    for answer, line in zip(live, output, strict=True):
        body = line["response"]["body"]
        assert line["response"]["status_code"] == 200 and line["error"] is None
        assert body["choices"][0]["message"]["content"] == answer.choices[0].message.content
        assert body["usage"]["prompt_tokens"] == answer.usage.prompt_tokens
    assert errors[0]["custom_id"] == "broken" and errors[0]["response"]["status_code"] == 400
    assert done.usage.input_tokens == sum(a.usage.prompt_tokens for a in live)
    batch_paid = [r for r in sandbox.requests.paid() if r.batch]
    assert [r.metadata["row"] for r in batch_paid] == [f"row-{i}" for i in range(4)]
    assert {r.messages_hash for r in batch_paid} == {r.messages_hash for r in sandbox.requests.paid() if not r.batch}


async def test_expired_batch_answers_nothing_and_costs_nothing(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600, expire_batches=True)
    async with client(sandbox) as sdk:
        done = await run_batch(sdk, [request_line("a", TEXTS[0])])
        errors = (await sdk.files.content(done.error_file_id)).text
    assert done.status == "expired" and done.output_file_id is None and done.expired_at is not None
    assert json.loads(errors)["error"]["code"] == "batch_expired"
    assert not sandbox.requests.paid()


async def test_cancelled_batch(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600)
    async with client(sandbox) as sdk:
        batch_file = await sdk.files.create(file=("b.jsonl", jsonl([request_line("a", TEXTS[0])])), purpose="batch")
        batch = await sdk.batches.create(input_file_id=batch_file.id, endpoint="/v1/chat/completions",
                                         completion_window="24h")
        cancelling = await sdk.batches.cancel(batch.id)
        done = await wait_until(lambda: sdk.batches.retrieve(batch.id), lambda b: b.status == "cancelled")
    assert cancelling.status == "cancelling" and done.output_file_id is None
    assert not sandbox.requests.paid()


async def test_batch_with_two_models_fails_validation(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600)
    async with client(sandbox) as sdk:
        done = await run_batch(sdk, [request_line("a", TEXTS[0]), request_line("b", TEXTS[1], "gpt-4o-mini")])
    assert done.status == "failed" and done.failed_at is not None
    assert done.errors.data[0].code == "mismatched_model" and "Split it by model" in done.errors.data[0].message
