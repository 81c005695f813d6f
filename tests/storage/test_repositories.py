"""Each repository stores and returns its records unchanged."""

import asyncio
from datetime import UTC, datetime

from storage.completions import Completion
from storage.runs import RunRow


async def _run(storage, name="wine", channel="C1"):
    return await storage.runs.create(name=name, channel_id=channel, requester="U1", spec={"label": "variety"})


async def test_datasets_round_trip_and_same_bytes_are_recognized(storage):
    rows = [{"description": "Crisp, é 🍷", "variety": "Riesling"}, {"description": None, "variety": "Gamay"}]
    kwargs = dict(sha256="ab" * 32, filename="wine.csv", size_bytes=120, encoding="utf-8", delimiter=",",
                  columns=["description", "variety"], profile={"rows": 2})
    first = await storage.datasets.create(rows=rows, **kwargs)
    assert first.row_count == 2 and first.columns == ["description", "variety"] and first.profile == {"rows": 2}
    assert await storage.datasets.rows(first.id) == {0: rows[0], 1: rows[1]}
    assert await storage.datasets.rows(first.id, [1]) == {1: rows[1]}
    again = await storage.datasets.create(rows=[{"other": 1}], **kwargs)
    assert again.id == first.id
    assert (await storage.datasets.get_by_sha256("ab" * 32)).id == first.id


async def test_runs_round_trip_with_split_rows(storage):
    run = await _run(storage)
    assert (run.name, run.channel_id, run.state, run.spec) == ("wine", "C1", "created", {"label": "variety"})
    updated = await storage.runs.update(run.id, state="ready", thread_ts="111.222", card_ts="111.222",
                                        spec={"label": "x"})
    assert (updated.state, updated.thread_ts, updated.spec) == ("ready", "111.222", {"label": "x"})
    assert (await storage.runs.by_name("C1", "wine")).id == run.id
    assert await storage.runs.by_name("C2", "wine") is None
    assert (await storage.runs.by_thread("C1", "111.222")).id == run.id
    rows = [RunRow("train", 0, "h0", "a"), RunRow("eval", 1, "h1", None)]
    await storage.runs.replace_rows(run.id, rows)
    assert await storage.runs.rows(run.id) == rows
    assert await storage.runs.rows(run.id, "eval") == [rows[1]]
    assert [r.id for r in await storage.runs.in_states(["ready"])] == [run.id]


async def test_completions_round_trip_and_reuse_lookup(storage):
    run = await _run(storage)
    answer = Completion(run_id=run.id, row_index=3, split="train", role="teacher", model="gpt-4o",
                        request_hash="h", status="ok", raw_output='{"label":"a"}', parsed_label="a",
                        prompt_tokens=100, completion_tokens=7, cost_micro_usd=320, latency_ms=850,
                        provider_request_id="req_1", provider_completion_id="chatcmpl-1", attempts=2)
    await storage.completions.save(answer)
    [stored] = await storage.completions.for_run(run.id)
    assert {**stored.__dict__, "id": None, "created_at": ""} == {**answer.__dict__}
    reusable = await storage.completions.paid_answers(["h", "unknown"])
    assert list(reusable) == ["h"] and reusable["h"].provider_completion_id == "chatcmpl-1"
    assert await storage.completions.answered_rows(run.id, "train", "teacher") == {3}
    assert await storage.completions.spend_micro_usd(run.id) == 320
    failed = Completion(run_id=run.id, row_index=4, split="train", role="teacher", model="gpt-4o",
                        request_hash="h4", status="failed", error="HTTP 500", attempts=5)
    await storage.completions.save(failed)
    assert await storage.completions.answered_rows(run.id, "train", "teacher") == {3}
    assert await storage.completions.counts(run.id) == {("train", "teacher", "ok"): 1,
                                                       ("train", "teacher", "failed"): 1}
    student = Completion(run_id=run.id, row_index=3, split="eval", role="student_base", model="m", request_hash="s",
                         status="ok", cost_micro_usd=5, created_at="2099-01-01T00:00:00+00:00")
    await storage.completions.save(student)
    assert await storage.completions.spend_micro_usd(run.id) == 325
    assert await storage.completions.spend_micro_usd(run.id, roles=["student_base"]) == 5
    assert await storage.completions.spend_micro_usd(run.id, since="2098-01-01T00:00:00+00:00") == 5
    assert await storage.completions.spend_micro_usd(run.id, roles=["teacher"], since="2098-01-01") == 0


