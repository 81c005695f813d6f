"""A whole run with trainer=ray through the Slack app (issue 18): the teacher answers at the OpenAI sandbox, the
tiny student built in code is served for the baseline and trained by LoRA on a real local Ray head, a bot restarted
mid-job reattaches to the same Ray job and posts no event twice, the distilled adapter is served as a Ray job for
the eval and the report names it with its quoted and actual GPU minutes; then a student path the cluster does not
have fails the next job with Ray's reason."""

from __future__ import annotations

import asyncio
import re

from bot.trainers.ray_jobs import RayJobs
from tests.conftest import ray_env
from tests.handlers.conftest import thread_texts
from tests.handlers.test_distillation import REPORT_TITLE, _approve_newest, _wait_for_state

STEP = re.compile(r"^Step \d+/\d+ \(epoch")


def step_lines(texts: list[str]) -> list[str]:
    return [line.strip("`") for t in texts if t.startswith("```") for line in t.splitlines()
            if STEP.match(line.strip("`"))]


async def test_a_ray_run_survives_a_restart_reports_the_adapter_and_a_bad_student_posts_rays_reason(
        make_bot, ray_head, tiny_student, tmp_path):
    storage = tmp_path / "storage"
    storage.mkdir()
    env = ray_env(ray_head, storage, DISTILL_POLL_SECONDS="0.2", DISTILL_DB=str(tmp_path / "ray.db"))
    first = await make_bot(**env)
    await first.ready_run("tickets", f"label=category train=60 eval=30 trainer=ray student={tiny_student} epochs=8 "
                                     "lr=25")
    await first.command("estimate tickets")
    await first.bot.idle()
    assert any("GPU" in t for t in thread_texts(await first.thread("tickets")))
    await first.command("collect tickets")
    await _approve_newest(first, "tickets")
    assert await _wait_for_state(first, "tickets", "collected", "failed", seconds=150) == "collected"
    await first.command("train tickets")
    request = "\n".join(t for t in thread_texts(await first.thread("tickets")) if "Spending request: train" in t)
    assert "GPU minutes" in request and "$2.50/GPU-hour" in request
    await _approve_newest(first, "tickets")
    await _wait_for_state(first, "tickets", "training")
    for _ in range(1200):  # until the job's first steps are in the thread: the restart lands mid-job
        if step_lines(thread_texts(await first.thread("tickets"))):
            break
        await asyncio.sleep(0.05)
    run = await first.run("tickets")
    [job] = await first.bot.storage.jobs.for_run(run.id)
    await first.bot.close()

    second = await make_bot(**env)
    assert await _wait_for_state(second, "tickets", "done", "failed", seconds=180) == "done"
    [after] = await second.bot.storage.jobs.for_run(run.id)
    assert after.external_id == job.external_id and after.status == "SUCCEEDED"
    adapter = after.fine_tuned_model
    assert adapter == str(storage / "distill" / "jobs" / job.external_id / "adapter")
    texts = thread_texts(await second.thread("tickets"))
    steps = step_lines(texts)
    assert steps and len(steps) == len(set(steps))  # every step once, across the restart
    finished = next(t for t in texts if "Training finished" in t)
    assert adapter in finished and re.search(r"GPU time: quoted \d+\.\d+ minutes, actual \d+\.\d+ minutes", finished)
    report = next(t for t in texts if REPORT_TITLE in t)
    assert report
    client = RayJobs(ray_head.url)
    for _ in range(300):  # undeploy asked Ray to stop the eval's server; it is gone within seconds
        jobs = await client._json("GET", "/api/jobs/", "list jobs")
        if all(j["status"] == "STOPPED" for j in jobs if j["submission_id"].startswith("distill-serve-")):
            break
        await asyncio.sleep(0.1)
    await client.close()
    assert [j["submission_id"] for j in jobs].count(job.external_id) == 1
    assert all(j["status"] == "STOPPED" for j in jobs if j["submission_id"].startswith("distill-serve-"))

    # A student the cluster does not have: the Ray job serving it for the baseline fails, and Ray's reason is
    # what the thread says (the trainer's tests see the training job refuse it the same way).
    await second.command(f"set tickets student={tmp_path / 'no-such-model'}")
    await second.command("collect tickets")
    await _approve_newest(second, "tickets")
    assert await _wait_for_state(second, "tickets", "failed", "done", seconds=120) == "failed"
    texts = thread_texts(await second.thread("tickets"))
    assert any("ended FAILED" in t and "no such folder on this Ray node" in t for t in texts), texts[-3:]
