"""A whole run with trainer=together through the Slack app against the Together sandbox (issues 10 and 14): the
teacher and the base student answer serverless, the quote prices the eval's dedicated deployment once (in the
evaluate stage) and Together's fixed epochs, the job is polled by the scheduler, its events are posted once, the
fine-tuned model is evaluated on a v2 deployment that is deleted right after, and the eval table shows what it
really cost per 1,000 answers; a failing job posts Together's error; a restarted bot resumes polling."""

from __future__ import annotations

import asyncio
import re

from bot.core.money import format_usd
from bot.runs.cards import spend_micro_usd
from bot.trainers.together_pricing import TogetherPrices
from tests.conftest import TOGETHER_API_KEY
from tests.handlers.conftest import thread_texts
from tests.handlers.test_distillation import REPORT_TITLE, _approve_newest, _wait_for_state

TEACHER = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
STUDENT = "Qwen/Qwen3.5-9B"
SETTINGS = f"label=category train=60 eval=30 trainer=together teacher={TEACHER} student={STUDENT}"
TOGETHER_EVENTS = ("Fine tune request created", "Job started", "Training started", "Epoch completed", "Job finished")
ENDPOINT_NOTE = "answers the eval from a dedicated deployment"


def together_env(sandbox, **env: str) -> dict[str, str]:
    """Inference and training both at the Together sandbox, polled every 0.2 s."""
    return {"OPENAI_BASE_URL": sandbox.v1_url, "OPENAI_API_KEY": TOGETHER_API_KEY, "TOGETHER_BASE_URL": sandbox.url,
            "TOGETHER_API_KEY": TOGETHER_API_KEY, "DISTILL_POLL_SECONDS": "0.2", **env}


def event_lines(texts: list[str]) -> list[str]:
    return [line.strip("`") for t in texts if t.startswith("```")
            for line in t.splitlines() if line.strip("`").startswith(TOGETHER_EVENTS)]


async def training(bot, name: str = "tickets") -> None:
    """Collect, then ask for training and approve it."""
    await bot.ready_run(name, SETTINGS)
    await bot.command(f"collect {name}")
    await _approve_newest(bot, name)
    assert await _wait_for_state(bot, name, "collected", "failed") == "collected"
    await bot.command(f"train {name}")
    await _approve_newest(bot, name)


def job_posts(sandbox) -> list:
    return [r for r in sandbox.requests if r.method == "POST" and r.path == "/v1/fine-tunes" and r.status == 200]


def cost_per_1000(report: str) -> list[str]:
    """The "Cost per 1,000" row of the eval table: teacher, base, distilled."""
    return re.search(r"Cost per 1,000 +(\S+) +(\S+) +(\S+)", report).groups()