async def test_approvals_round_trip_with_decisions(storage):
    run = await _run(storage)
    approval = await storage.approvals.create(run_id=run.id, stage="collect", quote_hash="q1",
                                              amount_micro_usd=1_500_000, quote={"usd": "1.50"},
                                              requester="U1", expires_at="2099-01-01T00:00:00+00:00")
    assert approval.status == "pending" and approval.quote == {"usd": "1.50"}
    assert await storage.approvals.record_decision(approval.id, "U2", "approve") is True
    assert await storage.approvals.record_decision(approval.id, "U2", "approve") is False
    assert await storage.approvals.set_status(approval.id, "approved") is True
    assert await storage.approvals.set_status(approval.id, "rejected") is False
    await storage.approvals.set_message_ts(approval.id, "5.6")
    latest = await storage.approvals.latest(run.id, "collect")
    assert latest.approvers() == {"U2"} and latest.status == "approved" and latest.message_ts == "5.6"
    assert await storage.approvals.void_pending(run.id) == []  # an approved request is not voided
    second = await storage.approvals.create(run_id=run.id, stage="train", quote_hash="q2", amount_micro_usd=1,
                                            quote={}, requester="U1", expires_at="2099-01-01T00:00:00+00:00")
    assert [a.id for a in await storage.approvals.void_pending(run.id)] == [second.id]
    assert (await storage.approvals.require(second.id)).status == "voided"


async def test_jobs_round_trip_and_idempotency_key(storage):
    run = await _run(storage)
    job = await storage.jobs.create(run_id=run.id, trainer="openai", idempotency_key="run1-train-1",
                                    base_model="gpt-4o-mini-2024-07-18", quote_micro_usd=900)
    same = await storage.jobs.create(run_id=run.id, trainer="openai", idempotency_key="run1-train-1",
                                     base_model="gpt-4o-mini-2024-07-18")
    assert same.id == job.id
    assert [j.id for j in await storage.jobs.active()] == [job.id]
    done = await storage.jobs.update(job.id, external_id="ftjob-1", status="SUCCEEDED", raw_status="succeeded",
                                     fine_tuned_model="ft:gpt-4o-mini:x", trained_tokens=1234, event_cursor="ev-9")
    assert (done.external_id, done.fine_tuned_model, done.trained_tokens, done.event_cursor) == (
        "ftjob-1", "ft:gpt-4o-mini:x", 1234, "ev-9")
    assert await storage.jobs.active() == []


async def test_batches_evals_audit_notices_and_slack_events_round_trip(storage):
    run = await _run(storage)
    batch = await storage.batches.create(run_id=run.id, split="eval", role="teacher", model="gpt-4o")
    batch = await storage.batches.update(batch.id, external_id="batch_1", status="in_progress")
    assert [b.external_id for b in await storage.batches.active()] == ["batch_1"]
    await storage.batches.update(batch.id, status="stored")
    assert await storage.batches.active() == []

    await storage.evals.save(run_id=run.id, role="teacher", model="gpt-4o", metrics={"accuracy": 0.9})
    await storage.evals.save(run_id=run.id, role="teacher", model="gpt-4o", metrics={"accuracy": 0.95})
    assert (await storage.evals.latest(run.id))["teacher"].metrics == {"accuracy": 0.95}

    await storage.audit.add(run_id=run.id, actor="U2", action="approve", detail={"stage": "collect"})
    [entry] = await storage.audit.for_run(run.id)
    assert (entry.actor, entry.action, entry.detail) == ("U2", "approve", {"stage": "collect"})

    assert await storage.notices.claim(run.id, "report") is True
    assert await storage.notices.claim(run.id, "report") is False
    await storage.notices.set_message_ts(run.id, "report", "9.9")
    assert await storage.notices.message_ts(run.id, "report") == "9.9"

    assert await storage.slack_events.first_time("Ev1") is True
    assert await storage.slack_events.first_time("Ev1") is False
    await storage.db.execute("UPDATE slack_events SET received_at = '2026-01-01T00:00:00.000000+00:00'")
    assert await storage.slack_events.first_time("Ev2") is True
    assert await storage.slack_events.forget_before(datetime(2026, 6, 1, tzinfo=UTC)) == 1  # Ev1 only
    assert await storage.slack_events.first_time("Ev2") is False


async def test_fifty_concurrent_tasks_inserting_completions_lose_none(storage):
    run = await _run(storage)

    async def insert(task: int):
        for i in range(20):
            row = task * 20 + i
            await storage.completions.save(
                Completion(run_id=run.id, row_index=row, split="train", role="teacher", model="m",
                           request_hash=f"h{row}", status="ok", cost_micro_usd=1))

    await asyncio.gather(*(insert(t) for t in range(50)))
    assert len(await storage.completions.answered_rows(run.id, "train", "teacher")) == 1000
    assert await storage.completions.spend_micro_usd(run.id) == 1000


async def test_an_exception_inside_a_transaction_writes_nothing(storage):
    run = await _run(storage)
    try:
        async with storage.db.transaction() as conn:
            await conn.execute("UPDATE runs SET state = 'failed' WHERE id = ?", (run.id,))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert (await storage.runs.require(run.id)).state == "created"
