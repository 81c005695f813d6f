"""The Together trainer over HTTP against the Together sandbox: files, jobs through every state, events after a
cursor, Together's error messages, cancel, idempotent starts, a dedicated endpoint answering json_schema chat
through the real openai SDK, base-model checks, and the prices behind its quote."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import openai
import pytest

from bot.config import Secret, Settings
from bot.costs import count_training_file_tokens, default_epochs
from bot.errors import ConfigError, PriceError
from bot.prices import PriceTable
from bot.prompts import build_messages, response_format
from bot.trainers import get_trainer
from bot.trainers.base import JobRequest, JobState, JobStatus, TrainerError
from bot.trainers.together import TogetherTrainer, job_suffix
from bot.trainers.together_pricing import STARTUP_MINUTES, TogetherPrices, endpoint_cost_micro_usd
from tests.collect_helpers import CHOICES, ticket_texts
from tests.conftest import TOGETHER_API_KEY
from tests.test_trainers_openai import examples, finished
from tests.test_training_data import SPEC

STUDENT = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
STEADY = 60  # the sandbox clock: a job (57 simulated seconds) in about 1 s, so polls see every state


def trainer_for(sandbox, **knobs) -> TogetherTrainer:
    return TogetherTrainer(base_url=sandbox.url, api_key=Secret(TOGETHER_API_KEY), retry_base_seconds=0.01,
                           deploy_poll_seconds=0.01, **knobs)


async def started(trainer: TogetherTrainer, count: int = 20, key: str = "distill-run1-approval1", **request) -> str:
    file_id = await trainer.upload(trainer.training_file(examples(count)), "train.jsonl")
    return await trainer.start(JobRequest(base_model=STUDENT, training_file_id=file_id, idempotency_key=key,
                                          **request))


async def raw_job(sandbox, job_id: str) -> dict:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOGETHER_API_KEY}"}) as http:
        async with http.get(f"{sandbox.url}/fine-tunes/{job_id}") as response:
            return await response.json()


async def test_a_job_goes_through_every_state_to_a_model_trained_on_the_file(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=STEADY)
    trainer = trainer_for(sandbox)
    content = trainer.training_file(examples(20))
    file_id = await trainer.upload(content, "train.jsonl")
    job_id = await trainer.start(JobRequest(base_model=STUDENT, training_file_id=file_id, idempotency_key="k1",
                                            suffix="Wine Run!", learning_rate_multiplier=2.0, seed=7))
    seen: list[JobState] = []
    done = await finished(trainer, job_id, seen)

    raw = [s.raw_status for s in seen]
    assert list(dict.fromkeys(raw)) == ["pending", "queued", "running", "compressing", "uploading", "completed"]
    assert [s.status for s in seen if s.raw_status in ("pending", "queued")] == [JobStatus.QUEUED] * raw.index(
        "running")
    progress = [s.progress for s in seen if s.progress is not None]
    assert progress == sorted(progress) and progress[-1] == 1.0 and any(0 < p < 1 for p in progress)
    assert done.status is JobStatus.SUCCEEDED and done.error is None
    assert done.fine_tuned_model.startswith("distill-sandbox/Meta-Llama-3.1-8B-Instruct-Reference-wine-run-")
    epochs = default_epochs(20)  # "auto": the epochs the bot's quote assumes, since Together has no "auto"
    # Together counts each example without the 3 reply-priming tokens the bot's count adds per example.
    file_tokens = count_training_file_tokens(examples(20), STUDENT) - 3 * 20
    assert done.trained_tokens == file_tokens * epochs
    sent = await raw_job(sandbox, job_id)
    assert (sent["n_epochs"], sent["learning_rate"], sent["random_seed"], sent["batch_size"]) == (epochs, 2e-5, 7,
                                                                                                  "max")
    assert sent["training_type"] == {"type": "Lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
                                     "lora_trainable_modules": "all-linear"}
    assert sent["training_method"] == {"method": "sft", "train_on_inputs": "auto"}
    assert sent["suffix"] == job_suffix("Wine Run!", "k1") and len(sent["suffix"]) <= 40
    await trainer.close()


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
    file_id = await trainer.upload(broken, "train.jsonl")
    done = await finished(trainer, await trainer.start(JobRequest(STUDENT, file_id, "k-broken", epochs=1)))
    assert done.status is JobStatus.FAILED
    assert done.error.startswith("Data validation failed for training_file: Line 1: the last message must be")
    await trainer.close()


async def test_cancel_stops_a_job_and_a_second_cancel_is_harmless(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=STEADY)
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
    sandbox.inject("/v1/fine-tunes", 503)  # a transient failure is retried, and still makes one job
    second = await started(restarted, key="distill-run9-approval2")
    assert second != first
    posts = [r for r in sandbox.requests if r.method == "POST" and r.path == "/v1/fine-tunes" and r.status == 200]
    assert len(posts) == 2
    await trainer.close()
    await restarted.close()


async def test_the_deployed_model_answers_json_schema_chat_until_undeployed(together_sandbox):
    trainer = trainer_for(together_sandbox)
    done = await finished(trainer, await started(trainer, count=40, epochs=3))
    with pytest.raises(TrainerError, match=r"HTTP 400\): Job .* is completed; only a pending"):
        await trainer.cancel(done.external_id)
    deployment = await trainer.deploy(done.fine_tuned_model)
    assert deployment.endpoint_id.startswith("endpoint-") and deployment.base_url == together_sandbox.url
    assert deployment.model.startswith(done.fine_tuned_model + "-")
    assert (await trainer.deploy(done.fine_tuned_model)).endpoint_id == deployment.endpoint_id  # found, not made

    client = openai.AsyncOpenAI(base_url=deployment.base_url, api_key=deployment.api_key.reveal(), max_retries=0)
    text = ticket_texts(60)[50]
    messages = build_messages(SPEC, SPEC.template.replace("{text}", text).replace("{choices}", ", ".join(CHOICES)))
    answer = await client.chat.completions.create(model=deployment.model, messages=messages,
                                                  response_format=response_format(CHOICES))
    assert json.loads(answer.choices[0].message.content)["label"] in CHOICES
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0

    hourly = trainer.prices.usd_per_hour["1x_nvidia_h100_80gb_sxm"]
    assert await trainer.undeploy(deployment) == endpoint_cost_micro_usd(hourly, 1)  # under a real minute
    assert await trainer.undeploy(deployment) == 0  # already gone: nothing to do, nothing to count again
    (bill,) = together_sandbox.endpoints.bills
    assert (bill.endpoint_id, bill.hardware) == (deployment.endpoint_id, "1x_nvidia_h100_80gb_sxm")
    assert bill.minutes >= 2  # it was STARTING for a simulated minute before it answered
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model=deployment.model, messages=messages,
                                             response_format=response_format(CHOICES))
    await client.close()
    await trainer.close()


async def test_check_base_model_refuses_a_model_together_does_not_fine_tune(together_sandbox):
    trainer = trainer_for(together_sandbox)
    refused = await trainer.check_base_model("deepseek-ai/DeepSeek-V3")
    assert not refused.trainable and "Together does not fine-tune deepseek-ai/DeepSeek-V3" in refused.message
    assert STUDENT in refused.message and "student=" in refused.message
    fine = await trainer.check_base_model(STUDENT)
    assert (fine.trainable, fine.shutdown_date, fine.message) == (True, None, "")
    assert trainer.limits(STUDENT).max_example_tokens == 131_072  # read from the model's limits
    full = trainer_for(together_sandbox, training_type="full")
    lora_only = await full.check_base_model("meta-llama/Meta-Llama-3.1-70B-Instruct-Reference")
    assert not lora_only.trainable and "LoRA only" in lora_only.message
    # Like together-py, the trainer reads the model's limits before creating the job, and Together refuses there.
    file_id = await trainer.upload(trainer.training_file(examples(12)), "train.jsonl")
    with pytest.raises(TrainerError, match=r"limits of deepseek-ai/DeepSeek-V3 \(HTTP 404\): Model .* not supported"):
        await trainer.start(JobRequest(base_model="deepseek-ai/DeepSeek-V3", training_file_id=file_id,
                                       idempotency_key="k"))
    await trainer.close()
    await full.close()


async def test_provider_errors_never_show_the_key(together_sandbox):
    trainer = TogetherTrainer(base_url=together_sandbox.url, api_key=Secret("tgp_wrong_key_0123456789"))
    with pytest.raises(TrainerError, match=r"refused to upload train.jsonl \(HTTP 401\): Invalid API key") as caught:
        await trainer.upload(b"{}", "train.jsonl")
    assert "0123456789" not in str(caught.value)
    await trainer.close()


async def test_the_quote_explains_togethers_formula_and_the_endpoint_minutes(together_sandbox):
    trainer = trainer_for(together_sandbox)
    cost = trainer.training_cost(STUDENT, 10_000, 3)
    assert (cost.trained_tokens, cost.usd_per_1m, cost.cost_micro_usd) == (30_000, Decimal("0.48"), 14_400)
    assert "3 x 10,000 tokens x $0.48 per 1M (LoRA fine-tuning, models up to 16B" in cost.explain()
    full = trainer_for(together_sandbox, training_type="full").training_cost(STUDENT, 10_000, 3)
    assert full.usd_per_1m == Decimal("0.54")
    quote = await trainer.endpoint_quote(STUDENT, 200)
    # 10 minutes to start, 2 minutes for 200 requests, and the minute it is deleted in, at $3.99 an hour.
    assert (quote.hardware, quote.minutes) == ("1x_nvidia_h100_80gb_sxm", STARTUP_MINUTES + 3)
    assert quote.cost_micro_usd == 864_500 and "billed per minute" in quote.explain()
    big = await trainer.endpoint_quote("meta-llama/Meta-Llama-3.1-70B-Instruct-Reference", 200)
    assert big.hardware == "1x_nvidia_h200_141gb_sxm"  # the only hardware Together offers for it here
    with pytest.raises(PriceError, match="does not know how big"):
        trainer.training_cost("Qwen/Qwen3-999B", 1, 1)
    await trainer.close()


def test_price_table_lora_rates_agree_with_togethers_size_brackets():
    table, together = PriceTable.load(), TogetherPrices.load()
    for model in together.billion_params:
        assert table.get(model).training_usd_per_1m == together.training_cost(model, 1, 1, "lora").usd_per_1m
        assert table.get(f"ft:{model}").input_usd_per_1m == 0  # billed per endpoint minute, not per token


def test_the_registry_builds_the_together_trainer_from_settings():
    settings = Settings.from_env({"TOGETHER_API_KEY": "tgp_x", "TOGETHER_BASE_URL": "http://127.0.0.1:9/v1"})
    trainer = get_trainer("together", settings)
    assert isinstance(trainer, TogetherTrainer) and trainer.base_url == "http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError, match="TOGETHER_API_KEY"):
        get_trainer("together", Settings.from_env({}))
