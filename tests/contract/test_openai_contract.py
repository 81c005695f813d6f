"""Every request shape the sandbox serves, sent by the real openai SDK to Prism mocking OpenAI's own spec.

A shape that breaks the spec comes back 422; so do the deliberately bad requests at the end, which proves the
operation's schema was compiled (Prism skips a schema it cannot compile and then accepts anything).
"""

from __future__ import annotations

import openai
import pytest

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
    ],
)
async def test_bad_request_shapes_are_refused(sdk, send):
    with pytest.raises(openai.UnprocessableEntityError):
        await send(sdk)
