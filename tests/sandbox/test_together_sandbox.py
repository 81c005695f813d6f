"""The Together sandbox over raw HTTP: what together-py 3.1.1 sends and reads (the upload redirect to a signed URL,
limits, estimate-price with the $4.00 minimum, jobs with hashed events, the v2 catalog, configs and hardware with
priceCentsPerHour, whoami), and v2 dedicated deployments on its clock: PROVISIONING -> READY, no traffic without the
endpoint's trafficSplit (503 routing_error), json_schema chat with exact usage, billing per minute of ready replicas,
scale-to-zero before delete, and inactiveTimeout stopping an idle deployment."""

from __future__ import annotations

import hashlib
import json
import math

import aiohttp
import openai
import pytest

from tests.conftest import TOGETHER_API_KEY
from tests.sandbox.openai_sandbox_support import classification_format, cookbook_prompt_tokens, jsonl, wait_until

STUDENT = "Qwen/Qwen3.5-9B"
PROJECT = "v2/projects/proj_sandbox"
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


async def upload(api, content: bytes = TRAINING, purpose: str = "fine-tune", checksum: str | None = None) -> str:
    """The SDK's three steps; returns the file id."""
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (("purpose", purpose), ("file_name", "train.jsonl"), ("file_type", "jsonl"),
                        ("checksum", checksum or hashlib.sha256(content).hexdigest())):
        form.add_field(name, value)
    async with api.post("v1/files", data=form, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location, file_id = response.headers["Location"], response.headers["X-Together-File-Id"]
    async with aiohttp.ClientSession() as anonymous:  # the signed URL needs no API key
        async with anonymous.put(location, data=content) as put:
            assert put.status == 200, await put.text()
    status, processed = await call(api, "POST", f"v1/files/{file_id}/preprocess")
    assert status == 200 and processed["id"] == file_id, processed
    return file_id


async def completed_job(api, **body) -> dict:
    file_id = await upload(api)
    status, job = await call(api, "POST", "v1/fine-tunes", json={"model": STUDENT, "training_file": file_id, **body})
    assert status == 200, job
    _, done = await wait_until(lambda: call(api, "GET", f"v1/fine-tunes/{job['id']}"),
                               lambda answer: answer[1]["status"] == "completed")
    return done


async def config_for(api, model: str = STUDENT) -> str:
    """The config that runs `model` on 1x H100, found as the SDK finds it: the catalog's resource, then its configs."""
    _, supported = await call(api, "GET", "v2/supported-models", params={"product": "PRODUCT_DEDICATED"})
    [entry] = [m for m in supported["data"] if m["name"] == model]
    _, configs = await call(api, "GET", f"{PROJECT}/configs", params={"referenceModel": entry["baseModel"]})
    h100 = {"key": "accelerator_type", "value": "nvidia-h100-80gb"}
    [config] = [c for c in configs["data"] if h100 in c["selectors"]]
    return f"projects/{config['projectId']}/configs/{config['id']}"


async def deployed(api, sandbox, job: dict, name: str = "eval-ep", routed: bool = True, **knobs) -> tuple[dict, dict]:
    """An endpoint and a READY deployment of the job's model (routed to, unless `routed` is False)."""
    _, endpoint = await call(api, "POST", f"{PROJECT}/endpoints", json={"name": name})
    status, deployment = await call(api, "POST", f"{PROJECT}/endpoints/{endpoint['id']}/deployments", json={
        "name": "eval", "model": f"projects/proj_sandbox/models/{job['model_object_id']}",
        "config": await config_for(api), "autoscaling": {"minReplicas": 1, "maxReplicas": 1}, **knobs})
    assert status == 200 and deployment["status"]["state"] == "DEPLOYMENT_STATE_PROVISIONING", deployment
    path = f"{PROJECT}/endpoints/{endpoint['id']}/deployments/{deployment['id']}"
    _, deployment = await wait_until(lambda: call(api, "GET", path),
                                     lambda a: a[1]["status"]["state"] == "DEPLOYMENT_STATE_READY")
    if routed:
        status, endpoint = await call(api, "PATCH", f"{PROJECT}/endpoints/{endpoint['id']}",
                                      params={"updateMask": "trafficSplit"},
                                      json={"trafficSplit": [{"deploymentId": deployment["id"], "weight": 1}],
                                            "etag": endpoint["etag"]})
        assert status == 200, endpoint
    return endpoint, deployment


async def stop_and_delete(api, endpoint: dict, deployment: dict) -> None:
    path = f"{PROJECT}/endpoints/{endpoint['id']}/deployments/{deployment['id']}"
    await call(api, "PATCH", path, params={"updateMask": "autoscaling"},
               json={"autoscaling": {"minReplicas": 0, "maxReplicas": 0}})
    await wait_until(lambda: call(api, "GET", path), lambda a: a[1]["status"]["state"] == "DEPLOYMENT_STATE_STOPPED")
    assert (await call(api, "DELETE", path))[0] == 200


async def test_the_catalog_says_what_answers_serverless_what_trains_and_what_can_be_served(api):
    status, models = await call(api, "GET", "v1/models")
    assert status == 200 and isinstance(models, list)
    assert {m["id"]: m["pricing"] for m in models}[STUDENT] == {"input": 0.17, "output": 0.25}
    assert "Qwen/Qwen3.5-4B" not in {m["id"] for m in models}  # fine-tunable, not served serverless
    status, limits = await call(api, "GET", "v1/fine-tunes/models/limits", params={"model_name": STUDENT})
    assert (status, limits["lora_training"]["default_rank"], limits["supports_full_training"]) == (200, 8, True)
    status, refused = await call(api, "GET", "v1/fine-tunes/models/limits",
                                 params={"model_name": "meta-llama/Llama-3.3-70B-Instruct-Turbo"})
    assert status == 404 and "not supported for fine-tuning" in refused["error"]["message"]
    by_product = {}
    for product in ("PRODUCT_FINE_TUNING", "PRODUCT_DEDICATED", "PRODUCT_SERVERLESS"):
        _, page = await call(api, "GET", "v2/supported-models", params={"product": product})
        by_product[product] = {m["name"] for m in page["data"]}
    reference = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
    assert {STUDENT, "Qwen/Qwen3.5-4B", "openai/gpt-oss-20b", reference} <= by_product["PRODUCT_FINE_TUNING"]
    assert reference not in by_product["PRODUCT_DEDICATED"]  # trainable, not servable
    assert STUDENT in by_product["PRODUCT_DEDICATED"] & by_product["PRODUCT_SERVERLESS"]
    _, page = await call(api, "GET", "v2/supported-models", params={"product": "PRODUCT_FINE_TUNING", "limit": "2"})
    assert len(page["data"]) == 2 and page["next_cursor"] == "2"
    _, hardware = await call(api, "GET", "v2/public/inference-instance-types")
    assert [(h["id"], h["priceCentsPerHour"]) for h in hardware["data"]] == [
        ("1xnvidia-h100-80gb", 399), ("1xnvidia-h200-141gb", 549), ("1xnvidia-b200-180gb", 899)]
    _, who = await call(api, "GET", "v3/whoami")
    assert who["type"] == "project_api_key" and who["project"] == {"id": "proj_sandbox", "slug": "distill-sandbox",
                                                                    "name": "distill-bot sandbox"}


async def test_a_wrong_key_is_refused_without_echoing_it(together_sandbox):
    async with aiohttp.ClientSession() as session:
        async with session.get(together_sandbox.url + "/v1/models",
                               headers={"Authorization": "Bearer tgp_wrong_0123456789"}) as response:
            body = await response.text()
    assert response.status == 401 and "Invalid API key" in body and "0123456789" not in body


async def test_an_upload_is_announced_put_to_a_signed_url_and_preprocessed(together_sandbox, api):
    file_id = await upload(api)
    status, stored = await call(api, "GET", f"v1/files/{file_id}")
    assert status == 200 and (stored["object"], stored["purpose"], stored["FileType"], stored["bytes"]) == (
        "file", "fine-tune", "jsonl", len(TRAINING))
    assert stored["validation_report"]["nlines"] == 24
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in (("purpose", "fine-tune"), ("file_name", "t.jsonl"), ("file_type", "jsonl"),
                        ("checksum", hashlib.sha256(b"other bytes").hexdigest())):
        form.add_field(name, value)
    async with api.post("v1/files", data=form, allow_redirects=False) as response:
        location = response.headers["Location"]
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.put(location, data=TRAINING) as put:
            assert put.status == 400 and "do not match the checksum" in await put.text()
        async with anonymous.put(location.split("?")[0] + "?signature=forged", data=b"other bytes") as forged:
            assert forged.status == 403
    form = aiohttp.FormData({"purpose": "assistants"}, default_to_multipart=True)
    status, refused = await call(api, "POST", "v1/files", data=form)
    assert status == 400 and "Invalid purpose 'assistants'" in refused["error"]["message"]


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "meta-llama/Llama-3.3-70B-Instruct-Turbo"}, "is not supported for fine-tuning"),
    ({"training_file": "file-missing"}, "No such File object: file-missing"),
    ({"suffix": "x" * 41}, "at most 40 characters"),
    ({"model": "openai/gpt-oss-20b", "training_type": {"type": "Full"}}, "Full fine-tuning is not supported"),
    ({"training_method": {"method": "dpo"}}, "trains 'sft' only"),
    ({"n_epochs": 0}, "Invalid 'n_epochs'"),
    ({"batch_size": 100}, "Invalid 'batch_size'"),
    ({"n_evals": 2}, "n_evals needs a validation_file"),
])
async def test_job_creation_refuses_what_together_refuses(api, change, message):
    file_id = await upload(api)
    status, refused = await call(api, "POST", "v1/fine-tunes", json={"model": STUDENT, "training_file": file_id,
                                                                     **change})
    assert status in (400, 404) and message in refused["error"]["message"]