async def test_a_together_run_prices_the_deployment_once_and_shows_the_distilled_models_real_cost(make_bot,
                                                                                                   together_sandbox):
    bot = await make_bot(**together_env(together_sandbox))
    await bot.ready_run("tickets", SETTINGS)
    await bot.command("estimate tickets")
    [estimate] = [t for t in thread_texts(await bot.thread("tickets")) if "stage" in t and "evaluate" in t]
    assert re.search(r"evaluate +hosting +1xnvidia-h100-80gb +30 .* \$0\.80 +\$0\.80", estimate)
    assert "expected to pick" not in estimate and "OpenAI" not in estimate
    await bot.command("collect tickets")
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "collected", "failed") == "collected"
    await bot.command("train tickets")
    run = await bot.run("tickets")
    [approval] = [a for a in await bot.bot.storage.approvals.for_run(run.id) if a.stage == "train"]
    request = "\n".join(t for t in thread_texts(await bot.thread("tickets")) if "Spending request: train" in t)
    # 10 minutes to provision, 1 for 30 requests, 1 to stop: 12 minutes of one H100 at $3.99/h, priced once.
    hosting_quoted = 12 * 66_500
    assert approval.quote["hosting_micro_usd"] == hosting_quoted and request.count(ENDPOINT_NOTE) == 1
    assert "per 1M" in request and "sends n_epochs=" in request and "expected to pick" not in request
    assert "$4.00 minimum charge per job" in request  # 60 short examples cost cents: Together's minimum applies
    assert approval.amount_micro_usd == 4_000_000 + hosting_quoted  # training exactly, the deployment once
    await _approve_newest(bot, "tickets")
    assert await _wait_for_state(bot, "tickets", "done", "failed") == "done"

    [job] = await bot.bot.storage.jobs.for_run(run.id)
    assert job.status == "SUCCEEDED" and job.fine_tuned_model.startswith("distill-sandbox/Qwen3.5-9B-tickets-")
    assert job.endpoint_id is None  # stored while the deployment ran, cleared when it was deleted
    assert set(await bot.bot.storage.evals.latest(run.id)) == {"teacher", "student_base", "student_ft"}
    texts = thread_texts(await bot.thread("tickets"))
    assert sum(REPORT_TITLE in t for t in texts) == 1
    lines = event_lines(texts)
    assert lines and len(lines) == len(set(lines))
    [bill] = together_sandbox.deployments.bills
    assert together_sandbox.deployments.live() == [] and together_sandbox.deployments.endpoints() == []
    assert bill.minutes >= 1 and len(job_posts(together_sandbox)) == 1
    # Ready for under a minute of real time (the sandbox bills sped-up minutes): one minute of one H100 is recorded.
    hosting = 66_500
    assert TogetherPrices.load().usd_per_hour[bill.hardware] * 1_000_000 / 60 == hosting
    assert job.hosting_micro_usd == hosting
    assert sum(f"hosting it cost {format_usd(hosting)}" in t for t in texts) == 1
    paid = await bot.bot.storage.completions.spend_micro_usd(run.id)
    assert await spend_micro_usd(bot.bot.storage, run.id) == paid + job.cost_micro_usd + hosting
    # The distilled model's tokens cost nothing per token; what it cost is the hosting, over its 30 answers.
    report = next(t for t in reversed(texts) if "Cost per 1,000" in t and "distilled" in t)
    assert cost_per_1000(report)[2] == format_usd(hosting * 1000 // 30) == "$2.22"
    scores = await bot.bot.storage.evals.latest(run.id)
    assert scores["student_ft"].metrics["cost_per_1k_micro_usd"] == round(hosting * 1000 / 30)


async def test_a_failing_together_job_posts_togethers_error_and_fails_the_run(make_bot, make_together_sandbox):
    reason = "Training failed: the GPU node was preempted and the job could not be resumed."
    sandbox = await make_together_sandbox(fail_jobs_with=reason)
    bot = await make_bot(**together_env(sandbox))
    await training(bot)
    assert await _wait_for_state(bot, "tickets", "failed", "done") == "failed"
    run = await bot.run("tickets")
    assert reason in run.error
    assert any("Training failed" in t and reason in t for t in thread_texts(await bot.thread("tickets")))
    assert sandbox.deployments.bills == []  # nothing was deployed, nothing billed per minute


async def test_a_bot_restarted_mid_training_resumes_polling_the_together_job(make_bot, make_together_sandbox,
                                                                             tmp_path):
    sandbox = await make_together_sandbox(clock_speed=15)  # a four-second job: the restart lands in its middle
    database = str(tmp_path / "restart.db")
    first = await make_bot(**together_env(sandbox, DISTILL_DB=database))
    await training(first)
    await _wait_for_state(first, "tickets", "training")
    for _ in range(100):  # until at least one batch of job events has been posted
        if event_lines(thread_texts(await first.thread("tickets"))):
            break
        await asyncio.sleep(0.05)
    await first.bot.close()

    second = await make_bot(**together_env(sandbox, DISTILL_DB=database))
    run = await second.run("tickets")
    for _ in range(400):
        [job] = await second.bot.storage.jobs.for_run(run.id)
        if job.status == "SUCCEEDED" and job.trained_tokens is not None:  # the status is stored a step before
            break
        await asyncio.sleep(0.05)
    assert job.status == "SUCCEEDED" and job.trained_tokens > 0
    lines = event_lines(thread_texts(await second.thread("tickets")))
    assert any(line.startswith("Job finished") for line in lines) and len(lines) == len(set(lines))
    assert len(job_posts(sandbox)) == 1
