"""Every request shape the sandbox serves, sent by the real openai SDK to Prism mocking OpenAI's own spec.

A shape that breaks the spec comes back 422; so do the deliberately bad requests at the end, which proves the
operation's schema was compiled (Prism skips a schema it cannot compile and then accepts anything).
"""

from __future__ import annotations

import jsonschema
import openai
import pytest

from bot.prices import PriceTable
from bot.provider import ChatProvider
from bot.reasoning import answer_budget
from tests.contract.prism import nullable_to_any_of
from tests.sandbox.openai_sandbox_support import classification_format, jsonl

pytestmark = pytest.mark.contract

CHAT = {"model": "gpt-4o-2024-08-06",
        "messages": [{"role": "system", "content": "Classify the ticket."},
                     {"role": "user", "content": "I was charged twice."}]}
TRAINING = jsonl([{"messages": [{"role": "user", "content": f"ticket {i}"},
                                {"role": "assistant", "content": '{"label":"Billing"}'}]} for i in range(10)])


@pytest.fixture
async def sdk(prism_url):
    async with openai.AsyncOpenAI(base_url=prism_url, api_key="sk-contract", max_retries=0) as client:
        yield client


def test_typeless_nullable_becomes_any_of_null():
    spec = {"a": {"nullable": True, "description": "d", "$ref": "#/x"}, "b": {"type": "string", "nullable": True}}
    assert nullable_to_any_of(spec) == {
        "a": {"description": "d", "anyOf": [{"$ref": "#/x"}, {"type": "null"}]},
        "b": {"type": "string", "nullable": True},
    }


async def test_chat_completion_shapes(sdk):
    await sdk.chat.completions.create(**CHAT, response_format=classification_format(["Billing", "Shipping"]),
                                      store=True, metadata={"run": "r1", "row": "7"}, max_completion_tokens=20,
                                      seed=0, temperature=0)
    await sdk.chat.completions.create(**CHAT, response_format={"type": "json_object"}, max_tokens=20)
    await sdk.chat.completions.list(metadata={"run": "r1"}, model="gpt-4o", after="chatcmpl-abc", limit=20,
                                    order="asc")
    await sdk.chat.completions.retrieve("chatcmpl-abc")


async def test_the_bots_chat_requests_with_their_budget_effort_and_temperature_fit_the_spec(prism_url):
    """What bot/provider.py sends for each kind of model: a reasoning teacher (max_completion_tokens and
    reasoning_effort), one at effort none (and temperature), a model that does not reason (temperature only)."""
    prices = PriceTable.load()
    provider = ChatProvider(base_url=prism_url, api_key="sk-contract", store=True)
    try:
        for model, effort in (("gpt-6.2-sol", None), ("gpt-6.1-terra", "high"), ("gpt-6-luna", None),
                              ("gpt-4o-mini-2024-07-18", None)):
            budget = answer_budget(model, prices.get(model), answer_tokens=5, effort=effort)
            answer = await provider.complete(model=model, messages=CHAT["messages"], metadata={"run": "r1"},
                                             response_format=classification_format(["Billing", "Shipping"]),
                                             options=budget.request_options())
            assert answer.completion_id is not None
    finally:
        await provider.close()


async def test_reasoning_fields_are_checked_by_the_mock(sdk):
    """Prism knows the new fields: a value outside ReasoningEffort's enum is refused, so the test above proves
    something."""
    with pytest.raises(openai.UnprocessableEntityError):
        await sdk.chat.completions.create(**CHAT, reasoning_effort="turbo", max_completion_tokens=20)
    with pytest.raises(openai.UnprocessableEntityError):
        await sdk.chat.completions.create(**CHAT, reasoning_effort="low", max_completion_tokens="many")


