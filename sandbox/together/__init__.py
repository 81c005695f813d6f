"""A local Together-AI-shaped API server (aiohttp on 127.0.0.1) for the Together trainer's tests and the shell.

    sb = TogetherSandbox(api_key="together-sandbox-key", clock_speed=600)
    url = await sb.start()            # "http://127.0.0.1:PORT/v1", like https://api.together.xyz/v1
    ...; sb.endpoints.bills           # what each deleted dedicated endpoint cost
    await sb.stop()

What it serves (each module names its sources in Together's docs and SDK):
- files.py: `POST /v1/files/upload` (multipart) and `GET /v1/files/{id}`.
- finetunes.py: fine-tuning jobs on a simulated clock, pending -> queued -> running -> compressing ->
  uploading -> completed, with events, cancel (cancel_requested -> cancelled) and the error state.
- endpoints.py: dedicated endpoints (PENDING -> STARTING -> STARTED), billed per minute until deleted.
- catalog.py: models, which are fine-tunable and their limits, and the hardware an endpoint can use.
- `POST /v1/chat/completions`: OpenAI-compatible, answered by the OpenAI sandbox's ChatEngine (json_schema
  structured outputs, exact usage). A fine-tuned model answers only through a STARTED endpoint's name, with
  the naive Bayes classifier learned from its training file.

It reuses the OpenAI sandbox's clock, file store, request log, chat engine, classifiers and training-file
checks; what differs is Together's API shape and lifecycle. Knobs: the clock's speed and `fail_jobs_with`
(every job ends in `error` with that message); `inject` answers the next requests under a path with 429/500/503.
"""

from sandbox.together.server import TogetherSandbox

__all__ = ["TogetherSandbox"]
