"""Stored chat completions in the OpenAI sandbox: only store=true requests, their messages in pages, 30 days by the
sandbox's clock; and the fault knob that degrades a model."""

from __future__ import annotations

import datetime as dt

import openai
import pytest

from tests.sandbox.openai_sandbox_support import classification_format, client

SYSTEM = {"role": "system", "content": "Classify the ticket."}


async def test_only_stored_requests_are_kept_with_their_messages_in_pages(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        stored = await sdk.chat.completions.create(
            model="gpt-4o", store=True, metadata={"app": "helpdesk"},
            messages=[SYSTEM, {"role": "user", "content": [{"type": "text", "text": "charged twice"}]},
                      {"role": "assistant", "content": "Which card?"}, {"role": "user", "content": "the visa"}])
        await sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "not kept"}])
        listed = [c.id async for c in sdk.chat.completions.list()]
        first = await sdk.chat.completions.messages.list(stored.id, limit=3)
        rest = await sdk.chat.completions.messages.list(stored.id, limit=3, after=first.data[-1].id)
        newest = await sdk.chat.completions.messages.list(stored.id, order="desc", limit=1)
        every = [m async for m in sdk.chat.completions.messages.list(stored.id, limit=1)]
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.messages.list("chatcmpl-unknown")
    assert listed == [stored.id]
    assert [(m.id, m.role, m.content) for m in first.data] == [
        (f"{stored.id}-0", "system", "Classify the ticket."), (f"{stored.id}-1", "user", "charged twice"),
        (f"{stored.id}-2", "assistant", "Which card?")]
    assert first.data[1].content_parts[0].text == "charged twice" and first.data[0].content_parts is None
    assert first.has_more and [m.content for m in rest.data] == ["the visa"] and not rest.has_more
    assert [m.content for m in newest.data] == ["the visa"]
    assert len(every) == 4  # the SDK's auto-paging follows `after` to the end


async def test_stored_completions_are_kept_30_days_by_the_sandboxs_clock(openai_sandbox, clock):
    async with client(openai_sandbox) as sdk:
        old = await sdk.chat.completions.create(model="gpt-4o", store=True,
                                                messages=[{"role": "user", "content": "old ticket"}])
        clock.advance(dt.timedelta(days=20))
        recent = await sdk.chat.completions.create(model="gpt-4o", store=True,
                                                   messages=[{"role": "user", "content": "new ticket"}])
        clock.advance(dt.timedelta(days=10, minutes=1))
        kept = [c.id async for c in sdk.chat.completions.list()]
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.retrieve(old.id)
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.messages.list(old.id)
        assert (await sdk.chat.completions.retrieve(recent.id)).id == recent.id
    assert kept == [recent.id]


async def test_list_orders_by_creation_time_and_filters_by_model_and_every_metadata_pair(openai_sandbox, clock):
    async with client(openai_sandbox) as sdk:
        made = []
        for i, (model, role) in enumerate([("gpt-4o", "teacher"), ("gpt-4o-mini", "student_base"),
                                           ("gpt-4o", "teacher")]):
            made.append((await sdk.chat.completions.create(
                model=model, store=True, metadata={"distill_run": "tickets", "role": role},
                messages=[{"role": "user", "content": f"ticket {i}"}])).id)
            clock.advance(dt.timedelta(seconds=5))
        teacher = [c.id async for c in sdk.chat.completions.list(
            metadata={"distill_run": "tickets", "role": "teacher"})]
        snapshot = [c.id async for c in sdk.chat.completions.list(model="gpt-4o-mini-2024-07-18")]
        newest_first = await sdk.chat.completions.list(order="desc", limit=2)
        nothing = await sdk.chat.completions.list(metadata={"distill_run": "other"})
    assert teacher == [made[0], made[2]]
    assert snapshot == [made[1]]
    assert [c.id for c in newest_first.data] == [made[2], made[1]] and newest_first.has_more
    assert nothing.data == [] and not nothing.has_more


async def test_a_degraded_model_answers_that_share_of_its_prompts_differently(make_openai_sandbox):
    sandbox = await make_openai_sandbox(seed=0)
    choices = ["Billing", "Shipping", "Login", "Hardware"]
    prompts = [f"Ticket {i}: my invoice shows a charge for order {i}" for i in range(60)]

    async def labels() -> list[str]:
        async with client(sandbox) as sdk:
            answers = [await sdk.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": p}],
                response_format=classification_format(choices)) for p in prompts]
        return [a.choices[0].message.content for a in answers]

    before = await labels()
    sandbox.degrade("gpt-4o", 0.5)
    during = await labels()
    sandbox.degrade("gpt-4o", 0.0)
    after = await labels()
    changed = sum(a != b for a, b in zip(before, during, strict=True))
    assert 15 <= changed <= 45, changed  # about half, picked by the prompt
    assert after == before
    with pytest.raises(ValueError):
        sandbox.degrade("gpt-4o", 1.5)
