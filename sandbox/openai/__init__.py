"""A local OpenAI-compatible API server (aiohttp on 127.0.0.1) that answers like OpenAI where the bot can tell.

    sb = OpenAISandbox(api_key="sk-sandbox", seed=0, clock_speed=60)
    url = await sb.start()            # "http://127.0.0.1:PORT/v1", for openai.AsyncOpenAI(base_url=url)
    ...; sb.requests                  # the request log, also served at GET /sandbox/requests
    await sb.stop()

How the models answer (deterministic for a given seed):
- Teachers (gpt-4o, gpt-4.1, gpt-5 and any model that is not a student) are a lexical zero-shot classifier
  over the last user message: each allowed choice (the enum of the response_format's json_schema) is scored
  by word overlap with the prompt (case and accents folded, stems, sub-words of multi-word choices), after
  dropping the span of the prompt that only lists the choices. Ties and prompts without evidence are broken
  by a seeded hash of the prompt. See lexical.py.
- Students (names with -mini, -nano or -luna: gpt-4o-mini-2024-07-18, gpt-4.1-mini, gpt-5-nano, gpt-6-luna, ...)
  use the same scorer but see only a seeded half of the vocabulary, so they are clearly worse than the teacher.
- Solved examples in a request (user turns answered by the assistant, before the row) add a nearest-neighbour
  vote to the teachers' and students' scores, weighted by how similar each example is to the row: relevant
  examples help, unrelated ones leave the answer alone. See few_shot.py.
- Fine-tuned models (`ft:<base>:distill-sandbox:<suffix>:<8 chars>`) are a multinomial naive Bayes trained
  on their job's JSONL (last user message -> the assistant's label), so what they learned is real.
- Reasoning models (gpt-6.2-astra, gpt-6.2-sol, gpt-6.1-sol, gpt-6.1-terra, gpt-6-luna, gpt-5*) answer like
  teachers (or students) but first bill reasoning tokens, more with a higher reasoning_effort, reported in
  usage.completion_tokens_details.reasoning_tokens; they refuse efforts they do not take, temperature unless the
  effort is none, and max_tokens, and stop at max_completion_tokens with finish_reason "length". See chat.py.
- Embedding models (text-embedding-3-small, -large) answer `POST /v1/embeddings` with a signed feature hash
  of the text's words and word pieces, L2-normalised: similar texts are near by cosine. See embeddings.py.
Structured outputs always validate against the request's json_schema, written compactly like OpenAI's
(`{"label":"Billing"}`); strict schemas are checked with OpenAI's rules (400 otherwise).

Usage: `prompt_tokens` follows OpenAI cookbook's chat formula with tiktoken (3 per message, +1 per name, 3 for
the reply) and `completion_tokens` is the answer's tokens. Real OpenAI also bills tokens for the
response_format's schema; the sandbox adds none, so its counts equal the bot's cost estimate exactly.

Knobs: per-model RPM/TPM limits (429 with retry-after and x-ratelimit-* headers; `rate_window_seconds`
compresses their minute for tests and benchmarks), seeded random 500/503 and
slow answers, fixed latency, scripted faults (`inject`), the speed of the fine-tuning and batch clock,
shutdown-date overrides, `fail_jobs_with` (every fine-tuning job fails), `expire_batches`, and
`reasoning_scale` (`set_reasoning_scale("gpt-6.2-sol", 50)`: a model that reasons 50 times as long).
"""

from sandbox.openai.server import OpenAISandbox

__all__ = ["OpenAISandbox"]