async def test_the_price_estimate_is_togethers_formula_with_its_minimum_charge(api):
    file_id = await upload(api)
    tokens = sum(cookbook_prompt_tokens(STUDENT, json.loads(line)["messages"]) - 3 for line in TRAINING.splitlines())
    _, small = await call(api, "POST", "v1/fine-tunes/estimate-price", json={
        "training_file": file_id, "model": STUDENT, "n_epochs": 2, "training_type": {"type": "Lora", "lora_r": 8,
                                                                                     "lora_alpha": 16}})
    assert small["estimation_available"] and small["estimated_train_token_count"] == 2 * tokens
    assert small["estimated_total_price"] == 4.0  # 2 x ~200 tokens x $0.48 per 1M: the $4.00 minimum applies
    big = jsonl([{"messages": [{"role": "user", "content": "word " * 4000},
                               {"role": "assistant", "content": "{\"label\": \"Billing\"}"}]}] * 600)
    big_id = await upload(api, big)
    _, full = await call(api, "POST", "v1/fine-tunes/estimate-price", json={
        "training_file": big_id, "model": STUDENT, "n_epochs": 2, "training_type": {"type": "Full"}})
    assert full["estimated_total_price"] == pytest.approx(full["estimated_train_token_count"] * 1.35 / 1e6)
    assert full["estimated_total_price"] > 4.0


