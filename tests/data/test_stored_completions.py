"""Reading the provider's stored completions back (against the OpenAI sandbox), and the filters typed in Slack."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.core.errors import SpecError, StateError
from bot.data.stored_completions import (
    StoredFilter,
    counts_by_metadata,
    examples_of,
    list_stored,
    parse_filter,
    retention_warning,
)
from bot.runs.watch import parse_watch
from tests.sandbox.openai_sandbox_support import client


def test_filters_are_parsed_and_every_mistake_is_named():
    wanted = parse_filter(["model=gpt-6.2-sol", "metadata.distill_run=tickets", "metadata.role=teacher",
                           "since=2026-11-01", "limit=50"])
    assert wanted == StoredFilter("gpt-6.2-sol", {"distill_run": "tickets", "role": "teacher"},
                                  dt.date(2026, 11, 1), 50)
    assert parse_filter(wanted.to_args()) == wanted
    for bad, problem in (("since=yesterday", "is not a date"), ("limit=0", "from 1 to 20,000"),
                         ("colour=red", "is not a filter of stored completions"), ("metadata.=x", "is not a filter")):
        with pytest.raises(SpecError, match=problem):
            parse_filter([bad])


def test_watch_settings_are_parsed_and_checked():
    asked = parse_watch(["every=2w", "sample=50", "alert=85%", "cap=12.50", "metadata.app=helpdesk"])
    assert (asked.every_seconds, asked.sample, asked.alert_below, asked.cap_micro_usd, asked.metadata) == (
        14 * 86400, 50, 0.85, 12_500_000, {"app": "helpdesk"})
    assert parse_watch(["alert=0.9"]).alert_below == 0.9
    for bad, problem in (("every=30m", "an hour or more"), ("sample=0", "from 1 to 2,000"),
                         ("alert=150%", "is not a score"), ("model=x", "is not a filter")):
        with pytest.raises(SpecError, match=problem):
            parse_watch([bad])


async def test_the_newest_matching_completions_since_a_day_with_their_messages(openai_sandbox, clock):
    async with client(openai_sandbox) as sdk:
        made = []
        for day in range(4):
            made.append(await sdk.chat.completions.create(
                model="gpt-4o", store=True, metadata={"app": "helpdesk", "day": str(day)},
                messages=[{"role": "system", "content": "Sort."}, {"role": "user", "content": f"ticket {day}"}]))
            clock.advance(dt.timedelta(days=1))
        await sdk.chat.completions.create(model="gpt-4o", store=True, metadata={"app": "other"},
                                          messages=[{"role": "user", "content": "not this app"}])
        today = clock.today()
        since = parse_filter(["metadata.app=helpdesk", f"since={(today - dt.timedelta(days=3)).isoformat()}"])
        found = await list_stored(sdk, since)
        two = await list_stored(sdk, parse_filter(["metadata.app=helpdesk", "limit=2"]))
        examples = await examples_of(sdk, found)
        clock.advance(dt.timedelta(days=28))  # made[1] and made[2] are now past 30 days
        gone = await examples_of(sdk, found)
    assert [c.id for c in found] == [made[3].id, made[2].id, made[1].id]  # newest first, none before `since`
    assert [c.id for c in two] == [made[3].id, made[2].id]
    assert [(e.system, e.user, e.where) for e in examples.examples] == [
        ("Sort.", f"ticket {day}", made[day].id) for day in (3, 2, 1)]
    assert counts_by_metadata(found)["metadata.app"] == {"helpdesk": 3}
    assert [u.reason for u in gone.unusable] == ["no longer stored (kept 30 days)"] * 2 and len(gone.examples) == 1
    assert "is deleted by the provider on" in retention_warning(found, today)


async def test_a_list_the_provider_refuses_is_named_with_its_status(make_openai_sandbox):
    sandbox = await make_openai_sandbox()
    sandbox.inject("/v1/chat/completions", 500, count=10, method="GET")
    async with client(sandbox) as sdk:
        with pytest.raises(StateError, match="Listing stored completions failed: HTTP 500"):
            await list_stored(sdk, StoredFilter())
