"""The Together sandbox over raw HTTP: Together's shapes (bare model array, capitalized file fields, ISO times,
hashed events), its refusals, the job clock, dedicated endpoints billed per minute, and json_schema chat with
exact usage from a deployed fine-tuned model."""

from __future__ import annotations

import json
import math

import aiohttp
import openai
import pytest

from tests.conftest import TOGETHER_API_KEY
from tests.sandbox.openai_sandbox_support import classification_format, cookbook_prompt_tokens, jsonl, wait_until

STUDENT = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
LABELS = ["Billing", "Network"]
TRAINING = jsonl([{"messages": [{"role": "user", "content": f"{word} problem number {i}"},
                                {"role": "assistant", "content": json.dumps({"label": label})}]}
                  for i in range(12) for word, label in (("invoice refund charge", "Billing"),
                                                        ("wifi router outage", "Network"))])


@pytest.fixture
async def api(together_sandbox):
    async with aiohttp.ClientSession(base_url=together_sandbox.url + "/",
                                     headers={"Authorization": f"Bearer {TOGETHER_API_KEY}"}) as session:
        yield session


async def call(api, method: str, path: str, **kwargs) -> tuple[int, object]:
    async with api.request(method, path, **kwargs) as response:
        return response.status, await response.json(content_type=None) if response.status != 204 else None


async def upload(api, content: bytes = TRAINING, purpose: str = "fine-tune") -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename="train.jsonl")
    form.add_field("file_name", "train.jsonl")
    form.add_field("purpose", purpose)
    return await call(api, "POST", "files/upload", data=form)


async def completed_job(api, **body) -> dict:
    _, uploaded = await upload(api)
    status, job = await call(api, "POST", "fine-tunes", json={"model": STUDENT, "training_file": uploaded["id"],
                                                              **body})
    assert status == 200, job
    _, done = await wait_until(lambda: call(api, "GET", f"fine-tunes/{job['id']}"),
                               lambda answer: answer[1]["status"] == "completed")
    return done


async def test_the_catalog_says_which_models_can_be_fine_tuned_and_where_they_can_run(api):
    status, models = await call(api, "GET", "models")
    assert status == 200 and isinstance(models, list) and {"deepseek-ai/DeepSeek-V3", STUDENT} <= {
        m["id"] for m in models}
    _, supported = await call(api, "GET", "fine-tunes/models/supported")
    assert STUDENT in supported["models"] and "deepseek-ai/DeepSeek-V3" not in supported["models"]
    status, limits = await call(api, "GET", "fine-tunes/models/limits", params={"model_name": STUDENT})
    assert (status, limits["lora_training"]["default_rank"], limits["supports_full_training"]) == (200, 8, True)
    status, refused = await call(api, "GET", "fine-tunes/models/limits",
                                 params={"model_name": "deepseek-ai/DeepSeek-V3"})
    assert status == 404 and "not supported for fine-tuning" in refused["error"]["message"]
    big = "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference"
    _, hardware = await call(api, "GET", "hardware", params={"model": big})
    assert [(h["id"], round(h["pricing"]["cents_per_minute"], 2)) for h in hardware["data"]] == [
        ("1x_nvidia_h200_141gb_sxm", 9.15)]


async def test_a_wrong_key_is_refused_without_echoing_it(together_sandbox):
    async with aiohttp.ClientSession() as session:
        async with session.get(together_sandbox.url + "/models",
                               headers={"Authorization": "Bearer tgp_wrong_0123456789"}) as response:
            body = await response.text()
    assert response.status == 401 and "Invalid API key" in body and "0123456789" not in body


async def test_uploads_answer_with_togethers_file_fields(api):
    status, uploaded = await upload(api)
    assert status == 200 and uploaded["object"] == "file" and uploaded["purpose"] == "fine-tune"
    assert (uploaded["LineCount"], uploaded["FileType"], uploaded["Processed"], uploaded["bytes"]) == (
        24, "jsonl", True, len(TRAINING))
    status, refused = await upload(api, purpose="assistants")
    assert status == 400 and "Invalid purpose 'assistants'" in refused["error"]["message"]


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "deepseek-ai/DeepSeek-V3"}, "is not supported for fine-tuning"),
    ({"training_file": "file-missing"}, "No such File object: file-missing"),
    ({"suffix": "x" * 41}, "at most 40 characters"),
    ({"model": "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference", "training_type": {"type": "Full"}},
     "Full fine-tuning is not supported"),
    ({"training_method": {"method": "dpo"}}, "trains 'sft' only"),
    ({"n_epochs": 0}, "Invalid 'n_epochs'"),
    ({"batch_size": 100}, "Invalid 'batch_size'"),
    ({"n_evals": 2}, "n_evals needs a validation_file"),
])
async def test_job_creation_refuses_what_together_refuses(api, change, message):
    _, uploaded = await upload(api)
    status, refused = await call(api, "POST", "fine-tunes", json={"model": STUDENT, "training_file": uploaded["id"],
                                                                  **change})
    assert status in (400, 404) and message in refused["error"]["message"]


