"""Files and fine-tuning jobs of the OpenAI sandbox, driven through the real openai SDK."""

from __future__ import annotations

import json
import random
import re

import openai
import pytest

from tests.sandbox.openai_sandbox_support import (
    classification_format,
    client,
    cookbook_prompt_tokens,
    jsonl,
    wait_until,
)

# Label names that never occur in the texts: only a model that learned from the file can get them right.
VOCABULARY = {
    "Alpha": ["invoice", "charge", "card", "payment", "receipt"],
    "Beta": ["parcel", "courier", "tracking", "delivery", "warehouse"],
    "Gamma": ["password", "account", "locked", "email", "reset"],
}
FILLER = ["hello", "please", "today", "help", "thanks", "again", "my", "order"]
LABELS = list(VOCABULARY)


def ticket(rng: random.Random, label: str) -> str:
    words = rng.sample(VOCABULARY[label], 2) + rng.sample(FILLER, 4)
    rng.shuffle(words)
    return " ".join(words)


def training_rows(n: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        rows.append({"messages": [
            {"role": "system", "content": "Classify the ticket."},
            {"role": "user", "content": ticket(rng, label)},
            {"role": "assistant", "content": json.dumps({"label": label}, separators=(",", ":"))},
        ]})
    return rows


async def upload(sdk: openai.AsyncOpenAI, content: bytes, purpose: str = "fine-tune") -> str:
    return (await sdk.files.create(file=("train.jsonl", content), purpose=purpose)).id


async def finished(sdk: openai.AsyncOpenAI, job_id: str):
    return await wait_until(lambda: sdk.fine_tuning.jobs.retrieve(job_id),
                            lambda job: job.status in ("succeeded", "failed", "cancelled"))


async def test_files_round_trip(openai_sandbox):
    content = jsonl(training_rows(3))
    async with client(openai_sandbox) as sdk:
        created = await sdk.files.create(file=("train.jsonl", content), purpose="fine-tune")
        retrieved = await sdk.files.retrieve(created.id)
        downloaded = await sdk.files.content(created.id)
        with pytest.raises(openai.BadRequestError, match="purpose"):
            await sdk.files.create(file=("x.jsonl", content), purpose="assistants")
        with pytest.raises(openai.NotFoundError):
            await sdk.files.retrieve("file-missing")
    assert (retrieved.filename, retrieved.purpose, retrieved.bytes) == ("train.jsonl", "fine-tune", len(content))
    assert downloaded.content == content


async def test_job_succeeds_with_a_learned_ft_model(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600)
    rows = training_rows(60)
    rng = random.Random(99)
    held_out = [(ticket(rng, label), label) for label in LABELS for _ in range(10)]
    async with client(sandbox) as sdk:
        job = await sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini-2024-07-18", training_file=await upload(sdk, jsonl(rows)), suffix="tickets", seed=7,
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
            metadata={"run": "r1"})
        assert job.status == "validating_files" and job.fine_tuned_model is None
        done = await finished(sdk, job.id)
        models = {m.id: m for m in (await sdk.models.list()).data}

        async def accuracy(model: str) -> float:
            right = 0
            for text, label in held_out:
                answer = await sdk.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": text}],
                    response_format=classification_format(LABELS))
                right += json.loads(answer.choices[0].message.content)["label"] == label
            return right / len(held_out)

        tuned, base = await accuracy(done.fine_tuned_model), await accuracy("gpt-4o-mini-2024-07-18")
    assert done.status == "succeeded", done.error
    assert re.fullmatch(r"ft:gpt-4o-mini-2024-07-18:distill-sandbox:tickets:[a-z0-9]{8}", done.fine_tuned_model)
    assert done.hyperparameters.n_epochs == 2 and done.seed == 7 and done.metadata == {"run": "r1"}
    example_tokens = [cookbook_prompt_tokens("gpt-4o-mini", r["messages"]) - 3 for r in rows]
    assert done.trained_tokens == sum(example_tokens) * 2
    assert models[done.fine_tuned_model].shutdown_date == "2027-01-14"
    assert tuned >= 0.9 and base <= 0.6, (tuned, base)