async def test_a_job_reports_its_steps_tokens_model_object_and_hashed_events(together_sandbox, api):
    job = await completed_job(api, n_epochs=2, suffix="demo")
    assert job["model_output_name"].startswith("distill-sandbox/Qwen3.5-9B-demo-")
    assert job["model_object_id"].startswith("ml_") and job["model_object_name"] == job["model_output_name"]
    assert job["token_count"] == sum(cookbook_prompt_tokens(STUDENT, json.loads(line)["messages"]) - 3
                                     for line in TRAINING.splitlines())  # no reply priming in a training example
    assert (job["total_steps"], job["steps_completed"], job["epochs_completed"]) == (6, 6, 2)
    _, events = await call(api, "GET", f"v1/fine-tunes/{job['id']}/events")
    kinds = [e["type"] for e in events["data"]]
    assert kinds[0] == "job_pending" and kinds[-1] == "job_complete" and kinds.count("epoch_complete") == 2
    assert len({e["hash"] for e in events["data"]}) == len(kinds)
    assert all(e["object"] == "fine-tune-event" and e["created_at"].endswith("Z") for e in events["data"])
    _, listed = await call(api, "GET", "v1/fine-tunes")
    assert [j["suffix"] for j in listed["data"]] == ["demo"]


async def test_a_deployment_answers_only_once_ready_and_routed_and_bills_its_ready_minutes(together_sandbox, api):
    job = await completed_job(api)
    client = openai.AsyncOpenAI(base_url=together_sandbox.v1_url, api_key=TOGETHER_API_KEY, max_retries=0)
    messages = [{"role": "user", "content": "the invoice shows a double charge"}]
    with pytest.raises(openai.NotFoundError):  # serverless LoRA is discontinued: the job's model is not served as is
        await client.chat.completions.create(model=job["model_output_name"], messages=messages)
    status, refused = await call(api, "POST", f"{PROJECT}/endpoints", json={"name": "Not_A_Name"})
    assert status == 400 and "Invalid endpoint name" in refused["error"]["message"]
    endpoint, deployment = await deployed(api, together_sandbox, job, routed=False)
    assert endpoint["name"] == "distill-sandbox/eval-ep" and deployment["name"] == "distill-sandbox/eval-ep/eval"
    assert (deployment["hardware"], deployment["autoscaling"], deployment["status"]["readyReplicas"]) == (
        "1xnvidia-h100-80gb", {"minReplicas": 1, "maxReplicas": 1}, 1)
    with pytest.raises(openai.InternalServerError) as unrouted:  # READY but not in the trafficSplit: no traffic
        await client.chat.completions.create(model=endpoint["name"], messages=messages)
    assert unrouted.value.status_code == 503 and unrouted.value.body["code"] == "routing_error"
    status, stale = await call(api, "PATCH", f"{PROJECT}/endpoints/{endpoint['id']}",
                               params={"updateMask": "trafficSplit"},
                               json={"trafficSplit": [{"deploymentId": deployment["id"], "weight": 1}],
                                     "etag": "W/\"stale\""})
    assert status == 409 and "changed since it was read" in stale["error"]["message"]
    status, endpoint = await call(api, "PATCH", f"{PROJECT}/endpoints/{endpoint['id']}",
                                  params={"updateMask": "trafficSplit"},
                                  json={"trafficSplit": [{"deploymentId": deployment["id"], "weight": 1}]})
    assert status == 200 and endpoint["deployments"][0]["estimatedEffectiveTrafficShare"] == 1.0

    answer = await client.chat.completions.create(model=endpoint["name"], messages=messages,
                                                  response_format=classification_format(LABELS))
    assert json.loads(answer.choices[0].message.content) == {"label": "Billing"}  # learned from the file
    assert answer.usage.prompt_tokens == cookbook_prompt_tokens(endpoint["name"], messages)
    status, blocked = await call(api, "DELETE", f"{PROJECT}/endpoints/{endpoint['id']}")
    assert status == 400 and "still has deployments" in blocked["error"]["message"]
    path = f"{PROJECT}/endpoints/{endpoint['id']}/deployments/{deployment['id']}"
    status, running = await call(api, "DELETE", path)
    assert status == 400 and "scale it to zero" in running["error"]["message"]
    ready_at = together_sandbox.deployments.live()[0].ready_at
    await stop_and_delete(api, endpoint, deployment)
    [bill] = together_sandbox.deployments.bills
    stopped = together_sandbox.deployments._deployments[deployment["id"]].stop_requested_at
    assert bill.minutes == math.ceil((stopped - ready_at) * together_sandbox.clock.speed / 60)  # ready minutes only
    assert bill.cents == pytest.approx(bill.minutes * 399 / 60)
    assert (await call(api, "DELETE", f"{PROJECT}/endpoints/{endpoint['id']}"))[0] == 200
    assert (await call(api, "GET", f"{PROJECT}/endpoints/{endpoint['id']}"))[0] == 404
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model=endpoint["name"], messages=messages)
    await client.close()


