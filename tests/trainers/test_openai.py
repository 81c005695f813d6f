"""The OpenAI trainer through the real openai SDK against the sandbox: files, jobs, events, failures, cancel,
shutdown dates and idempotent starts; and one run from collected teacher answers to an eval report."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import httpx2
import pytest

from bot.collect.engine import CollectRequest, CollectTask
from bot.core.clock import Clock
from bot.core.config import Secret
from bot.costs.quotes import count_chat_tokens, longest_answer_tokens
from bot.data.splits import prepare
from bot.evaluate.scores import BASE, DISTILLED, TEACHER, report_for_run
from bot.prices.table import PriceTable
from bot.prompts.templates import answer_json
from bot.spec.budgets import budget_for
from bot.spec.messages import build_messages, training_example
from bot.train.examples import training_data_for_run
from bot.trainers.base import JobRequest, JobState, JobStatus, TrainerError
from bot.trainers.openai import IDEMPOTENCY_METADATA, OpenAITrainer
from storage.runs import RunRow
from tests.collect.helpers import CHOICES, make_collector, ticket_texts, unlimited
from tests.train.test_examples import SPEC, STUDENT, dataset

FAST = 600  # sandbox clock: a whole job (60 simulated seconds) in 0.1 s
STEADY = 60  # about 1 s, so polls see the job running


def trainer_for(sandbox, today: str | None = None) -> OpenAITrainer:
    """A trainer for the sandbox, on its clock (or one pinned to `today`)."""
    clock = Clock.at(today) if today else sandbox.clock.wall
    return OpenAITrainer(base_url=sandbox.url, api_key=Secret(sandbox.api_key), retry_base_seconds=0.01, clock=clock)


def examples(count: int) -> list[list[dict[str, str]]]:
    return [training_example(SPEC, text, answer_json(CHOICES[i % len(CHOICES)]))
            for i, text in enumerate(ticket_texts(count))]


async def started(trainer: OpenAITrainer, count: int = 20, key: str = "run-1-train-1", **request) -> str:
    file_id = await trainer.upload(trainer.training_file(examples(count)), "train.jsonl")
    return await trainer.start(JobRequest(base_model=STUDENT, training_file_id=file_id, idempotency_key=key,
                                          **request))


async def finished(trainer: OpenAITrainer, job_id: str, seen: list[JobState] | None = None) -> JobState:
    for _ in range(1000):
        state = await trainer.poll(job_id)
        if seen is not None:
            seen.append(state)
        if state.status.terminal:
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} still {state.raw_status}")


def tasks_for(run_id: int, prepared, plan) -> list[CollectTask]:
    found = []
    for role, model, split, rows in plan:
        requests = [CollectRequest(r.row_index, build_messages(SPEC, r.user_prompt),
                                   count_chat_tokens(build_messages(SPEC, r.user_prompt), model)) for r in rows]
        found.append(CollectTask(run_id, split, role, model, requests, SPEC.answer_format(prepared.choices),
                                 budget_for(SPEC, PriceTable.load(), role, model,
                                            longest_answer_tokens(prepared.choices, model))))
    return found


async def test_collected_answers_to_a_trained_model_that_answers_the_eval_split(storage, make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=STEADY)
    trainer, prices = trainer_for(sandbox), PriceTable.load()
    prepared = prepare(SPEC, ["text", "category"], dataset(40))
    run = await storage.runs.create(name="e2e", channel_id="C1", requester="U1", spec=SPEC.to_dict())
    await storage.runs.replace_rows(run.id, [RunRow(split, r.row_index, r.input_hash, r.gold_label) for split, rows
                                             in (("train", prepared.train), ("validation", prepared.validation),
                                                 ("eval", prepared.eval)) for r in rows])
    collector = make_collector(storage, sandbox)
    for task in tasks_for(run.id, prepared, [
        (TEACHER, SPEC.teacher, "train", prepared.train), (TEACHER, SPEC.teacher, "validation", prepared.validation),
        (TEACHER, SPEC.teacher, "eval", prepared.eval), (BASE, STUDENT, "eval", prepared.eval),
    ]):
        assert (await collector.collect(task, unlimited())).failed == 0

    data = await training_data_for_run(storage, run.id, SPEC, prepared, prices, trainer)
    check = await trainer_for(sandbox, today="2026-06-01").check_base_model(STUDENT)
    assert (check.trainable, check.shutdown_date, check.message) == (True, dt.date(2027, 1, 14), "")
    training_id = await trainer.upload(data.training_file, "train.jsonl")
    validation_id = await trainer.upload(data.validation_file, "validation.jsonl")
    job_id = await trainer.start(JobRequest(
        base_model=STUDENT, training_file_id=training_id, validation_file_id=validation_id, epochs=data.quote.epochs,
        suffix="e2e", seed=5, idempotency_key=f"run-{run.id}-train-1", metadata={"distill_run": str(run.id)}))
    seen: list[JobState] = []
    done = await finished(trainer, job_id, seen)

    assert done.status is JobStatus.SUCCEEDED and done.raw_status == "succeeded" and done.progress == 1.0
    assert done.fine_tuned_model.startswith(f"ft:{STUDENT}:distill-sandbox:e2e:")
    assert seen[0].status is JobStatus.QUEUED
    running = [s for s in seen if s.status is JobStatus.RUNNING and s.progress is not None]
    assert running and all(0 < s.progress <= 1 and "train_loss" in s.metrics for s in running)
    progress = [s.progress for s in running]
    assert progress == sorted(progress)
    # The quote never under-states: the bot's count adds OpenAI cookbook's 3 reply-priming tokens per example,
    # which the sandbox does not bill; everything else matches token for token.
    assert 0 <= data.quote.trained_tokens - done.trained_tokens <= 3 * data.examples * data.quote.epochs
    sandbox_job = (await trainer.client.fine_tuning.jobs.retrieve(job_id))
    assert sandbox_job.validation_file == validation_id and sandbox_job.seed == 5
    assert sandbox_job.metadata == {"distill_run": str(run.id), IDEMPOTENCY_METADATA: f"run-{run.id}-train-1"}
    with pytest.raises(TrainerError, match="already succeeded"):
        await trainer.cancel(job_id)

    deployment = await trainer.deploy(done.fine_tuned_model)
    assert (deployment.model, deployment.base_url) == (done.fine_tuned_model, sandbox.url)
    (task,) = tasks_for(run.id, prepared, [(DISTILLED, deployment.model, "eval", prepared.eval)])
    outcome = await collector.collect(task, unlimited())
    assert outcome.answered == len(prepared.eval) and outcome.invalid == outcome.failed == 0
    await trainer.undeploy(deployment)
    report = await report_for_run(storage, run.id)
    assert report.scores[DISTILLED].model == done.fine_tuned_model
    assert report.scores[DISTILLED].answered == len(prepared.eval)
    await collector.provider.close()
    await trainer.close()


async def test_events_after_a_cursor_come_oldest_first_without_repeats(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=STEADY)
    trainer = trainer_for(sandbox)
    job_id = await started(trainer, count=30, epochs=4)
    collected, cursor, batches = [], None, 0
    while True:
        page = await trainer.events(job_id, cursor)
        collected += page.events
        batches += bool(page.events)
        cursor = page.cursor
        if (await trainer.poll(job_id)).status.terminal:
            break
        await asyncio.sleep(0.05)
    collected += (await trainer.events(job_id, cursor)).events
    everything = [e async for e in trainer.client.fine_tuning.jobs.list_events(job_id, limit=7)]  # newest first
    assert [e.id for e in collected] == [e.id for e in reversed(everything)]
    assert len({e.id for e in collected}) == len(collected) and batches >= 3
    assert collected[0].message == f"Created fine-tuning job: {job_id}"
    assert collected[-1].message == "The job has successfully completed"
    assert [e.created_at for e in collected] == sorted(e.created_at for e in collected)
    metrics = [e for e in collected if "step" in e.data]
    assert [e.data["step"] for e in metrics] == sorted(e.data["step"] for e in metrics) and len(metrics) >= 10
    last = await trainer.events(job_id, collected[-1].id)
    assert last.events == [] and last.cursor == collected[-1].id
    await trainer.close()


async def test_a_failing_job_reports_the_providers_reason(make_openai_sandbox):
    reason = "The job failed due to an internal error during training."
    sandbox = await make_openai_sandbox(clock_speed=FAST, fail_jobs_with=reason)
    trainer = trainer_for(sandbox)
    done = await finished(trainer, await started(trainer))
    assert (done.status, done.error, done.fine_tuned_model) == (JobStatus.FAILED, reason, None)
    assert (await trainer.events(done.external_id, None)).events[-1].message == f"Fine-tuning job failed: {reason}"
    await trainer.close()


async def test_provider_errors_never_show_the_key(make_openai_sandbox):
    sandbox = await make_openai_sandbox()
    trainer = OpenAITrainer(base_url=sandbox.url, api_key=Secret("sk-wrong-key-0123456789"))
    with pytest.raises(TrainerError, match=r"refused to upload train.jsonl \(HTTP 401\)") as caught:
        await trainer.upload(b"{}", "train.jsonl")
    assert "0123456789" not in str(caught.value)
    await trainer.close()


async def test_a_file_the_provider_rejects_fails_the_job_with_its_message(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=FAST)
    trainer = trainer_for(sandbox)
    done = await finished(trainer, await started(trainer, count=5))  # the bot's own check would refuse this file
    assert done.status is JobStatus.FAILED
    assert "has 5 example(s), but a fine-tuning file needs at least 10" in done.error
    page = await trainer.events(done.external_id, None)
    assert page.events[-1].level == "error" and "needs at least 10" in page.events[-1].message
    await trainer.close()


async def test_cancel_stops_a_queued_job_and_a_second_cancel_is_harmless(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=1)
    trainer = trainer_for(sandbox)
    job_id = await started(trainer)
    state = await trainer.cancel(job_id)
    assert (state.status, state.raw_status) == (JobStatus.CANCELLED, "cancelled")
    assert (await trainer.cancel(job_id)).status is JobStatus.CANCELLED
    assert (await trainer.events(job_id, None)).events[-1].message == "Fine-tuning job cancelled"
    await trainer.close()


async def test_base_model_checks_use_the_providers_shutdown_dates(make_openai_sandbox):
    sandbox = await make_openai_sandbox(shutdown_dates={"gpt-4o-mini": "2026-01-31", "gpt-4.1-mini": None})
    past = await trainer_for(sandbox, today="2026-03-01").check_base_model(STUDENT)
    assert (past.trainable, past.shutdown_date) == (False, dt.date(2026, 1, 31))
    assert "was shut down on 2026-01-31" in past.message and "student=" in past.message
    trainer = trainer_for(sandbox, today="2026-01-01")
    soon = await trainer.check_base_model(STUDENT)
    assert soon.trainable and soon.warning and "in 30 days" in soon.message
    undated = await trainer.check_base_model("gpt-4.1-mini-2025-04-14")
    assert (undated.trainable, undated.shutdown_date, undated.warning) == (True, None, False)
    unknown = await trainer.check_base_model("gpt-9-mini")
    assert not unknown.trainable and "does not exist" in unknown.message
    file_id = await trainer.upload(trainer.training_file(examples(12)), "train.jsonl")
    with pytest.raises(TrainerError, match=r"HTTP 400\): Model gpt-5 is not available for fine-tuning"):
        await trainer.start(JobRequest(base_model="gpt-5", training_file_id=file_id, idempotency_key="k"))
    await trainer.close()


async def test_starting_again_with_the_same_key_finds_the_job_instead_of_making_another(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=1)
    trainer = trainer_for(sandbox)
    first = await started(trainer, key="run-9-train-1")
    restarted = trainer_for(sandbox)  # a new process after a crash between start and storing the id
    assert await started(restarted, key="run-9-train-1") == first
    sandbox.inject("/v1/fine_tuning/jobs", 500)  # a transient failure is retried, and still makes one job
    second = await started(restarted, key="run-9-train-2")
    assert second != first
    jobs = [j async for j in trainer.client.fine_tuning.jobs.list()]
    assert sorted(j.id for j in jobs) == sorted([first, second])
    posts = [r for r in sandbox.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]
    assert len(posts) == 2
    await trainer.close()
    await restarted.close()


def test_training_file_is_one_chat_object_per_line():
    trainer = OpenAITrainer(base_url="http://127.0.0.1:9/v1", api_key=Secret("sk-unused"))
    content = trainer.training_file(examples(2))
    assert [json.loads(line) for line in content.decode().splitlines()] == [{"messages": m} for m in examples(2)]


async def test_a_server_that_ignores_the_page_cursor_does_not_loop_forever():
    from aiohttp import web

    page = {"object": "list", "has_more": True, "data": [  # newest first, and the same page for every `after`
        {"object": "fine_tuning.job.event", "id": f"ftevent-{n}", "created_at": n, "level": "info",
         "message": f"event {n}", "type": "message", "data": {}} for n in (2, 1)]}

    async def events(request: web.Request) -> web.Response:
        return web.json_response(page)

    app = web.Application()
    app.add_routes([web.get("/v1/fine_tuning/jobs/{job}/events", events)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    trainer = OpenAITrainer(base_url=f"http://{host}:{port}/v1", api_key=Secret("sk-test"))
    try:
        listed = await asyncio.wait_for(trainer.events("ftjob-1", None), timeout=5)
        assert [e.message for e in listed.events] == ["event 1", "event 2"] and listed.cursor == "ftevent-2"
    finally:
        await trainer.close()
        await runner.cleanup()


class _ToSandbox(httpx2.AsyncBaseTransport):
    """Sends what is addressed to api.openai.com to the sandbox instead (the trainer still sees OpenAI's URL)."""

    def __init__(self, url: str) -> None:
        self.target = httpx2.URL(url)
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def at_openai(sandbox, day: str) -> OpenAITrainer:
    return OpenAITrainer(base_url="https://api.openai.com/v1", api_key=Secret("sk-sandbox"), clock=Clock.at(day),
                         http_client=httpx2.AsyncClient(transport=_ToSandbox(sandbox.url)))


async def test_at_api_openai_com_new_jobs_are_refused_from_2027_01_07_naming_the_alternatives(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=STEADY)
    trainer = at_openai(sandbox, "2027-01-07")
    try:
        check = await trainer.check_base_model(STUDENT)
        assert not check.trainable and not check.warning
        assert "OpenAI takes no new fine-tuning jobs after 2027-01-06" in check.message
        assert "trainer=together" in check.message and "(gpt-6.x) cannot be fine-tuned" in check.message
        assert "Azure OpenAI" in check.message
        with pytest.raises(TrainerError, match="no new fine-tuning jobs after 2027-01-06"):
            await trainer.start(JobRequest(base_model=STUDENT, training_file_id="file-x", idempotency_key="k"))
        assert trainer.students(PriceTable.load()) == []
    finally:
        await trainer.close()
    assert not [r for r in sandbox.requests if r.path.startswith("/v1/fine_tuning")], "nothing was asked to train"


async def test_at_api_openai_com_the_last_weeks_before_the_cutoff_warn(make_openai_sandbox):
    sandbox = await make_openai_sandbox(clock_speed=STEADY)
    trainer = at_openai(sandbox, "2027-01-06")
    try:
        check = await trainer.check_base_model(STUDENT)
        students = {s.model: s for s in trainer.students(PriceTable.load())}
    finally:
        await trainer.close()
    assert check.trainable and check.warning
    assert "OpenAI takes new fine-tuning jobs until 2027-01-06 only (in 0 days)" in check.message
    assert students[STUDENT].training_usd_per_1m == PriceTable.load().get(STUDENT).training_usd_per_1m
    assert students[STUDENT].shutdown_date == dt.date(2027, 1, 14)
    assert not any(name.startswith(("gpt-6", "ft:", "meta-llama", "text-embedding")) for name in students)


async def test_an_openai_compatible_api_elsewhere_still_trains_after_openais_cutoff(make_openai_sandbox, clock):
    clock.advance(dt.timedelta(days=42))  # 2027-01-10: past OpenAI's cutoff, before gpt-4o-mini's shutdown
    sandbox = await make_openai_sandbox(clock_speed=STEADY)
    trainer = trainer_for(sandbox)  # on the test's clock, like the sandbox
    try:
        check = await trainer.check_base_model(STUDENT)
        assert check.trainable and "shuts down on 2027-01-14 (in 4 days)" in check.message
        assert "2027-01-06" not in check.message
        assert STUDENT in {s.model for s in trainer.students(PriceTable.load())}
    finally:
        await trainer.close()
