"""A local Together-AI-shaped API server (aiohttp on 127.0.0.1) that together-py 3.1.1 (`AsyncTogether`) talks to,
for the Together trainer's tests, the shell and the demo.

    sb = TogetherSandbox(api_key="together-sandbox-key", clock_speed=600)
    url = await sb.start()            # "http://127.0.0.1:PORT", like https://api.together.ai (no /v1 in 3.x)
    ...; sb.deployments.bills         # what each deleted dedicated deployment cost
    await sb.stop()

What it serves (each module names its sources: the SDK's code and the research notes in docs/research/together.md):
- files.py: the SDK's upload: `POST /v1/files` (metadata) -> 302 to a signed PUT URL -> `POST /v1/files/{id}/
  preprocess`; `GET /v1/files/{id}`.
- finetunes.py: `POST /v1/fine-tunes/estimate-price` (with the $4.00 minimum) and fine-tuning jobs on a simulated
  clock, pending -> queued -> running -> compressing -> uploading -> completed, with events, cancel
  (cancel_requested -> cancelled) and the error state; a completed job names its project model (`model_object_id`).
- deployments.py: v2 dedicated model inference: endpoints, deployments (PROVISIONING -> READY or FAILED, stopped by
  scaling to zero or by `inactiveTimeout`), the endpoint's trafficSplit, per-minute billing of ready replicas.
- catalog.py: the serverless models with their prices, the fine-tunable ones with their limits and training rates,
  `/v2/supported-models`, the configs that run a model, and the hardware with `priceCentsPerHour`.
- `GET /v3/whoami`: the project (id and slug) of the key.
- `POST /v1/chat/completions`: OpenAI-compatible, answered by the OpenAI sandbox's ChatEngine (json_schema
  structured outputs, exact usage). A serverless model answers under its own name; a fine-tuned model only under its
  endpoint's name ("<project_slug>/<endpoint>"), through a READY deployment with a weight in the trafficSplit, with
  the naive Bayes classifier learned from its job's training file (503 routing_error otherwise).

It reuses the OpenAI sandbox's clock, file store, request log, chat engine, classifiers and training-file checks;
what differs is Together's API shape and lifecycle. Knobs: the clock's speed, `fail_jobs_with` (every job ends in
`error` with that message), `fail_deployments_with` (every deployment ends FAILED with it), and `inject` (the next
requests under a path answer 429/500/503).
"""

from sandbox.together.server import TogetherSandbox

__all__ = ["TogetherSandbox"]