async def test_deployments_refuse_what_together_refuses(api, together_sandbox):
    job = await completed_job(api)
    _, endpoint = await call(api, "POST", f"{PROJECT}/endpoints", json={"name": "checks"})
    status, taken = await call(api, "POST", f"{PROJECT}/endpoints", json={"name": "checks"})
    assert status == 409 and "already exists" in taken["error"]["message"]
    good = {"name": "eval", "model": f"projects/proj_sandbox/models/{job['model_object_id']}",
            "config": await config_for(api), "autoscaling": {"minReplicas": 1, "maxReplicas": 1}}
    for change, message in [
        ({"model": "projects/proj_sandbox/models/ml_unknown"}, "not found"),
        ({"config": await config_for(api, "openai/gpt-oss-20b")}, "is not compatible with model"),
        ({"inactiveTimeout": 10}, "otherwise 30 through 1440 minutes"),
        ({"autoscaling": {"minReplicas": 0, "maxReplicas": 1}}, "minReplicas 0 with maxReplicas above 0"),
    ]:
        status, refused = await call(api, "POST", f"{PROJECT}/endpoints/{endpoint['id']}/deployments",
                                     json={**good, **change})
        assert status in (400, 404) and message in refused["error"]["message"], refused
    status, _ = await call(api, "POST", f"{PROJECT}/endpoints/{endpoint['id']}/deployments",
                           params={"validateOnly": "true"}, json=good)
    assert status == 200 and together_sandbox.deployments.live() == []
    assert (await call(api, "GET", "v2/projects/proj_other/endpoints"))[0] == 404