async def test_a_job_reports_its_steps_tokens_and_hashed_events(together_sandbox, api):
    job = await completed_job(api, n_epochs=2, suffix="demo")
    assert job["model_output_name"].startswith(f"distill-sandbox/{STUDENT.split('/')[1]}-demo-")
    assert job["token_count"] == sum(cookbook_prompt_tokens(STUDENT, json.loads(line)["messages"]) - 3
                                     for line in TRAINING.splitlines())  # no reply priming in a training example
    assert (job["total_steps"], job["steps_completed"], job["epochs_completed"]) == (6, 6, 2)
    _, events = await call(api, "GET", f"fine-tunes/{job['id']}/events")
    kinds = [e["type"] for e in events["data"]]
    assert kinds[0] == "job_pending" and kinds[-1] == "job_complete" and kinds.count("epoch_complete") == 2
    assert len({e["hash"] for e in events["data"]}) == len(kinds)
    assert all(e["object"] == "fine-tune-event" and e["created_at"].endswith("Z") for e in events["data"])


async def test_a_dedicated_endpoint_serves_the_model_with_exact_usage_and_bills_each_minute(together_sandbox, api):
    job = await completed_job(api)
    status, refused = await call(api, "POST", "endpoints", json={
        "model": job["model_output_name"], "hardware": "1x_nvidia_b200_180gb_sxm",
        "autoscaling": {"min_replicas": 1, "max_replicas": 1}})
    assert status == 400 and "cannot run" in refused["error"]["message"]
    _, endpoint = await call(api, "POST", "endpoints", json={
        "model": job["model_output_name"], "hardware": "1x_nvidia_h100_80gb_sxm",
        "autoscaling": {"min_replicas": 1, "max_replicas": 1}})
    assert endpoint["state"] == "PENDING" and endpoint["name"].startswith(job["model_output_name"] + "-")
    await wait_until(lambda: call(api, "GET", f"endpoints/{endpoint['id']}"), lambda a: a[1]["state"] == "STARTED")

    client = openai.AsyncOpenAI(base_url=together_sandbox.url, api_key=TOGETHER_API_KEY, max_retries=0)
    messages = [{"role": "user", "content": "the invoice shows a double charge"}]
    answer = await client.chat.completions.create(model=endpoint["name"], messages=messages,
                                                  response_format=classification_format(LABELS))
    assert json.loads(answer.choices[0].message.content) == {"label": "Billing"}  # learned from the file
    assert answer.usage.prompt_tokens == cookbook_prompt_tokens(endpoint["name"], messages)
    created = together_sandbox.endpoints.live()[0].created_at
    status, _ = await call(api, "DELETE", f"endpoints/{endpoint['id']}")
    assert status == 204
    (bill,) = together_sandbox.endpoints.bills
    deleted = together_sandbox.endpoints._endpoints[endpoint["id"]].deleted_at
    assert bill.minutes == math.ceil((deleted - created) * together_sandbox.clock.speed / 60)
    assert bill.cents == pytest.approx(bill.minutes * 399 / 60)
    assert (await call(api, "GET", f"endpoints/{endpoint['id']}"))[0] == 404
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model=endpoint["name"], messages=messages)
    await client.close()


async def test_an_idle_endpoint_stops_itself_and_stops_billing(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=3000)
    async with aiohttp.ClientSession(base_url=sandbox.url + "/",
                                     headers={"Authorization": f"Bearer {TOGETHER_API_KEY}"}) as api:
        job = await completed_job(api)
        _, endpoint = await call(api, "POST", "endpoints", json={
            "model": job["model_output_name"], "hardware": "1x_nvidia_h100_80gb_sxm", "inactive_timeout": 1,
            "autoscaling": {"min_replicas": 1, "max_replicas": 1}})
        await wait_until(lambda: call(api, "GET", f"endpoints/{endpoint['id']}"),
                         lambda a: a[1]["state"] == "STOPPED")
        await call(api, "DELETE", f"endpoints/{endpoint['id']}")
    # Billed from creation to the stop: 5 s pending, 60 s starting, 60 s idle = 125 s, so 3 started minutes.
    assert [bill.minutes for bill in sandbox.endpoints.bills] == [3]
