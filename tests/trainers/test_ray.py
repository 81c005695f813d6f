"""The Ray trainer against a real local Ray head (sandbox/ray) with a tiny Llama built in code: the job script
really trains (its loss falls, its answers move to the training targets), a retried start reattaches to the same
job, the eval's server is a Ray job stopped by undeploy, and a bad base model fails the job with Ray's reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest

from bot.core.config import Settings
from bot.trainers.base import JobRequest, JobStatus
from bot.trainers.ray import RayTrainer
from bot.trainers.ray_jobs import RayJobs
from sandbox.ray import build_tiny_model
from tests.conftest import ray_env

SYSTEM = "Classify the support ticket. Answer with JSON only."
TEMPLATES = {
    "Billing": ["I was charged twice for my {x}", "refund the {x} payment please", "my invoice for {x} is wrong"],
    "Technical": ["the {x} app crashes on start", "error 500 when I open {x}", "{x} page will not load"],
    "Account": ["I cannot log in to my {x} account", "reset my {x} password", "delete my {x} account"],
    "Shipping": ["where is my {x} package", "the {x} order has not arrived", "track my {x} delivery"],
}
FILLERS = ["premium", "mobile", "desktop", "family", "pro"]


def examples() -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": template.format(x=x)},
             {"role": "assistant", "content": json.dumps({"label": label}, separators=(",", ":"))}]
            for label, templates in TEMPLATES.items() for template in templates for x in FILLERS]


@pytest.fixture(scope="module")
def tickets_model(tmp_path_factory) -> Path:
    return build_tiny_model([m["content"] for e in examples() for m in e], tmp_path_factory.mktemp("tickets"))


async def wait_for_end(trainer: RayTrainer, job_id: str, seconds: float = 150):
    for _ in range(int(seconds / 0.5)):
        state = await trainer.poll(job_id)
        if state.status.terminal:
            return state
        await asyncio.sleep(0.5)
    raise AssertionError(f"Ray job {job_id} did not end within {seconds} s")


async def answers(deployment, model: str, rows) -> list[str]:
    client = openai.AsyncOpenAI(base_url=deployment.base_url, api_key=deployment.api_key.reveal())
    try:
        replies = [await client.chat.completions.create(model=model, messages=row[:2], max_completion_tokens=12,
                                                         temperature=0) for row in rows]
    finally:
        await client.close()
    return [reply.choices[0].message.content for reply in replies]


async def test_a_lora_job_on_ray_trains_the_tiny_model_and_its_server_answers_like_the_training_file(
        ray_head, tickets_model, tmp_path):
    trainer = RayTrainer.from_settings(Settings.from_env(ray_env(ray_head, tmp_path)))
    try:
        file_id = await trainer.upload(trainer.training_file(examples()), "tickets.jsonl")
        request = JobRequest(base_model=str(tickets_model), training_file_id=file_id, idempotency_key="tickets-1",
                             epochs=10, learning_rate_multiplier=25, batch_size=8, seed=0)
        job_id = await trainer.start(request)
        assert await trainer.start(request) == job_id  # Ray's 500 "already exists": the same job, not a second
        state = await wait_for_end(trainer, job_id)
        assert state.status is JobStatus.SUCCEEDED, state.error
        page = await trainer.events(job_id, None)
        losses = [e.data["loss"] for e in page.events if e.id.startswith("step-")]
        assert len(losses) >= 10 and losses[-1] < losses[0] / 3  # it learnt
        assert (await trainer.events(job_id, page.cursor)).events == []  # nothing new: nothing posted twice
        manifest = json.loads((Path(state.fine_tuned_model).parent / "manifest.json").read_text())
        assert manifest["base_model"] == str(tickets_model) and manifest["adapter_path"] == state.fine_tuned_model
        assert state.trained_tokens == manifest["trained_tokens"] > 0 and state.cost_micro_usd > 0
        assert "quoted" in state.cost_note and "actual" in state.cost_note

        deployment = await trainer.deploy(state.fine_tuned_model)
        rows = examples()[::5]
        targets = [row[2]["content"] for row in rows]
        tuned = await answers(deployment, state.fine_tuned_model, rows)
        base = await answers(deployment, str(tickets_model), rows)  # the same server, without the adapter
        assert sum(a == t for a, t in zip(base, targets, strict=True)) == 0
        assert sum(a == t for a, t in zip(tuned, targets, strict=True)) >= len(rows) - 2
        assert await trainer.undeploy(deployment) > 0
        info = await trainer.jobs.info(deployment.endpoint_id)
        for _ in range(60):
            if info["status"] in ("STOPPED", "SUCCEEDED", "FAILED"):
                break
            await asyncio.sleep(0.5)
            info = await trainer.jobs.info(deployment.endpoint_id)
        assert info["status"] == "STOPPED"
        listed = await RayJobs(ray_head.url)._json("GET", "/api/jobs/", "list jobs")
        assert [j["submission_id"] for j in listed].count(job_id) == 1
    finally:
        await trainer.close()


async def test_a_job_with_a_bad_base_model_path_fails_with_rays_reason(ray_head, tmp_path):
    trainer = RayTrainer.from_settings(Settings.from_env(ray_env(ray_head, tmp_path)))
    try:
        file_id = await trainer.upload(trainer.training_file(examples()), "tickets.jsonl")
        job_id = await trainer.start(JobRequest(base_model=str(tmp_path / "no-such-model"), training_file_id=file_id,
                                                idempotency_key="bad-base", epochs=1))
        state = await wait_for_end(trainer, job_id)
        assert state.status is JobStatus.FAILED
        assert "exit code 1" in state.error and "no-such-model: no such folder on this Ray node" in state.error
    finally:
        await trainer.close()
