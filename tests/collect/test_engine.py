"""The collection engine against the sandbox OpenAI server, through the real openai SDK."""

import asyncio
import time

from bot.collect.batch import RUNNING_STATUSES, BatchCollector
from bot.collect.engine import Collector
from bot.core.provider import ChatAnswer
from bot.costs.budget import Budget
from bot.prices.table import PriceTable
from tests.collect.helpers import CHOICES, make_task, paid_per_prompt, unlimited


async def _run(storage, name="tickets"):
    return await storage.runs.create(name=name, channel_id="C1", requester="U1", spec={})


async def test_every_answer_is_stored_with_tokens_cost_latency_and_provider_ids(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    task = make_task(run.id, 40)
    outcome = await collector_for(storage, openai_sandbox).collect(task, unlimited())
    assert (outcome.answered, outcome.failed, outcome.stopped) == (40, 0, "done")
    stored = await storage.completions.for_run(run.id)
    price = PriceTable.load().get("gpt-4o")
    usage = {r.messages_hash: r for r in openai_sandbox.requests if r.paid}
    for completion, request in zip(stored, task.requests, strict=True):
        assert completion.status == "ok" and completion.parsed_label in CHOICES
        assert completion.prompt_tokens == request.prompt_tokens  # our exact count equals the provider's
        assert completion.cost_micro_usd == price.cost_micro_usd(completion.prompt_tokens,
                                                                 completion.completion_tokens)
        assert completion.provider_completion_id.startswith("chatcmpl-") and completion.provider_request_id
        assert completion.latency_ms is not None
    assert len(usage) == 40
    assert outcome.spend_micro_usd == await storage.completions.spend_micro_usd(run.id)
    # store=True with metadata: the teacher's completions can be listed by run, as in OpenAI's dashboard
    listed = await collector_for(storage, openai_sandbox).provider.client.chat.completions.list(
        metadata={"distill_run": str(run.id)}, limit=100)
    assert len(listed.data) == 40


async def test_thousand_rows_with_server_errors_and_a_tight_token_limit_are_answered_or_failed_and_paid_once(
        collector_for, storage, make_openai_sandbox):
    # 20% of requests fail with 500/503, and the provider allows 20,000 tokens per (compressed, 2 s) minute.
    sandbox = await make_openai_sandbox(fault_rate=0.2, seed=3, tpm_limits={"gpt-4o": 20_000},
                                        rate_window_seconds=2.0)
    run = await _run(storage)
    task = make_task(run.id, 1000)
    collector = collector_for(storage, sandbox, concurrency=32, window_seconds=2.0)
    outcome = await collector.collect(task, unlimited())
    counts = await storage.completions.counts(run.id)
    assert sum(counts.values()) == 1000  # every row has a stored result
    assert outcome.answered + outcome.failed == 1000
    assert max(paid_per_prompt(sandbox).values()) == 1
    assert sum(1 for r in sandbox.requests if r.status in (500, 503)) > 100  # the faults really happened
    assert collector.limiters.for_model(sandbox.url, "gpt-4o").tokens_per_minute == 20_000


async def test_tight_tokens_per_minute_limit_is_kept_busy_without_429s(
        collector_for, storage, make_openai_sandbox):
    # Time is compressed: the sandbox's and the limiter's "minute" last 3 seconds.
    sandbox = await make_openai_sandbox(tpm_limits={"gpt-4o": 6_000}, rate_window_seconds=3.0)
    run = await _run(storage)
    task = make_task(run.id, 300)
    per_request = task.requests[0].prompt_tokens + task.max_completion_tokens
    collector = collector_for(storage, sandbox, tpm=1_000_000, window_seconds=3.0)
    started = time.monotonic()
    outcome = await collector.collect(task, unlimited())
    elapsed = time.monotonic() - started
    assert outcome.answered == 300
    # the limiter learned the provider's limit from the x-ratelimit headers
    assert collector.limiters.for_model(sandbox.url, "gpt-4o").tokens_per_minute == 6_000
    assert sum(1 for r in sandbox.requests if r.status == 429) <= 2
    # the run needed two full token allowances, so the limit really constrained it
    assert 300 * per_request >= 6_000 * 2 and elapsed > 3.0


async def test_a_row_that_keeps_failing_is_stored_as_failed_with_its_error(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    openai_sandbox.inject(outcome=500, count=3)
    collector = collector_for(storage, openai_sandbox, concurrency=1, max_attempts=3)
    outcome = await collector.collect(make_task(run.id, 3), unlimited())
    assert (outcome.failed, outcome.answered) == (1, 2)
    [failed] = [c for c in await storage.completions.for_run(run.id) if c.status == "failed"]
    assert failed.attempts == 3 and failed.error.startswith("HTTP 500")


async def test_429s_with_retry_after_are_waited_out_and_lose_nothing(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    openai_sandbox.inject(outcome=429, count=4, retry_after=1)
    collector = collector_for(storage, openai_sandbox, concurrency=4)
    outcome = await collector.collect(make_task(run.id, 20), unlimited())
    assert (outcome.answered, outcome.failed) == (20, 0)
    assert collector.limiters.for_model(openai_sandbox.url, "gpt-4o").stats.pauses >= 1
    assert max(paid_per_prompt(openai_sandbox).values()) == 1


async def test_malformed_bodies_and_timeouts_are_retried(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    openai_sandbox.inject(outcome="malformed", count=2)
    outcome = await collector_for(storage, openai_sandbox, concurrency=2).collect(make_task(run.id, 10),
                                                                                  unlimited())
    assert (outcome.answered, outcome.failed) == (10, 0)


async def test_a_rerun_and_an_identical_request_in_another_run_pay_nothing_again(
        collector_for, storage, openai_sandbox):
    first = await _run(storage, "first")
    collector = collector_for(storage, openai_sandbox)
    await collector.collect(make_task(first.id, 30), unlimited())
    paid_before = sum(paid_per_prompt(openai_sandbox).values())

    again = await collector.collect(make_task(first.id, 30), unlimited())
    assert again.already_answered == 30 and again.answered == 0

    second = await _run(storage, "second")
    reused = await collector.collect(make_task(second.id, 30), unlimited())
    assert reused.reused == 30 and reused.answered == 0
    assert sum(paid_per_prompt(openai_sandbox).values()) == paid_before
    assert await storage.completions.spend_micro_usd(second.id) == 0
    labels = {c.row_index: c.parsed_label for c in await storage.completions.for_run(first.id)}
    assert {c.row_index: c.parsed_label for c in await storage.completions.for_run(second.id)} == labels


async def test_the_budget_cap_stops_the_collection_before_spend_passes_it(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    task = make_task(run.id, 200)
    price = PriceTable.load().get("gpt-4o")
    one_row = price.cost_micro_usd(task.requests[0].prompt_tokens, task.max_completion_tokens)
    budget = Budget(cap_micro_usd=one_row * 25)
    outcome = await collector_for(storage, openai_sandbox).collect(task, budget)
    spent = await storage.completions.spend_micro_usd(run.id)
    assert outcome.stopped == "budget" and "cap" in outcome.message
    assert spent <= budget.cap_micro_usd and budget.spent_micro_usd == spent
    assert 20 <= outcome.answered < 200
    assert sum(paid_per_prompt(openai_sandbox).values()) == outcome.answered


async def test_cancel_stops_within_a_second_and_keeps_what_was_answered(collector_for, storage, make_openai_sandbox):
    sandbox = await make_openai_sandbox(latency_seconds=0.3)
    run = await _run(storage)
    cancel = asyncio.Event()
    collection = asyncio.create_task(
        collector_for(storage, sandbox, concurrency=4).collect(make_task(run.id, 500), unlimited(), cancel=cancel))
    await asyncio.sleep(1.0)
    cancel.set()
    asked = time.monotonic()
    outcome = await collection
    assert time.monotonic() - asked < 1.0
    assert outcome.stopped == "cancelled" and 0 < outcome.answered < 500
    assert len(await storage.completions.answered_rows(run.id, "train", "teacher")) == outcome.answered


async def test_a_wrong_api_key_stops_the_whole_collection_with_the_reason(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    collector = collector_for(storage, openai_sandbox, api_key="sk-wrong")
    outcome = await collector.collect(make_task(run.id, 50), unlimited())
    assert outcome.stopped == "fatal" and "401" in outcome.message
    assert await storage.completions.for_run(run.id) == []


async def test_progress_is_reported_with_totals_and_spend(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    seen = []

    async def on_progress(progress):
        seen.append(progress)

    collector = collector_for(storage, openai_sandbox, progress_seconds=0.05)
    await collector.collect(make_task(run.id, 60), unlimited(), on_progress=on_progress)
    assert seen and seen[-1].done == 60 and seen[-1].total == 60 and seen[-1].spend_micro_usd > 0


def test_a_refusal_or_an_answer_outside_the_choices_is_stored_as_invalid():
    task = make_task(1, 1)
    price = PriceTable.load().get("gpt-4o")
    refusal = ChatAnswer(content=None, refusal="I can't help with that.", prompt_tokens=30, completion_tokens=8,
                         latency_ms=5, request_id="req", completion_id="c1")
    stored = Collector._answered(task, task.requests[0], "h", 1, refusal, price)
    assert (stored.status, stored.parsed_label, stored.error) == ("invalid", None, "refusal: I can't help with that.")
    outside = ChatAnswer(content='{"label":"Kitchen"}', refusal=None, prompt_tokens=30, completion_tokens=6,
                         latency_ms=5, request_id="req", completion_id="c2")
    stored = Collector._answered(task, task.requests[0], "h", 1, outside, price)
    assert stored.status == "invalid" and stored.raw_output == '{"label":"Kitchen"}' and stored.cost_micro_usd > 0


async def test_batch_mode_stores_the_same_answers_as_live_mode_at_half_the_price(
        collector_for, storage, openai_sandbox):
    live_run, batch_run = await _run(storage, "live"), await _run(storage, "batch")
    collector = collector_for(storage, openai_sandbox)
    await collector.collect(make_task(live_run.id, 25), unlimited())
    batches = BatchCollector(storage, collector.provider.client, PriceTable.load())
    submitted = await batches.submit(make_task(batch_run.id, 25), unlimited())
    assert submitted.external_id and submitted.input_file_id
    record = submitted
    for _ in range(200):
        record = await batches.poll(await storage.batches.require(record.id))
        if record.status == "stored":
            break
        await asyncio.sleep(0.05)
    assert record.status == "stored"
    live = {c.row_index: c for c in await storage.completions.for_run(live_run.id)}
    batched = {c.row_index: c for c in await storage.completions.for_run(batch_run.id)}
    assert {i: c.parsed_label for i, c in batched.items()} == {i: c.parsed_label for i, c in live.items()}
    assert all(batched[i].request_hash == live[i].request_hash for i in live)
    for i, answer in batched.items():
        assert answer.prompt_tokens == live[i].prompt_tokens
        assert answer.cost_micro_usd <= live[i].cost_micro_usd // 2 + 1
    # resubmitting finds nothing left to ask
    assert await batches.submit(make_task(batch_run.id, 25), unlimited()) is None


async def test_an_expired_batch_keeps_its_explanation_and_the_rows_stay_unanswered(
        collector_for, storage, make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=600, expire_batches=True)
    run = await _run(storage)
    collector = collector_for(storage, sandbox)
    batches = BatchCollector(storage, collector.provider.client, PriceTable.load())
    record = await batches.submit(make_task(run.id, 10), unlimited())
    for _ in range(200):
        record = await batches.poll(await storage.batches.require(record.id))
        if record.status not in RUNNING_STATUSES:
            break
        await asyncio.sleep(0.05)
    assert record.status == "expired" and "expired" in record.error and "collect again" in record.error
    assert await storage.batches.active() == []


async def test_a_batch_whose_id_was_never_stored_is_taken_up_by_the_next_submit_and_sent_once(
        collector_for, storage, openai_sandbox):
    run = await _run(storage)
    batches = BatchCollector(storage, collector_for(storage, openai_sandbox).provider.client, PriceTable.load())

    def creates() -> int:
        return sum(1 for r in openai_sandbox.requests if (r.method, r.path, r.status) == ("POST", "/v1/batches", 200))

    # Stopped after the provider made the batch, before its id was stored: found by its key and adopted.
    train = make_task(run.id, 12)
    sent = await batches.submit(train, unlimited())
    await storage.db.execute("UPDATE batches SET external_id = NULL, status = 'uploaded' WHERE id = ?", (sent.id,))
    adopted = await batches.submit(train, unlimited())
    assert (adopted.id, adopted.external_id) == (sent.id, sent.external_id) and creates() == 1

    # Stopped between the upload and the create call, or before the upload: the same record goes on.
    for status, split in (("uploaded", "eval"), ("created", "validation")):
        task = make_task(run.id, 8, split=split)
        record = await storage.batches.create(run_id=run.id, split=task.split, role=task.role, model=task.model)
        await storage.batches.update(record.id, status=status)
        finished = await batches.submit(task, unlimited())
        assert finished.id == record.id and finished.external_id
    assert creates() == 3
    assert len(await storage.batches.for_run(run.id)) == 3
    remote = await batches.client.batches.retrieve(adopted.external_id)
    assert remote.metadata["distill_batch_key"] == f"{sent.id}@{sent.created_at}"


async def test_a_batch_create_whose_answer_is_lost_is_found_not_made_twice(collector_for, storage, openai_sandbox):
    run = await _run(storage)
    batches = BatchCollector(storage, collector_for(storage, openai_sandbox).provider.client, PriceTable.load())
    openai_sandbox.inject("/v1/batches", "lost", method="POST")  # the batch is made, then the reply is a 502
    record = await batches.submit(make_task(run.id, 10), unlimited())
    posts = [r for r in openai_sandbox.requests if (r.method, r.path) == ("POST", "/v1/batches")]
    assert [r.status for r in posts] == [502]  # not asked again: the look-up found it
    [remote] = [b async for b in batches.client.batches.list()]
    assert record.external_id == remote.id