async def test_a_failed_deployment_says_why_and_bills_nothing(make_together_sandbox):
    reason = "Insufficient capacity for 1xnvidia-h100-80gb in every region; try again later."
    sandbox = await make_together_sandbox(fail_deployments_with=reason)
    async with aiohttp.ClientSession(base_url=sandbox.url + "/",
                                     headers={"Authorization": f"Bearer {TOGETHER_API_KEY}"}) as api:
        job = await completed_job(api)
        _, endpoint = await call(api, "POST", f"{PROJECT}/endpoints", json={"name": "doomed"})
        _, deployment = await call(api, "POST", f"{PROJECT}/endpoints/{endpoint['id']}/deployments", json={
            "name": "eval", "model": f"projects/proj_sandbox/models/{job['model_object_id']}",
            "config": await config_for(api), "autoscaling": {"minReplicas": 1, "maxReplicas": 1}})
        path = f"{PROJECT}/endpoints/{endpoint['id']}/deployments/{deployment['id']}"
        _, failed = await wait_until(lambda: call(api, "GET", path),
                                     lambda a: a[1]["status"]["state"] == "DEPLOYMENT_STATE_FAILED")
        assert failed["status"]["message"] == reason
        assert (await call(api, "DELETE", path))[0] == 200  # a failed one has no replica to stop
    assert [bill.minutes for bill in sandbox.deployments.bills] == [0]


async def test_an_idle_deployment_stops_itself_after_its_inactive_timeout_and_stops_billing(make_together_sandbox):
    sandbox = await make_together_sandbox(clock_speed=30_000)
    async with aiohttp.ClientSession(base_url=sandbox.url + "/",
                                     headers={"Authorization": f"Bearer {TOGETHER_API_KEY}"}) as api:
        job = await completed_job(api)
        endpoint, deployment = await deployed(api, sandbox, job, inactiveTimeout=30)
        path = f"{PROJECT}/endpoints/{endpoint['id']}/deployments/{deployment['id']}"
        await wait_until(lambda: call(api, "GET", path),
                         lambda a: a[1]["status"]["state"] == "DEPLOYMENT_STATE_STOPPED")
        assert (await call(api, "DELETE", path))[0] == 200
    # Ready for 30 idle minutes after it became READY (no request came), then stopped: 30 minutes billed.
    assert [bill.minutes for bill in sandbox.deployments.bills] == [30]