def test_a_batch_line_body_fits_the_chat_request_schema(spec):
    """Batch lines carry the same fields as live requests (bot/batch.py), checked against the spec's schema."""
    prices = PriceTable.load()
    budget = answer_budget("gpt-6.2-sol", prices.get("gpt-6.2-sol"), answer_tokens=5, effort="medium")
    body = {**CHAT, "model": "gpt-6.2-sol", "response_format": classification_format(["Billing", "Shipping"]),
            **budget.request_options(), "store": True, "metadata": {"distill_run": "1"}}
    assert body["reasoning_effort"] == "medium" and body["max_completion_tokens"] > 16_384
    schema = {"$ref": "#/components/schemas/CreateChatCompletionRequest", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**body, "reasoning_effort": "turbo"})


async def test_file_shapes(sdk):
    created = await sdk.files.create(file=("train.jsonl", TRAINING), purpose="fine-tune")
    await sdk.files.create(file=("batch.jsonl", b"{}\n"), purpose="batch")
    await sdk.files.retrieve(created.id)
    # Prism negotiates the response by Accept; the SDK's default Accept matches no example of this operation.
    await sdk.files.content(created.id, extra_headers={"Accept": "application/json"})


async def test_fine_tuning_shapes(sdk):
    job = await sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file="file-abc", validation_file="file-def", suffix="tickets",
        seed=7, metadata={"run": "r1"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": "auto",
                                                                          "learning_rate_multiplier": "auto"}}})
    await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-abc", hyperparameters={"n_epochs": 2})
    await sdk.fine_tuning.jobs.retrieve(job.id)
    await sdk.fine_tuning.jobs.list(limit=10, after="ftjob-abc", metadata={"run": "r1"})
    await sdk.fine_tuning.jobs.list_events(job.id, after="ftevent-abc", limit=50)
    await sdk.fine_tuning.jobs.cancel(job.id)


async def test_batch_and_model_shapes(sdk):
    batch = await sdk.batches.create(input_file_id="file-abc", endpoint="/v1/chat/completions",
                                     completion_window="24h", metadata={"run": "r1"})
    await sdk.batches.retrieve(batch.id)
    await sdk.batches.list(limit=100)
    await sdk.batches.list(limit=100, after="batch_abc")
    await sdk.batches.cancel(batch.id)
    await sdk.models.list()
    await sdk.models.retrieve("gpt-4o-mini")


async def test_embedding_shapes(sdk):
    """What bot/embeddings.py sends (base64, a list of texts, optionally dimensions), and token arrays."""
    await sdk.embeddings.create(model="text-embedding-3-small", input=["ticket one", "ticket two"],
                                encoding_format="base64")
    await sdk.embeddings.create(model="text-embedding-3-large", input="ticket", dimensions=256,
                                encoding_format="float")
    await sdk.embeddings.create(model="text-embedding-3-small", input=[[1212, 318, 257], [1332, 13]])


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda sdk: sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "robot", "content": "x"}]), id="chat-bad-role"),
        pytest.param(lambda sdk: sdk.chat.completions.create(**CHAT, response_format={"type": "xml"}),
                     id="chat-bad-response-format"),
        pytest.param(lambda sdk: sdk.chat.completions.list(order="sideways"), id="chat-list-bad-order"),
        pytest.param(lambda sdk: sdk.files.create(file=("x.jsonl", b"{}"), purpose="nonsense"),
                     id="files-bad-purpose"),
        pytest.param(lambda sdk: sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file="file-abc",
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}),
            id="fine-tuning-zero-epochs"),
        pytest.param(lambda sdk: sdk.batches.create(input_file_id="file-abc", endpoint="/v1/chat/completions",
                                                    completion_window="1h"), id="batch-bad-window"),
        pytest.param(lambda sdk: sdk.embeddings.create(model="text-embedding-3-small", input="x",
                                                       encoding_format="int8"), id="embeddings-bad-format"),
        pytest.param(lambda sdk: sdk.embeddings.create(model="text-embedding-3-small", input="x", dimensions=0),
                     id="embeddings-zero-dimensions"),
    ],
)
async def test_bad_request_shapes_are_refused(sdk, send):
    with pytest.raises(openai.UnprocessableEntityError):
        await send(sdk)