async def test_events_are_paged_newest_first_with_metrics(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600)
    async with client(sandbox) as sdk:
        job = await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=await upload(
            sdk, jsonl(training_rows(30))), hyperparameters={"n_epochs": 4})
        done = await finished(sdk, job.id)
        everything = (await sdk.fine_tuning.jobs.list_events(job.id, limit=100)).data
        first = await sdk.fine_tuning.jobs.list_events(job.id, limit=5)
        rest = await sdk.fine_tuning.jobs.list_events(job.id, limit=100, after=first.data[-1].id)
        listed = [j.id async for j in sdk.fine_tuning.jobs.list()]
    assert done.status == "succeeded" and done.hyperparameters.n_epochs == 4
    assert [e.id for e in first.data + rest.data] == [e.id for e in everything]
    assert first.has_more and not rest.has_more
    assert everything[0].message == "The job has successfully completed"
    assert everything[-1].message == f"Created fine-tuning job: {job.id}"
    metrics = [e for e in reversed(everything) if e.type == "metrics"]
    assert len(metrics) >= 10
    steps = [e.data["step"] for e in metrics]
    assert steps == sorted(steps) and steps[-1] == metrics[-1].data["total_steps"] == 30 * 4
    assert metrics[-1].data["train_loss"] < metrics[0].data["train_loss"]
    assert re.fullmatch(r"Step \d+/120: training loss=\d+\.\d{4}", metrics[0].message)
    assert listed == [job.id]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"messages": [}\n', "Line 1 is not valid JSON"),
        (jsonl([{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}] * 10),
         "unrecognized role 'bot'"),
        (jsonl([{"messages": [{"role": "user", "content": "x"}]}] * 10), "the last message must be the assistant"),
        (jsonl(training_rows(5)), "has 5 example(s), but a fine-tuning file needs at least 10"),
    ],
)
async def test_bad_training_file_fails_the_job_with_a_clear_error(make_openai_sandbox, content, fragment):
    sandbox = await make_openai_sandbox(clock_speed=600)
    async with client(sandbox) as sdk:
        job = await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=await upload(sdk, content))
        done = await finished(sdk, job.id)
        events = (await sdk.fine_tuning.jobs.list_events(job.id)).data
    assert done.status == "failed" and done.fine_tuned_model is None and done.trained_tokens is None
    assert done.error.code == "invalid_training_file" and done.error.param == "training_file"
    assert fragment in done.error.message
    assert events[0].level == "error" and fragment in events[0].message


async def test_fail_jobs_with_fails_during_training(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600, fail_jobs_with="GPU node lost")
    async with client(sandbox) as sdk:
        job = await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=await upload(
            sdk, jsonl(training_rows(12))))
        done = await finished(sdk, job.id)
        events = (await sdk.fine_tuning.jobs.list_events(job.id, limit=100)).data
    assert done.status == "failed" and done.error.message == "GPU node lost"
    assert any(e.type == "metrics" for e in events) and events[0].level == "error"


async def test_cancel_stops_a_running_job(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=1)
    async with client(sandbox) as sdk:
        job = await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=await upload(
            sdk, jsonl(training_rows(12))))
        cancelled = await sdk.fine_tuning.jobs.cancel(job.id)
        events = (await sdk.fine_tuning.jobs.list_events(job.id)).data
        with pytest.raises(openai.BadRequestError, match="already cancelled"):
            await sdk.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.fine_tuned_model is None
    assert events[0].message == "Fine-tuning job cancelled"


async def test_job_create_refuses_bad_requests(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        batch_file = await upload(sdk, jsonl(training_rows(10)), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="not available for fine-tuning"):
            await sdk.fine_tuning.jobs.create(model="gpt-5", training_file=batch_file)
        with pytest.raises(openai.BadRequestError, match="upload it with purpose 'fine-tune'"):
            await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=batch_file)
        with pytest.raises(openai.BadRequestError, match="does not exist"):
            await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-nope")
        with pytest.raises(openai.BadRequestError, match="n_epochs"):
            await sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=await upload(sdk, b"{}"),
                                              hyperparameters={"n_epochs": 99})
        with pytest.raises(openai.NotFoundError):
            await sdk.fine_tuning.jobs.retrieve("ftjob-nope")
