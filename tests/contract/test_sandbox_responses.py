"""The sandbox's answers validate against the response schemas of OpenAI's own spec (JSON Schema 2020-12).

Needs no Node.js: the spec is read with PyYAML and each answer, taken raw off the wire, is checked with
jsonschema against `#/components/schemas/<Name>`.
"""

from __future__ import annotations

import jsonschema
import openai
import pytest

from tests.sandbox.openai_sandbox_support import classification_format, client, jsonl, wait_until

pytestmark = pytest.mark.contract
TRAINING = jsonl([{"messages": [{"role": "user", "content": f"ticket {i}"},
                                {"role": "assistant", "content": '{"label":"Billing"}'}]} for i in range(10)])


@pytest.fixture
def conforms(spec):
    def check(name: str, raw) -> None:
        """`raw` is an SDK raw response or an httpx response; its JSON body must fit the named schema."""
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        jsonschema.Draft202012Validator(schema).validate(getattr(raw, "http_response", raw).json())

    return check


async def test_chat_answers_conform(make_openai_sandbox, conforms):
    sandbox = await make_openai_sandbox()
    async with client(sandbox) as sdk:
        created = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "charged twice"}], store=True,
            metadata={"run": "r1"}, response_format=classification_format(["Billing", "Shipping"]))
        conforms("CreateChatCompletionResponse", created)
        conforms("ChatCompletionList", await sdk.chat.completions.with_raw_response.list(metadata={"run": "r1"}))
        conforms("CreateChatCompletionResponse",
                 await sdk.chat.completions.with_raw_response.retrieve(created.parse().id))
        conforms("ListModelsResponse", await sdk.models.with_raw_response.list())
        conforms("Model", await sdk.models.with_raw_response.retrieve("gpt-4o-mini"))
        with pytest.raises(openai.NotFoundError) as missing:
            await sdk.models.retrieve("gpt-9")
    conforms("ErrorResponse", missing.value.response)


async def test_embeddings_and_their_refusals_conform(make_openai_sandbox, conforms):
    sandbox = await make_openai_sandbox()
    async with client(sandbox) as sdk:
        conforms("CreateEmbeddingResponse", await sdk.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["charged twice", "vpn drops"], encoding_format="float",
            dimensions=64))
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.embeddings.create(model="text-embedding-3-small", input=["ok", ""])
        with pytest.raises(openai.PermissionDeniedError) as chat:
            await sdk.embeddings.create(model="gpt-6-luna", input="ok")
    conforms("ErrorResponse", refused.value.response)
    conforms("ErrorResponse", chat.value.response)


async def test_reasoning_answers_their_usage_details_and_refusals_conform(make_openai_sandbox, conforms):
    sandbox = await make_openai_sandbox(reasoning_scale={"gpt-6.1-sol": 1000})
    messages = [{"role": "user", "content": "charged twice"}]
    fmt = classification_format(["Billing", "Shipping"])
    async with client(sandbox) as sdk:
        thought = await sdk.chat.completions.with_raw_response.create(
            model="gpt-6.2-sol", messages=messages, response_format=fmt, reasoning_effort="high",
            max_completion_tokens=20_000)
        conforms("CreateChatCompletionResponse", thought)
        details = thought.http_response.json()["usage"]["completion_tokens_details"]
        assert details["reasoning_tokens"] > 0
        cut = await sdk.chat.completions.with_raw_response.create(
            model="gpt-6.1-sol", messages=messages, response_format=fmt, reasoning_effort="low",
            max_completion_tokens=64)
        conforms("CreateChatCompletionResponse", cut)
        body = cut.http_response.json()
        assert body["choices"][0]["finish_reason"] == "length" and body["choices"][0]["message"]["content"] == ""
        assert body["usage"]["completion_tokens"] == body["usage"]["completion_tokens_details"]["reasoning_tokens"]
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.chat.completions.create(model="gpt-6.2-sol", messages=messages, temperature=0)
    conforms("ErrorResponse", refused.value.response)


async def test_files_jobs_and_batches_conform(make_openai_sandbox, conforms):
    sandbox = await make_openai_sandbox(clock_speed=600)
    async with client(sandbox) as sdk:
        uploaded = await sdk.files.with_raw_response.create(file=("t.jsonl", TRAINING), purpose="fine-tune")
        conforms("OpenAIFile", uploaded)
        job = await sdk.fine_tuning.jobs.with_raw_response.create(model="gpt-4o-mini",
                                                                  training_file=uploaded.parse().id)
        conforms("FineTuningJob", job)
        job_id = job.parse().id
        await wait_until(lambda: sdk.fine_tuning.jobs.retrieve(job_id), lambda j: j.status == "succeeded")
        conforms("FineTuningJob", await sdk.fine_tuning.jobs.with_raw_response.retrieve(job_id))
        conforms("ListPaginatedFineTuningJobsResponse", await sdk.fine_tuning.jobs.with_raw_response.list())
        conforms("ListFineTuningJobEventsResponse",
                 await sdk.fine_tuning.jobs.with_raw_response.list_events(job_id, limit=100))
        line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}}
        batch_file = await sdk.files.create(file=("b.jsonl", jsonl([line])), purpose="batch")
        batch = await sdk.batches.with_raw_response.create(input_file_id=batch_file.id, completion_window="24h",
                                                           endpoint="/v1/chat/completions")
        conforms("Batch", batch)
        batch_id = batch.parse().id
        await wait_until(lambda: sdk.batches.retrieve(batch_id), lambda b: b.status == "completed")
        conforms("Batch", await sdk.batches.with_raw_response.retrieve(batch_id))
        conforms("ListBatchesResponse", await sdk.batches.with_raw_response.list(limit=100))
