"""The Together trainer through the official SDK (together-py 3.x, AsyncTogether) against the Together sandbox: the
upload redirect, jobs through every state, events after a cursor, Together's error messages, cancel, idempotent
starts (a lost reply does not make a second job), the SDK's retries on 429/500, the v2 deployment that serves the
fine-tuned model (trafficSplit, READY, json_schema chat through the real openai SDK, billing, a FAILED one's reason),
base-model checks, the project from whoami, and the prices behind its quote."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal

import openai
import pytest

from bot.core.config import Secret, Settings
from bot.core.errors import ConfigError, PriceError
from bot.costs.quotes import count_training_file_tokens
from bot.prices.table import PriceTable
from bot.prompts.templates import response_format
from bot.spec.messages import build_messages
from bot.trainers import billing_for, get_trainer
from bot.trainers.base import JobRequest, JobState, JobStatus, TrainerError
from bot.trainers.together import INFERENCE_URL, TogetherTrainer, endpoint_name_for, job_suffix
from bot.trainers.together_pricing import STARTUP_MINUTES, TogetherPrices
from tests.collect.helpers import CHOICES, ticket_texts
from tests.conftest import TOGETHER_API_KEY
from tests.train.test_examples import SPEC
from tests.trainers.test_openai import examples, finished

STUDENT = "Qwen/Qwen3.5-9B"
H100 = "1xnvidia-h100-80gb"
STEADY = 60  # the sandbox clock: a job (57 simulated seconds) in about 1 s, so polls see every state
# Slower where a test must catch a short state (pending for 2 simulated seconds, a cancel's cancel_requested) after
# the SDK's round trips (limits, estimate-price, create) on a busy machine: about 3 s for a whole job.
CAREFUL = 20


def trainer_for(sandbox, **knobs) -> TogetherTrainer:
    return TogetherTrainer(base_url=sandbox.url, api_key=Secret(TOGETHER_API_KEY), retry_base_seconds=0.01,
                           deploy_poll_seconds=0.01, clock=sandbox.clock.wall, **knobs)


async def started(trainer: TogetherTrainer, count: int = 20, key: str = "distill-run1-approval1", epochs: int = 3,
                  **request) -> str:
    file_id = await trainer.upload(trainer.training_file(examples(count)), "train.jsonl")
    return await trainer.start(JobRequest(base_model=STUDENT, training_file_id=file_id, idempotency_key=key,
                                          epochs=epochs, **request))


def calls(sandbox, method: str, prefix: str, status: int | None = None) -> list:
    return [r for r in sandbox.requests if r.method == method and r.path.startswith(prefix)
            and (status is None or r.status == status)]


async def test_the_upload_goes_through_togethers_redirect_to_the_signed_url(together_sandbox):
    trainer = trainer_for(together_sandbox)
    content = trainer.training_file(examples(12))
    file_id = await trainer.upload(content, "distill-tickets-train.jsonl")
    assert [(r.method, r.path.split(file_id)[0], r.status) for r in together_sandbox.requests] == [
        ("POST", "/v1/files", 302), ("PUT", "/upload/", 200), ("POST", "/v1/files/", 200)]
    assert together_sandbox.files.content(file_id) == content
    with pytest.raises(TrainerError, match=r"Together's SDK refuses empty\.jsonl"):  # its own check, before sending
        await trainer.upload(b"not json\n", "empty.jsonl")
    assert len(together_sandbox.requests) == 3
    await trainer.close()


async def test_a_job_goes_through_every_state_to_a_model_trained_on_the_file(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=CAREFUL)
    trainer = trainer_for(sandbox)
    content = trainer.training_file(examples(20))
    file_id = await trainer.upload(content, "train.jsonl")
    job_id = await trainer.start(JobRequest(base_model=STUDENT, training_file_id=file_id, idempotency_key="k1",
                                            epochs=3, suffix="Wine Run!", learning_rate_multiplier=2.0, seed=7))
    seen: list[JobState] = []
    done = await finished(trainer, job_id, seen)

    raw = [s.raw_status for s in seen]
    assert list(dict.fromkeys(raw)) == ["pending", "queued", "running", "compressing", "uploading", "completed"]
    assert [s.status for s in seen if s.raw_status in ("pending", "queued")] == [JobStatus.QUEUED] * raw.index(
        "running")
    progress = [s.progress for s in seen if s.progress is not None]
    assert progress == sorted(progress) and progress[-1] == 1.0 and any(0 < p < 1 for p in progress)
    assert done.status is JobStatus.SUCCEEDED and done.error is None
    assert done.fine_tuned_model.startswith("distill-sandbox/Qwen3.5-9B-wine-run-")
    # Together counts each example without the 3 reply-priming tokens the bot's count adds per example.
    file_tokens = count_training_file_tokens(examples(20), STUDENT) - 3 * 20
    assert done.trained_tokens == file_tokens * 3
    job = sandbox.fine_tunes._jobs[job_id].as_json(sandbox.clock.now())
    assert (job["n_epochs"], job["learning_rate"], job["random_seed"], job["batch_size"]) == (3, 2e-5, 7, "max")
    assert job["training_type"] == {"type": "Lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
                                    "lora_trainable_modules": "all-linear"}
    assert job["training_method"] == {"method": "sft", "train_on_inputs": "auto"}
    assert job["suffix"] == job_suffix("Wine Run!", "k1") and len(job["suffix"]) <= 40
    # The SDK reads the model's limits and asks for the price before it creates the job.
    assert [r.path for r in sandbox.requests if r.path.startswith("/v1/fine-tunes") and r.method == "POST"][:2] == [
        "/v1/fine-tunes/estimate-price", "/v1/fine-tunes"]
    await trainer.close()


async def test_together_has_no_auto_epochs_so_the_trainer_needs_a_number():
    trainer = TogetherTrainer(base_url="http://127.0.0.1:9", api_key=Secret("k"))
    assert trainer.auto_epochs is False
    with pytest.raises(TrainerError, match="no epochs=auto"):
        await trainer.start(JobRequest(base_model=STUDENT, training_file_id="file-1", idempotency_key="k"))


async def test_events_after_a_cursor_come_oldest_first_without_repeats(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=STEADY)
    trainer = trainer_for(sandbox)
    job_id = await started(trainer, epochs=4)
    collected, cursor, batches = [], None, 0
    while True:
        page = await trainer.events(job_id, cursor)
        collected += page.events
        batches += bool(page.events)
        cursor = page.cursor
        if (await trainer.poll(job_id)).status.terminal:
            break
        await asyncio.sleep(0.02)
    collected += (await trainer.events(job_id, cursor)).events
    everything = (await trainer.events(job_id, None)).events
    assert [e.id for e in collected] == [e.id for e in everything] and len({e.id for e in collected}) == len(collected)
    assert batches >= 3
    assert collected[0].message == "Fine tune request created" and collected[-1].message.startswith("Job finished")
    assert [e.created_at for e in collected] == sorted(e.created_at for e in collected)
    epochs = [e.data["step"] for e in collected if e.data.get("type") == "epoch_complete"]
    assert len(epochs) == 4 and epochs == sorted(epochs)
    last = await trainer.events(job_id, collected[-1].id)
    assert last.events == [] and last.cursor == collected[-1].id
    await trainer.close()


async def test_a_failing_job_reports_togethers_error_message(make_together_sandbox):
    reason = "CUDA out of memory while training; reduce batch_size or max_seq_length."
    sandbox = await make_together_sandbox(fail_jobs_with=reason)
    trainer = trainer_for(sandbox)
    done = await finished(trainer, await started(trainer, epochs=2))
    assert (done.status, done.raw_status, done.error, done.fine_tuned_model) == (JobStatus.FAILED, "error", reason,
                                                                                None)
    last = (await trainer.events(done.external_id, None)).events[-1]
    assert (last.level, last.message, last.data["type"]) == ("error", reason, "job_error")
    await trainer.close()


async def test_a_file_together_rejects_fails_the_job_with_its_reason(together_sandbox):
    trainer = trainer_for(together_sandbox)
    broken = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode() + b"\n"
    file_id = await trainer.upload(broken, "train.jsonl")  # the SDK's own check lets it through; Together does not
    done = await finished(trainer, await trainer.start(JobRequest(STUDENT, file_id, "k-broken", epochs=1)))
    assert done.status is JobStatus.FAILED
    assert done.error.startswith("Data validation failed for training_file: Line 1: the last message must be")
    await trainer.close()


async def test_cancel_stops_a_job_and_a_second_cancel_is_harmless(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=CAREFUL)
    trainer = trainer_for(sandbox)
    job_id = await started(trainer)
    first = await trainer.cancel(job_id)
    assert (first.status, first.raw_status) == (JobStatus.RUNNING, "cancel_requested")
    done = await finished(trainer, job_id)
    assert (done.status, done.raw_status, done.fine_tuned_model) == (JobStatus.CANCELLED, "cancelled", None)
    assert (await trainer.cancel(job_id)).status is JobStatus.CANCELLED
    assert [e.message for e in (await trainer.events(job_id, None)).events][-2:] == [
        "Job cancellation requested", "Job cancelled"]
    await trainer.close()


async def test_starting_again_with_the_same_key_finds_the_job_instead_of_making_another(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=1)
    trainer = trainer_for(sandbox)
    first = await started(trainer, key="distill-run9-approval1")
    restarted = trainer_for(sandbox)  # a new process after a crash between start and storing the id
    assert await started(restarted, key="distill-run9-approval1") == first
    sandbox.inject("/v1/fine-tunes$", "lost", method="POST")  # made, but the reply is lost: found, not made again
    second = await started(restarted, key="distill-run9-approval2")
    sandbox.inject("/v1/fine-tunes$", 503, method="POST")  # refused before it took effect: made on the next attempt
    third = await started(restarted, key="distill-run9-approval3")
    assert len({first, second, third}) == 3
    creates = [r.status for r in sandbox.requests if (r.method, r.path) == ("POST", "/v1/fine-tunes")]
    assert creates == [200, 502, 503, 200]  # the SDK retried none of them; the lost one was found, not made again
    assert len(sandbox.fine_tunes._jobs) == 3
    await trainer.close()
    await restarted.close()


async def test_the_sdk_retries_rate_limits_and_server_errors_on_calls_that_may_repeat(together_sandbox):
    trainer = trainer_for(together_sandbox)
    job_id = await started(trainer)
    together_sandbox.inject(f"/v1/fine-tunes/{job_id}", 429, method="GET", retry_after=0.05)
    together_sandbox.inject(f"/v1/fine-tunes/{job_id}", 500, method="GET")
    assert (await trainer.poll(job_id)).external_id == job_id
    assert [r.status for r in calls(together_sandbox, "GET", f"/v1/fine-tunes/{job_id}")][:3] == [429, 500, 200]
    once = trainer_for(together_sandbox, max_retries=1)
    together_sandbox.inject(f"/v1/fine-tunes/{job_id}", 503, count=2, method="GET")  # more than its retries
    with pytest.raises(TrainerError, match=r"report on fine-tuning job .* \(HTTP 503\): The server is overloaded"):
        await once.poll(job_id)
    await trainer.close()
    await once.close()


async def test_the_deployed_model_answers_json_schema_chat_and_its_ready_minutes_are_billed(together_sandbox):
    trainer = trainer_for(together_sandbox)
    done = await finished(trainer, await started(trainer, count=40))
    with pytest.raises(TrainerError, match=r"HTTP 400\): Job .* is completed; only a pending"):
        await trainer.cancel(done.external_id)
    deployment = await trainer.deploy(done.fine_tuned_model)
    [endpoint] = together_sandbox.deployments.endpoints()
    [served] = together_sandbox.deployments.live()
    assert deployment.model == endpoint.full_name == f"distill-sandbox/{endpoint_name_for(done.external_id)}"
    assert deployment.endpoint_id == endpoint.id and deployment.base_url == together_sandbox.v1_url
    assert endpoint.traffic_split == [{"deploymentId": served.id, "weight": 1}]
    assert (served.hardware.id, served.replicas, served.inactive_timeout) == (H100, 1, 30)  # the cheapest that fits
    assert served.job.model_resource.endswith(served.job.model_object_id)
    again = await trainer.deploy(done.fine_tuned_model)  # a retried evaluation finds both, makes neither
    assert again.endpoint_id == deployment.endpoint_id and len(together_sandbox.deployments.live()) == 1
    # Found READY, it counts from the deployment's updatedAt (when it became ready), not from when it was seen.
    assert again.billed_from.timestamp() == pytest.approx(served.ready_at, abs=0.001)
    assert again.billed_from <= deployment.billed_from

    client = openai.AsyncOpenAI(base_url=deployment.base_url, api_key=deployment.api_key.reveal(), max_retries=0)
    text = ticket_texts(60)[50]
    messages = build_messages(SPEC, SPEC.template.replace("{text}", text).replace("{choices}", ", ".join(CHOICES)))
    answer = await client.chat.completions.create(model=deployment.model, messages=messages,
                                                  response_format=response_format(CHOICES))
    assert json.loads(answer.choices[0].message.content)["label"] in CHOICES
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0

    hourly = Decimal("3.99")
    assert deployment.usd_per_hour == hourly
    # Ready for well under a real minute: one minute of one H100 replica is recorded.
    assert await trainer.undeploy(deployment) == 66_500
    assert await trainer.undeploy(deployment) == 0  # already gone: nothing to do, nothing to count again
    [bill] = together_sandbox.deployments.bills
    assert (bill.deployment_id, bill.hardware) == (served.id, H100) and bill.minutes >= 1
    assert together_sandbox.deployments.endpoints() == [] and together_sandbox.deployments.live() == []
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model=deployment.model, messages=messages)
    await client.close()
    await trainer.close()


async def test_a_lost_reply_to_the_deployment_request_does_not_make_a_second_one(together_sandbox):
    trainer = trainer_for(together_sandbox)
    done = await finished(trainer, await started(trainer))
    together_sandbox.inject("/v2/projects/proj_sandbox/endpoints", "lost", method="POST", count=2)
    deployment = await trainer.deploy(done.fine_tuned_model)
    assert len(together_sandbox.deployments.endpoints()) == 1 and len(together_sandbox.deployments.live()) == 1
    assert [r.status for r in calls(together_sandbox, "POST", "/v2/projects/proj_sandbox/endpoints")] == [502, 502]
    await trainer.undeploy(deployment)
    await trainer.close()


async def test_a_deployment_stopped_while_the_bot_was_down_is_replaced(together_sandbox):
    trainer = trainer_for(together_sandbox)
    done = await finished(trainer, await started(trainer))
    first = await trainer.deploy(done.fine_tuned_model)
    [stopped] = together_sandbox.deployments.live()
    stopped.stop_requested_at = together_sandbox.clock.now() - 1  # as its inactive timeout would have
    again = await trainer.deploy(done.fine_tuned_model)
    [serving] = together_sandbox.deployments.live()
    assert again.endpoint_id == first.endpoint_id and serving.id != stopped.id
    assert [bill.deployment_id for bill in together_sandbox.deployments.bills] == [stopped.id]
    await trainer.undeploy(again)
    await trainer.close()


async def test_a_failed_deployment_is_deleted_and_reported_with_togethers_reason(make_together_sandbox):
    reason = "Insufficient capacity for 1xnvidia-h100-80gb in every region; try again later."
    sandbox = await make_together_sandbox(fail_deployments_with=reason)
    trainer = trainer_for(sandbox)
    done = await finished(trainer, await started(trainer))
    with pytest.raises(TrainerError, match=r"deployment of .* ended FAILED: Insufficient capacity .* It was deleted"):
        await trainer.deploy(done.fine_tuned_model)
    assert sandbox.deployments.endpoints() == [] and sandbox.deployments.live() == []
    assert [bill.minutes for bill in sandbox.deployments.bills] == [0]  # never ready: nothing billed
    await trainer.close()


async def test_the_project_comes_from_whoami_unless_together_project_id_names_one(together_sandbox):
    trainer = trainer_for(together_sandbox)
    assert await trainer._project() == "proj_sandbox"
    assert len(calls(together_sandbox, "GET", "/v3/whoami")) == 1
    assert await trainer._project() == "proj_sandbox" and len(calls(together_sandbox, "GET", "/v3/whoami")) == 1
    other = trainer_for(together_sandbox, project_id="proj_elsewhere")
    with pytest.raises(TrainerError, match=r"HTTP 404\): Project proj_elsewhere not found"):
        await other._endpoint_named("distill-eval-x")
    await trainer.close()
    await other.close()


async def test_check_base_model_refuses_what_together_cannot_train_or_serve_and_names_what_it_can(together_sandbox):
    trainer = trainer_for(together_sandbox)
    refused = await trainer.check_base_model("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert not refused.trainable and "Together does not fine-tune meta-llama/Llama-3.3-70B" in refused.message
    assert STUDENT in refused.message and "student=" in refused.message
    hostless = await trainer.check_base_model("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference")
    assert not hostless.trainable and "cannot serve its fine-tune on dedicated hardware" in hostless.message
    assert f"Students it fine-tunes and serves: {STUDENT}, Qwen/Qwen3.5-4B, openai/gpt-oss-20b" in hostless.message
    fine = await trainer.check_base_model(STUDENT)
    assert (fine.trainable, fine.shutdown_date, fine.message) == (True, None, "")
    assert trainer.limits(STUDENT).max_example_tokens == 32_768  # read from the model's limits
    full = trainer_for(together_sandbox, training_type="full")
    lora_only = await full.check_base_model("openai/gpt-oss-20b")
    assert not lora_only.trainable and "LoRA only" in lora_only.message
    # Like the SDK, the trainer reads the model's limits before creating the job, and Together refuses there.
    file_id = await trainer.upload(trainer.training_file(examples(12)), "train.jsonl")
    with pytest.raises(TrainerError, match=r"limits of meta-llama/Llama-3.3-70B-Instruct-Turbo \(HTTP 404\): Model"):
        await trainer.start(JobRequest(base_model="meta-llama/Llama-3.3-70B-Instruct-Turbo", training_file_id=file_id,
                                       idempotency_key="k", epochs=1))
    await trainer.close()
    await full.close()


async def test_provider_errors_never_show_the_key(together_sandbox):
    trainer = TogetherTrainer(base_url=together_sandbox.url, api_key=Secret("tgp_wrong_key_0123456789"))
    with pytest.raises(TrainerError, match=r"report on fine-tuning job ft-1 \(HTTP 401\): Invalid API key") as caught:
        await trainer.poll("ft-1")
    assert "0123456789" not in str(caught.value)
    await trainer.close()


async def test_the_quote_explains_togethers_formula_its_minimum_and_the_live_hardware_price(together_sandbox):
    trainer = trainer_for(together_sandbox)
    cost = trainer.training_cost(STUDENT, 10_000_000, 3)
    assert (cost.trained_tokens, cost.usd_per_1m, cost.cost_micro_usd) == (30_000_000, Decimal("0.48"), 14_400_000)
    assert "3 x 10,000,000 tokens x $0.48 per 1M (LoRA fine-tuning, models up to 16B" in cost.explain()
    small = trainer.training_cost(STUDENT, 10_000, 3)  # $0.0144 of tokens: the job's $4.00 minimum applies
    assert small.cost_micro_usd == 4_000_000 and "below the $4.00 minimum charge per job" in small.explain()
    assert trainer_for(together_sandbox, training_type="full").training_cost(STUDENT, 1_000_000, 5).usd_per_1m == \
        Decimal("1.35")
    billing = await trainer.billing(STUDENT)
    assert (billing.trainer, billing.auto_epochs) == ("together", False)
    hosting = billing.hosting
    assert (hosting.hardware, hosting.usd_per_hour, hosting.source) == (
        H100, Decimal("3.99"), f"{together_sandbox.url}/v2/public/inference-instance-types")
    # 10 minutes to provision, 2 for 200 requests, 1 to stop: 13 minutes of one H100 at $3.99 an hour.
    assert hosting.minutes(200) == STARTUP_MINUTES + 3 and hosting.cost_micro_usd(13) == 864_500
    table = billing_for("together", STUDENT)  # what an estimate uses: the table, which agrees with Together today
    assert dataclasses.replace(table, hosting=dataclasses.replace(table.hosting, as_of="", source="")) == \
        dataclasses.replace(billing, hosting=dataclasses.replace(hosting, as_of="", source=""))
    with pytest.raises(PriceError, match="does not know how big"):
        trainer.training_cost("Qwen/Qwen3-999B", 1, 1)
    with pytest.raises(PriceError, match=r"names no dedicated hardware .* Students it fine-tunes and serves: Qwen"):
        billing_for("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference")
    await trainer.close()


def test_price_table_lines_agree_with_togethers_size_brackets_and_minimum():
    table, together = PriceTable.load(), TogetherPrices.load()
    for model in (m for m in together.billion_params if m in table.prices):
        line = table.get(model)
        assert line.training_usd_per_1m == together.training_cost(model, 1, 1, "lora").usd_per_1m
        assert line.training_minimum_usd == together.minimum_usd == Decimal("4.00")
        assert table.get(f"ft:{model}").input_usd_per_1m == 0  # billed per minute of the deployment, not per token
    assert set(together.hostable()) == {STUDENT, "Qwen/Qwen3.5-4B", "openai/gpt-oss-20b"}


def test_the_registry_builds_the_together_trainer_from_settings():
    settings = Settings.from_env({"TOGETHER_API_KEY": "tgp_x", "TOGETHER_BASE_URL": "http://127.0.0.1:9/v1",
                                  "TOGETHER_PROJECT_ID": "proj_abc"})
    trainer = get_trainer("together", settings)
    assert isinstance(trainer, TogetherTrainer)
    assert (trainer.base_url, trainer.inference_url, trainer.project_id) == (
        "http://127.0.0.1:9", "http://127.0.0.1:9/v1", "proj_abc")
    default = get_trainer("together", Settings.from_env({"TOGETHER_API_KEY": "tgp_x"}))
    assert (default.base_url, default.inference_url, default.project_id) == (
        "https://api.together.ai", INFERENCE_URL, None)
    with pytest.raises(ConfigError, match="TOGETHER_API_KEY"):
        get_trainer("together", Settings.from_env({}))
