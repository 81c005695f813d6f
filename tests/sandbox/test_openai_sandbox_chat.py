"""Chat completions of the OpenAI sandbox, driven through the real openai SDK over HTTP."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import json
from collections import Counter

import aiohttp
import jsonschema
import openai
import pytest

from bot.prompts.encodings import encoding_for_model
from tests.sandbox.openai_sandbox_support import classification_format, client, cookbook_prompt_tokens

TICKET_LABELS = ["Billing", "Shipping", "Refund", "Login"]


async def test_structured_output_validates_and_usage_matches_cookbook_formula(openai_sandbox):
    messages = [
        {"role": "system", "content": "You sort support tickets."},
        {"role": "user", "content": "I was charged twice on my last invoice, please fix the billing.", "name": "ana"},
    ]
    response_format = classification_format(TICKET_LABELS)
    async with client(openai_sandbox) as sdk:
        for model in ("gpt-4o", "gpt-4o-mini-2024-07-18"):
            answer = await sdk.chat.completions.create(model=model, messages=messages, response_format=response_format)
            content = answer.choices[0].message.content
            jsonschema.validate(json.loads(content), response_format["json_schema"]["schema"])
            assert content == json.dumps(json.loads(content), separators=(",", ":"))
            assert answer.usage.prompt_tokens == cookbook_prompt_tokens(model, messages)
            assert answer.usage.completion_tokens == len(encoding_for_model(model).encode(content))
    assert answer.model == "gpt-4o-mini-2024-07-18"


async def test_teacher_reads_evidence_and_aliases_resolve_to_snapshots(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        answer = await sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "My parcel shipping is late, where is the package?"}],
            response_format=classification_format(TICKET_LABELS),
        )
    assert json.loads(answer.choices[0].message.content) == {"label": "Shipping"}
    assert answer.model == "gpt-4o-2024-08-06"


async def test_any_strict_schema_gets_a_valid_answer(openai_sandbox):
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["Red", "White"]},
            "reason": {"type": "string"},
            "score": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["label", "reason", "score", "tags", "note"],
        "additionalProperties": False,
        "$defs": {"tag": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
                          "additionalProperties": False}},
    }
    async with client(openai_sandbox) as sdk:
        answer = await sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "A crisp white with citrus. Which colour?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "wine", "strict": True, "schema": schema}},
        )
    value = json.loads(answer.choices[0].message.content)
    jsonschema.validate(value, schema)
    assert value["label"] == "White"


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]},
         "'additionalProperties' is required to be supplied and to be false"),
        ({"type": "object", "properties": {"label": {"type": "string"}, "why": {"type": "string"}},
          "required": ["label"], "additionalProperties": False}, "Missing 'why'"),
        ({"type": "object", "properties": {"inner": {"type": "object", "properties": {}, "required": []}},
          "required": ["inner"], "additionalProperties": False}, "context=('properties', 'inner')"),
    ],
)
async def test_non_strict_schema_is_refused_like_openai(openai_sandbox, schema, fragment):
    async with client(openai_sandbox) as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                response_format={"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": schema}},
            )
    assert caught.value.body["type"] == "invalid_request_error"
    assert fragment in caught.value.body["message"]
    assert not openai_sandbox.requests.paid()


async def test_choice_list_in_prompt_is_not_evidence(openai_sandbox):
    choices = ["Chardonnay", "Pinot Noir", "Riesling", "Gamay"]
    prompt = ("Guess the grape of this wine: a light red with cherry and pinot noir character. "
              f"Pick one of: {', '.join(choices)}. Answer with the name only.")
    async with client(openai_sandbox) as sdk:
        answer = await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prompt}],
                                                   response_format=classification_format(choices))
        plain = await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prompt}])
    assert json.loads(answer.choices[0].message.content)["label"] == "Pinot Noir"
    assert plain.choices[0].message.content == "Pinot Noir"


@pytest.fixture
def wine_reviews(shared_dir) -> tuple[list[dict], list[str]]:
    """160 French wine reviews of the 8 commonest varieties, and those varieties."""
    with open(shared_dir / "data" / "wine-reviews-france.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    varieties = [v for v, _ in Counter(r["variety"] for r in rows).most_common(8)]
    return [r for r in rows if r["variety"] in varieties][:160], varieties


async def test_teacher_is_clearly_better_than_base_student_on_wine_reviews(openai_sandbox, wine_reviews):
    sample, varieties = wine_reviews
    response_format = classification_format(varieties)

    async def label(sdk: openai.AsyncOpenAI, model: str, row: dict) -> str:
        prompt = (f"This wine is {row['title']}. It is described as: {row['description']} "
                  f"Pick one of: {', '.join(varieties)}.")
        answer = await sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                   response_format=response_format)
        return json.loads(answer.choices[0].message.content)["label"]

    accuracy, first = {}, {}
    async with client(openai_sandbox) as sdk:
        for model in ("gpt-4o", "gpt-4o-mini"):
            labels = await asyncio.gather(*(label(sdk, model, r) for r in sample))
            accuracy[model] = sum(p == r["variety"] for p, r in zip(labels, sample, strict=True)) / len(sample)
            first[model] = labels[0]
        assert first["gpt-4o"] == await label(sdk, "gpt-4o", sample[0])  # deterministic
    assert accuracy["gpt-4o"] >= accuracy["gpt-4o-mini"] + 0.1, accuracy
    assert accuracy["gpt-4o"] > 1 / len(varieties) + 0.15, accuracy


async def test_store_metadata_list_filter_paging_and_retrieve(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        created = []
        for i in range(5):
            answer = await sdk.chat.completions.create(
                model="gpt-4o-mini" if i == 4 else "gpt-4o", messages=[{"role": "user", "content": f"ticket {i}"}],
                store=True, metadata={"run": "r1" if i < 3 else "r2", "row": str(i)})
            created.append(answer.id)
        unstored = await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])

        first = await sdk.chat.completions.list(metadata={"run": "r1"}, limit=2)
        second = await sdk.chat.completions.list(metadata={"run": "r1"}, limit=2, after=first.data[-1].id)
        by_model = [c.id async for c in sdk.chat.completions.list(model="gpt-4o-mini")]
        newest = await sdk.chat.completions.list(order="desc", limit=2)
        stored = await sdk.chat.completions.retrieve(created[3])
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.retrieve(unstored.id)
    assert [c.id for c in first.data] == created[:2] and first.has_more
    assert [c.id for c in second.data] == created[2:3] and not second.has_more
    assert by_model == created[4:]
    assert [c.id for c in newest.data] == created[:2:-1][:2] and newest.has_more
    assert stored.metadata == {"run": "r2", "row": "3"}


async def test_bad_requests_get_openai_errors_and_are_not_paid(make_openai_sandbox):
    sandbox = await make_openai_sandbox(shutdown_dates={"gpt-4o-mini": "2024-01-01"})
    user = [{"role": "user", "content": "hello"}]
    async with client(sandbox) as sdk:
        with pytest.raises(openai.NotFoundError) as unknown:
            await sdk.chat.completions.create(model="gpt-9", messages=user)
        with pytest.raises(openai.NotFoundError) as retired:
            await sdk.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=user)
        with pytest.raises(openai.BadRequestError) as empty:
            await sdk.chat.completions.create(model="gpt-4o", messages=[])
        with pytest.raises(openai.BadRequestError) as role:
            await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "bot", "content": "x"}])
        with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
            await sdk.chat.completions.create(model="gpt-4o", messages=user, response_format={"type": "json_object"})
    assert unknown.value.code == "model_not_found"
    assert "shut down on 2024-01-01" in retired.value.message
    assert empty.value.param == "messages"
    assert role.value.param == "messages[0].role"
    assert [r.status for r in sandbox.requests] == [404, 404, 400, 400, 400]
    assert not sandbox.requests.paid()


async def test_max_tokens_cuts_the_answer_like_openai(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        answer = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "billing"}], max_completion_tokens=2,
            response_format=classification_format(TICKET_LABELS))
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 2


async def test_request_log_records_what_was_asked_and_paid(openai_sandbox):
    messages = [{"role": "user", "content": "refund my order"}]
    async with client(openai_sandbox) as sdk:
        answer = await sdk.chat.completions.create(model="gpt-4o", messages=messages, metadata={"row": "7"})
    record = openai_sandbox.requests[-1]
    assert (record.method, record.path, record.status, record.model) == ("POST", "/v1/chat/completions", 200,
                                                                         "gpt-4o")
    expected_hash = hashlib.sha256(json.dumps(messages, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert record.messages_hash == expected_hash
    assert record.last_user_text == "refund my order" and record.metadata == {"row": "7"}
    assert record.usage["prompt_tokens"] == answer.usage.prompt_tokens and record.paid

    root = openai_sandbox.url.removesuffix("/v1")
    async with aiohttp.ClientSession() as http:
        async with http.get(root + "/sandbox/requests") as response:
            served = await response.json()
        async with http.post(root + "/sandbox/reset") as response:
            assert response.status == 200
    assert served[-1]["request_id"] == record.request_id and served[-1]["paid"] is True
    assert len(openai_sandbox.requests) == 0


async def test_wrong_or_missing_key_is_401_without_echoing_the_key(openai_sandbox):
    async with client(openai_sandbox, api_key="sk-live-SECRET123") as sdk:
        with pytest.raises(openai.AuthenticationError) as wrong:
            await sdk.models.list()
    assert wrong.value.code == "invalid_api_key"
    assert "SECRET" not in wrong.value.message
    async with aiohttp.ClientSession() as http, http.get(openai_sandbox.url + "/models") as response:
        body = await response.json()
    assert response.status == 401 and body["error"]["code"] == "invalid_api_key"


async def test_models_list_reports_shutdown_dates(make_openai_sandbox):
    sandbox = await make_openai_sandbox(shutdown_dates={"gpt-5": "2030-01-01"})
    async with client(sandbox) as sdk:
        models = {m.id: m for m in (await sdk.models.list()).data}
        retrieved = await sdk.models.retrieve("gpt-4.1-mini")
    assert models["gpt-4o"].shutdown_date == "2027-01-14"
    assert models["gpt-4o-mini-2024-07-18"].shutdown_date == "2027-01-14"
    assert models["gpt-5"].shutdown_date == "2030-01-01"
    assert models["gpt-5-mini"].shutdown_date == "2026-12-11"
    assert models["gpt-4.1-nano-2025-04-14"].shutdown_date == "2026-10-23"
    assert retrieved.shutdown_date == "2027-01-14"
    for current in ("gpt-6.2-astra", "gpt-6.2-sol", "gpt-6.1-sol", "gpt-6.1-terra", "gpt-6-luna",
                    "text-embedding-3-small", "text-embedding-3-large"):
        assert models[current].shutdown_date is None


async def test_the_sandbox_clock_decides_which_models_are_past_their_date(make_openai_sandbox, clock):
    sandbox = await make_openai_sandbox()
    messages = [{"role": "user", "content": "billing"}]
    async with client(sandbox) as sdk:
        with pytest.raises(openai.NotFoundError, match="was shut down on 2026-10-23"):
            await sdk.chat.completions.create(model="gpt-4.1-nano", messages=messages)
        await sdk.chat.completions.create(model="gpt-5-mini", messages=messages)  # 2026-11-29: still served
        clock.advance(dt.timedelta(days=13))
        with pytest.raises(openai.NotFoundError, match="was shut down on 2026-12-11"):
            await sdk.chat.completions.create(model="gpt-5-mini", messages=messages)
        await sdk.chat.completions.create(model="gpt-6-luna", messages=messages)
